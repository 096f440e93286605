"""`TaskModule`: the LightningModule every ssmkit task builds on.

It owns the backbone configuration (a registry mixer name plus kwargs, flat in the config so that
`--model.mixer mamba` works), AdamW with the SSM parameter groups, and the warm-up + cosine schedule.
Subclasses build their head in `__init__` and implement `shared_step`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import torch

from ssmkit.models.backbone import SequenceBackbone
from ssmkit.train.optim import param_groups, warmup_cosine

Tensor = torch.Tensor


class TaskModule(L.LightningModule):
    # The metric that picks the best checkpoint, and whether higher is better.
    monitor: ClassVar[str] = "val/loss"
    monitor_mode: ClassVar[str] = "min"

    def __init__(
        self,
        d_model: int = 64,
        n_layers: int = 2,
        mixer: str = "mamba",
        mixer_kwargs: dict[str, Any] | None = None,
        mlp_ratio: float = 0.0,
        dropout: float = 0.0,
        hybrid: dict[str, list[int]] | None = None,
        hybrid_kwargs: dict[str, dict[str, Any]] | None = None,
        bidirectional: bool = False,
        final_norm: bool = True,
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        warmup_steps: int = 100,
        min_lr_ratio: float = 0.1,
        betas: tuple[float, float] = (0.9, 0.95),
    ) -> None:
        super().__init__()
        self.backbone_config = {
            "d_model": d_model,
            "n_layers": n_layers,
            "mixer": mixer,
            "mixer_kwargs": mixer_kwargs or {},
            "mlp_ratio": mlp_ratio,
            "dropout": dropout,
            "hybrid": hybrid,
            "hybrid_kwargs": hybrid_kwargs,
            "bidirectional": bidirectional,
            "final_norm": final_norm,
        }
        self.optim_config = {
            "lr": lr,
            "weight_decay": weight_decay,
            "warmup_steps": warmup_steps,
            "min_lr_ratio": min_lr_ratio,
            "betas": tuple(betas),
        }

    def make_backbone(self, **inputs: Any) -> SequenceBackbone:
        """The configured backbone; `inputs` says what it reads (vocab_size=... or d_input=...)."""
        return SequenceBackbone(**self.backbone_config, **inputs)

    def run_dir(self) -> Path | None:
        """This run's folder (the logger's `log_dir`, created), where plots and predictions go; None without
        a logger (a notebook's `Trainer(logger=False)`)."""
        logger = self.trainer.logger
        if logger is None or logger.log_dir is None:
            return None
        path = Path(logger.log_dir)
        path.mkdir(parents=True, exist_ok=True)
        return path

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
        c = self.optim_config
        opt = torch.optim.AdamW(param_groups(self, c["lr"], c["weight_decay"]), lr=c["lr"], betas=c["betas"])
        total = max(1, int(self.trainer.estimated_stepping_batches))
        sched = warmup_cosine(opt, min(c["warmup_steps"], total), total, c["min_lr_ratio"])
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
