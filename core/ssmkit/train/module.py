"""`TaskModule`: the LightningModule every ssmkit task builds on.

It owns AdamW with the SSM parameter groups and the warm-up + cosine schedule, the run folder (written by rank
zero only), and the report hooks: `write_report("val")` at the end of fit and `write_report("test")` at the end
of a test, where a task writes its plots and tables. A task with a sequence backbone takes its settings as one
`BackboneConfig` argument named `backbone` (the config's `model.backbone` section) and builds it with
`make_backbone`. What a task must agree on with its data (class count, vocabulary, channels, lengths) it
declares in `data_links`; the command line then takes those values from the data module, so they are given
once and cannot disagree.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import torch
import torch.distributed as dist
from lightning.pytorch.callbacks import Timer
from lightning.pytorch.utilities import rank_zero_info
from torch import nn

from ssmkit.models.backbone import BackboneConfig, SequenceBackbone
from ssmkit.ops.sequence_parallel import current_split
from ssmkit.train.optim import param_groups, warmup_cosine

Tensor = torch.Tensor


class TaskModule(L.LightningModule):
    # The metric that picks the best checkpoint, and whether higher is better.
    monitor: ClassVar[str] = "val/loss"
    monitor_mode: ClassVar[str] = "min"
    # data module attribute -> this module's __init__ argument that the CLI fills from it (LightningCLI
    # link_arguments): e.g. {"n_classes": "n_classes", "input_vocab_size": "vocab_size"}.
    data_links: ClassVar[dict[str, str]] = {}
    # For sequence-parallel training (`--trainer.strategy sequence_parallel`, `ssmkit.train.sequence_parallel`):
    # the sequence dim of each batch tensor (a tuple batch: one entry per tensor, in order; a dict batch: by key;
    # None: a tensor every process keeps whole), e.g. (1, 1) for (tokens (B, L), targets (B, L)). None: the task
    # cannot split its sequences. Declare it where the loss is a mean over positions taken with `sequence_mean`
    # (each process's share of the whole sequences' mean, however many positions its chunk scores) and nothing else
    # reads across positions (no pooling head).
    sequence_dims: ClassVar[tuple[int | None, ...] | dict[str, int | None] | None] = None

    def __init__(
        self,
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        warmup_steps: int = 100,
        min_lr_ratio: float = 0.1,
        betas: tuple[float, float] = (0.9, 0.95),
        lr_schedule_by: str = "steps",
    ) -> None:
        """AdamW with linear warm-up then cosine decay (see `ssmkit.train.optim`).

        Args:
            lr: peak learning rate, reached after the warm-up.
            weight_decay: AdamW weight decay (never on SSM dynamics, norms or biases).
            warmup_steps: optimiser steps of linear warm-up from zero.
            min_lr_ratio: the cosine decay ends at lr * min_lr_ratio.
            betas: AdamW's moment coefficients.
            lr_schedule_by: "steps": the cosine spans the fit's steps (max_epochs / max_steps); "time": it also follows
                the share of `--trainer.max_time` used (whichever is further along), so a run that stops on its time
                budget ends decayed. Wall time makes the schedule differ between reruns.
        """
        super().__init__()
        if lr_schedule_by not in ("steps", "time"):
            raise ValueError(f"lr_schedule_by is 'steps' or 'time', not {lr_schedule_by!r}")
        self.optim_config = {
            "lr": lr,
            "weight_decay": weight_decay,
            "warmup_steps": warmup_steps,
            "min_lr_ratio": min_lr_ratio,
            "betas": tuple(betas),
            "lr_schedule_by": lr_schedule_by,
        }

    @staticmethod
    def make_backbone(config: BackboneConfig | dict[str, Any] | None, **inputs: Any) -> SequenceBackbone:
        """The configured backbone; `inputs` says what it reads (vocab_size=... or d_input=...)."""
        return SequenceBackbone(config, **inputs)

    def run_dir(self) -> Path | None:
        """This run's folder (the logger's `log_dir`, created), where plots and tables go; None without a logger (a
        notebook's `Trainer(logger=False)`) and on every rank but zero, so only one process writes."""
        logger = self.trainer.logger
        if logger is None or logger.log_dir is None or not self.trainer.is_global_zero:
            return None
        path = Path(logger.log_dir)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def run_file(self, name: str, required: bool = False) -> Path | None:
        """`name` (may hold folders, created) in the run folder; None off rank zero, and without a logger unless
        `required` (predictions: then it goes to the working directory)."""
        if not self.trainer.is_global_zero:
            return None
        run_dir = self.run_dir() or (Path.cwd() if required else None)
        if run_dir is None:
            return None
        path = run_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def write_rows(self, rows: list[dict[str, Any]], name: str = "predictions.csv") -> Path | None:
        """Write `rows` (dicts with the same keys) as a CSV file in the run folder (the working directory without a
        logger) and print where; rank zero only."""
        path = self.run_file(name, required=True)
        if path is None or not rows:
            return None
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        rank_zero_info(f"{len(rows)} prediction row(s): {path}")
        return path

    def write_report(self, stage: str) -> None:
        """Plots and tables of the last `stage` ("val" or "test") epoch; called at fit end and test end. Runs on
        every rank (metrics synchronise); write files through `run_file`."""

    def on_fit_end(self) -> None:
        self.write_report("val")

    def on_test_end(self) -> None:
        self.write_report("test")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Settings objects (`BackboneConfig`, ...) go into the checkpoint as plain dicts, so that it loads with
        `weights_only=True` (LightningCLI reads them back into the objects)."""
        hparams = checkpoint.get("hyper_parameters")
        if hparams:
            checkpoint["hyper_parameters"] = {k: asdict(v) if is_dataclass(v) else v for k, v in hparams.items()}

    def log(self, name: str, value: Any, *args: Any, sync_dist: bool = True, **kwargs: Any) -> None:
        """Lightning's `log`, reduced over the processes of a distributed run unless the call says `sync_dist=False`:
        a DDP run logs the loss of the whole global batch and validation split, not process zero's share (a
        sequence-parallel one that of the whole sequences, not process zero's chunk). One all-reduce of a scalar per
        logged value; torchmetrics objects synchronise by themselves."""
        super().log(name, value, *args, sync_dist=sync_dist, **kwargs)

    def log_dict(self, dictionary: Any, *args: Any, sync_dist: bool = True, **kwargs: Any) -> None:
        """`log` for several values (reduced over processes the same way)."""
        super().log_dict(dictionary, *args, sync_dist=sync_dist, **kwargs)

    @staticmethod
    def sequence_mean(total: Tensor, count: Tensor) -> Tensor:
        """total / count: a loss summed over `count` scored positions, as their mean (0 where none is scored). Inside
        `sequence_parallel` each process holds a chunk of the sequences, so the count is summed over the processes
        and each returns its share times their number: DDP's average of the shares' gradients, and the logged mean
        of the shares, are those of the whole sequences' mean, however many positions each chunk scores."""
        split = current_split()
        if split is None:
            return total / count.clamp_min(1)
        count = count.detach().clone()
        dist.all_reduce(count, group=split.group)
        return total * dist.get_world_size(split.group) / count.clamp_min(1)

    def shared_step(self, batch: Any, stage: str) -> Tensor:
        """Compute and log the loss (and metrics) for `stage` in {"train", "val", "test"}; return the loss."""
        raise NotImplementedError

    def batch_tokens(self, batch: Any) -> int:
        """Number of sequence positions in a batch (for throughput)."""
        return int(batch[0].shape[0] * batch[0].shape[1])

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self.shared_step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.shared_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self.shared_step(batch, "test")

    def configure_optimizers(self) -> dict:
        opt, sched = self.optimizer_for(self)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def optimizer_for(
        self, module: nn.Module, lr: float | None = None
    ) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
        """AdamW over `module`'s parameters (the SSM parameter groups) at `lr` (None: the configured one), with the
        warm-up + cosine schedule over the fit's steps. A task with several optimisers (a GAN's generator and
        discriminator, under manual optimisation) builds one per network and steps its schedulers itself."""
        c = self.optim_config
        lr = c["lr"] if lr is None else lr
        opt = torch.optim.AdamW(param_groups(module, lr, c["weight_decay"]), lr=lr, betas=c["betas"])
        total = max(1, int(self.trainer.estimated_stepping_batches))
        # Counting the steps built the training loader before a resumed run's checkpoint is restored, and Lightning
        # gives a loader its saved position only when it builds it after that: drop it, so the fit loop builds it
        # again and a run resumed mid-epoch sees the batches an uninterrupted run would.
        self.trainer.fit_loop._combined_loader = None
        elapsed = self.time_budget_used() if c["lr_schedule_by"] == "time" else None
        return opt, warmup_cosine(opt, min(c["warmup_steps"], total), total, c["min_lr_ratio"], elapsed)

    def time_budget_used(self) -> Callable[[], float]:
        """A function giving the share of `--trainer.max_time` the fit has used (Lightning's Timer, whose state a
        resumed run restores). Raises ValueError when no max_time is set."""
        timer = next((cb for cb in self.trainer.callbacks if isinstance(cb, Timer)), None)
        if timer is None or timer.time_remaining("train") is None:
            raise ValueError("lr_schedule_by 'time' needs a time budget: set --trainer.max_time")
        duration = timer.time_elapsed("train") + timer.time_remaining("train")  # fixed: max_time, resumed or not
        return lambda: timer.time_elapsed("train") / max(1e-9, duration)
