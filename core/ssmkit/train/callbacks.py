"""Callbacks every ssmkit run gets: a progress bar that does not flood logs, a throughput meter, an epoch
summary line, a loss-curve plot written at the end of fit, and last.ckpt rewritten when fit ends."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, TQDMProgressBar
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only

from ssmkit.train.plots import plot_metrics


def interactive() -> bool:
    """True on a terminal outside CI: then the progress bar refreshes every step."""
    return sys.stdout.isatty() and not os.environ.get("CI")


def progress_bar() -> TQDMProgressBar:
    return TQDMProgressBar(refresh_rate=1 if interactive() else 50)


class Throughput(Callback):
    """Measures training positions per second (wall time inside training batches) as `train/tokens_per_s`, summed
    over the processes of a distributed run (each counts the positions of its own batches, or of its chunks)."""

    def __init__(self) -> None:
        self.tokens = 0
        self.seconds = 0.0
        self._start = 0.0

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, idx: int) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.seconds += time.perf_counter() - self._start
        self.tokens += pl_module.batch_tokens(batch)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pl_module.log("train/tokens_per_s", self.tokens_per_s, reduce_fx="sum", sync_dist=True)


class FinalCheckpoint(Callback):
    """Writes `last.ckpt` when fit ends, so `--ckpt_path last` reads the weights the fit ended with. Lightning 2.6's
    ModelCheckpoint rewrites last.ckpt at validation only when it also saves a best checkpoint (or at its timed
    saves), and a motion run whose last validations did not improve ended with last.ckpt at step 1,984 of 2,400."""

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        callback = trainer.checkpoint_callback
        if callback is not None and callback.dirpath and not trainer.interrupted:
            trainer.save_checkpoint(Path(callback.dirpath) / "last.ckpt", weights_only=False)  # a full, resumable one


class EpochSummary(Callback):
    """One line of validation metrics per epoch; the progress bar's only companion in non-interactive logs."""

    @rank_zero_only
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        shown = "  ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items()))
        rank_zero_info(f"epoch {trainer.current_epoch} step {trainer.global_step}: {shown}")


class LossCurvePlot(Callback):
    """At the end of fit, reads the run's metrics.csv and writes `plots/loss.png` beside it, titled `title` (the
    task, e.g. "synthetic.selective_copy"; the module's class name without one)."""

    def __init__(self, title: str | None = None) -> None:
        self.title = title

    @rank_zero_only
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.logger is None or trainer.logger.log_dir is None:
            return
        run_dir = Path(trainer.logger.log_dir)
        metrics = run_dir / "metrics.csv"
        if metrics.is_file():
            plot_metrics(metrics, run_dir / "plots" / "loss.png", title=self.title or type(pl_module).__name__)
