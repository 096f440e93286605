"""Lightning modules of the sensors tasks.

- `Seq2SeqRegressor` (seq2seq): a causal encoder (`encoder: hiss | flat | lstm`, see `models`) and a
  linear head, MSE on standardised targets. `target_stride: k` scores only the steps that close a chunk of
  k (t = k-1, 2k-1, ...): HiSS's protocol, where the hierarchical model predicts at the chunk rate and the
  flat models' outputs are subsampled there. Logs `<stage>/mse`, `/mae`, `/nmse` (MSE over the target's
  variance, averaged over targets; predicting the mean gives 1) and plots prediction vs truth. `predict`
  writes `predictions.csv`: a row per (window, scored step), each target's prediction and truth in the
  data's original units.
- `Forecaster` (forecast): `model: ssm` (RevIN + channel-independent patched SSM, optional Fourier head)
  or `dlinear`; `<stage>/mse` and `/mae` over every future step and channel, a forecast plot. `predict`
  writes `forecast.csv`: a row per (window, future step), each channel's forecast and truth in the
  data's original units.
- `SensorClassifier` (classify): a causal encoder pooled (`last` by default: the prediction once the
  window has been read), accuracy and a confusion-matrix plot. `predict` writes `predictions.csv`: a row
  per window, the class probabilities, the predicted class and the label (indices into the data's classes).

`predict` runs over the data module's predict split (the test windows, in order; `window` is the index
there) and writes into the run folder. The model's input sizes are checked against the data module when a
run starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_info
from sklearn.preprocessing import StandardScaler
from torch import nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, Metric
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from ssmkit.models.heads import ClassificationHead
from ssmkit.train.module import TaskModule
from ssmkit_sensors.forecasting import FORECASTERS, DLinear, SSMForecaster
from ssmkit_sensors.models import build_encoder
from ssmkit_sensors.plots import plot_confusion, plot_forecast, plot_prediction

Tensor = torch.Tensor
STAGES = ("train", "val", "test")


class SensorModule(TaskModule):
    """Shared by the tasks: the run folder, the model-vs-data check, the figures kept per epoch, and predict
    (collects each batch's `predict_pair`, writes the task's `prediction_table` to `predict_file`)."""

    predict_file = "predictions.csv"

    def check_data(self, expected: dict[str, Any]) -> None:
        """Raise if the data module's sizes differ from the model's (`expected`: name -> model value)."""
        data = self.trainer.datamodule
        if data is None:
            return
        clash = {k: (v, getattr(data, k)) for k, v in expected.items() if getattr(data, k) != v}
        if clash:
            details = ", ".join(f"{k}: model {m}, data {d}" for k, (m, d) in clash.items())
            raise ValueError(f"the model and the data disagree ({details}); set model.* and data.* to match")

    def run_path(self, name: str) -> Path | None:
        """`<name>` in the run folder; None without a logger or off rank zero."""
        run_dir = self.run_dir()
        return None if run_dir is None or not self.trainer.is_global_zero else run_dir / name

    def plot_path(self, name: str) -> Path | None:
        """`plots/<name>` in the run folder; None without a logger or off rank zero."""
        return self.run_path(f"plots/{name}")

    def predict_pair(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """A batch's (prediction, truth) as the task's table wants them."""
        raise NotImplementedError

    def prediction_table(self, pred: np.ndarray, true: np.ndarray) -> pd.DataFrame:
        """The predict file's rows from the epoch's (prediction, truth), concatenated over batches."""
        raise NotImplementedError

    def on_predict_epoch_start(self) -> None:
        self.predicted: list[tuple[Tensor, Tensor]] = []

    def predict_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        pred, true = self.predict_pair(*batch)
        self.predicted.append((pred.detach().float().cpu(), true.cpu()))
        return pred

    def on_predict_epoch_end(self) -> None:
        path = self.run_path(self.predict_file)
        if path is None or not self.predicted:
            return
        pred, true = (torch.cat(t).numpy() for t in zip(*self.predicted, strict=True))
        path.parent.mkdir(parents=True, exist_ok=True)
        self.prediction_table(pred, true).to_csv(path, index=False, float_format="%.7g")  # float32 precision
        rank_zero_info(f"wrote the predictions of {len(pred)} window(s) to {path}")

    def on_validation_epoch_start(self) -> None:
        self.shown: list[Tensor] | None = None

    on_test_epoch_start = on_validation_epoch_start

    def keep_for_plot(self, *tensors: Tensor) -> None:
        """Keep the first batch of an evaluation epoch for its figure."""
        if getattr(self, "shown", None) is None:
            self.shown = [t.detach().float().cpu() for t in tensors]


class EncoderModule(SensorModule):
    """A causal sensor encoder (HiSS / flat / LSTM) built from the backbone settings."""

    def __init__(
        self,
        d_input: int = 3,
        encoder: str = "hiss",
        chunk_size: int = 10,
        low_d_model: int = 32,
        low_n_layers: int = 1,
        low_mixer: str = "mamba",
        low_mixer_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """encoder: 'hiss' (low level: low_* settings, one feature per chunk_size steps; high level: the
        backbone settings d_model / n_layers / mixer ...), 'flat' (the backbone over the raw stream) or
        'lstm' (d_model, n_layers)."""
        super().__init__(**kwargs)
        low = {
            **self.backbone_config,
            "d_model": low_d_model,
            "n_layers": low_n_layers,
            "mixer": low_mixer,
            "mixer_kwargs": low_mixer_kwargs or {},
            "hybrid": None,
            "hybrid_kwargs": None,
        }
        self.d_input = d_input
        self.encoder = build_encoder(encoder, d_input, self.backbone_config, chunk_size, low)


class NormalisedMSE(Metric):
    """Per-target MSE over the target's variance, averaged over targets (1 - R^2; predicting the mean gives 1).
    Entries whose truth is NaN (a missing reference value) are left out, per target."""

    def __init__(self, d_target: int) -> None:
        super().__init__()
        for name in ("sse", "count", "total", "total_sq"):
            self.add_state(name, torch.zeros(d_target, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, pred: Tensor, true: Tensor) -> None:
        """pred, true: (..., d_target)."""
        pred, true = pred.reshape(-1, pred.shape[-1]).double(), true.reshape(-1, true.shape[-1]).double()
        seen = torch.isfinite(true)
        true = torch.where(seen, true, 0.0)
        self.sse += torch.where(seen, pred - true, 0.0).square().sum(0)
        self.count += seen.sum(0)
        self.total += true.sum(0)
        self.total_sq += true.square().sum(0)

    def compute(self) -> Tensor:
        mean = self.total / self.count
        variance = self.total_sq / self.count - mean.square()
        return (self.sse / self.count / variance).mean().float()


class Seq2SeqRegressor(EncoderModule):
    monitor = "val/mse"
    monitor_mode = "min"

    def __init__(self, d_target: int = 1, target_stride: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.d_target, self.target_stride = d_target, target_stride
        self.head = nn.Linear(self.encoder.d_output, d_target)
        self.metrics = nn.ModuleDict(
            {
                f"{stage}_{name}": metric()
                for stage in STAGES
                for name, metric in (("mse", MeanSquaredError), ("mae", MeanAbsoluteError))
            }
        )
        self.nmse = nn.ModuleDict({f"{stage}_nmse": NormalisedMSE(d_target) for stage in STAGES})

    def setup(self, stage: str) -> None:
        self.check_data({"d_input": self.d_input, "d_target": self.d_target})

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, L, d_input) -> predictions at every step (B, L, d_target)."""
        return self.head(self.encoder(x))

    def scored(self, y: Tensor) -> Tensor:
        """(B, L, ...) -> the steps closing a chunk of target_stride (B, L // target_stride, ...)."""
        return y[:, self.target_stride - 1 :: self.target_stride].contiguous()

    def predict_pair(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """x: (B, L, d_input), y: (B, L, d_target) -> prediction and truth at the scored steps (B, S, d_target)."""
        return self.scored(self(x)), self.scored(y)

    def prediction_table(self, pred: np.ndarray, true: np.ndarray) -> pd.DataFrame:
        """pred, true: standardised (N, S, d_target) -> window, step (in the window, 0-based), then per
        target `<name>` and `<name>_true` in the data's original units (a missing truth stays empty)."""
        data = self.trainer.datamodule
        names = data.target_names if data is not None else [f"y{j}" for j in range(self.d_target)]
        scaler = getattr(data, "target_scaler", None)
        steps = np.arange(pred.shape[1]) * self.target_stride + self.target_stride - 1
        return step_table(original_units(pred, scaler), original_units(true, scaler), names, steps)

    def shared_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, y = batch
        dense = self(x)
        pred, true = self.scored(dense), self.scored(y)
        seen = torch.isfinite(true)  # False where the data module kept a missing target (mask_missing_targets)
        loss = F.mse_loss(pred[seen], true[seen]) if seen.any() else pred.sum() * 0.0
        self.log(f"{stage}/loss", loss, prog_bar=True)
        for name in ("mse", "mae"):
            metric = self.metrics[f"{stage}_{name}"]
            metric(pred[seen], true[seen])
            self.log(f"{stage}/{name}", metric, on_step=False, on_epoch=True)
        self.nmse[f"{stage}_nmse"].update(pred, true)
        if stage != "train":
            self.keep_for_plot(y, dense)
        return loss

    def _end_epoch(self, stage: str) -> None:
        self.log(f"{stage}/nmse", self.nmse[f"{stage}_nmse"].compute())
        self.nmse[f"{stage}_nmse"].reset()

    def on_train_epoch_end(self) -> None:
        self._end_epoch("train")

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self._end_epoch("val")
        else:
            self.nmse["val_nmse"].reset()

    def on_test_epoch_end(self) -> None:
        self._end_epoch("test")
        self.write_plot("test")

    def on_fit_end(self) -> None:
        self.write_plot("val")

    def write_plot(self, stage: str) -> None:
        path = self.plot_path(f"{stage}_prediction.png")
        if path is None or not self.shown:
            return
        data = self.trainer.datamodule
        names = data.target_names if data is not None else [f"y{j}" for j in range(self.d_target)]
        truth, predicted = (t.numpy() for t in self.shown)
        plot_prediction(truth, predicted, names, path, f"{self.hparams.encoder}: {stage} windows (standardised)")
        rank_zero_info(f"{stage} prediction plot: {path}")


class SensorClassifier(EncoderModule):
    monitor = "val/acc"
    monitor_mode = "max"

    def __init__(self, n_classes: int = 4, pooling: str = "last", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.n_classes = n_classes
        self.head = ClassificationHead(self.encoder.d_output, n_classes, pooling)
        self.acc = nn.ModuleDict({f"{stage}_acc": MulticlassAccuracy(n_classes, average="micro") for stage in STAGES})
        self.confusion = MulticlassConfusionMatrix(n_classes)

    def setup(self, stage: str) -> None:
        self.check_data({"d_input": self.d_input, "n_classes": self.n_classes})

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, L, d_input) -> logits (B, n_classes)."""
        return self.head(self.encoder(x))

    def predict_pair(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """x: (B, L, d_input), labels (B,) -> class probabilities (B, n_classes) and the labels."""
        return self(x).softmax(-1), y

    def prediction_table(self, pred: np.ndarray, true: np.ndarray) -> pd.DataFrame:
        """pred: probabilities (N, K), true: labels (N,) -> window, p_0 .. p_{K-1}, predicted, label."""
        columns = {"window": np.arange(len(pred))}
        columns |= {f"p_{k}": pred[:, k] for k in range(pred.shape[1])}
        return pd.DataFrame(columns | {"predicted": pred.argmax(1), "label": true})

    def shared_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, labels = batch
        logits = self(x)
        loss = F.cross_entropy(logits, labels)
        self.log(f"{stage}/loss", loss, prog_bar=True)
        self.acc[f"{stage}_acc"](logits, labels)
        self.log(f"{stage}/acc", self.acc[f"{stage}_acc"], on_step=False, on_epoch=True, prog_bar=True)
        if stage != "train":
            self.confusion.update(logits.argmax(-1), labels)
        return loss

    def on_validation_epoch_start(self) -> None:
        self.confusion.reset()

    on_test_epoch_start = on_validation_epoch_start

    def on_fit_end(self) -> None:
        self.write_confusion("val")

    def on_test_epoch_end(self) -> None:
        self.write_confusion("test")

    def write_confusion(self, stage: str) -> None:
        if not int(self.confusion.confmat.sum()):
            return
        matrix = self.confusion.compute().cpu().numpy()
        path = self.plot_path(f"{stage}_confusion.png")
        if path is None:
            return
        title = f"{self.hparams.encoder}: {stage} accuracy {matrix.trace() / matrix.sum():.4f}"
        plot_confusion(matrix, self.trainer.datamodule.classes, path, title)
        np.savetxt(path.parent.parent / f"{stage}_confusion.csv", matrix, fmt="%d", delimiter=",")
        rank_zero_info(f"{stage} confusion matrix: {path}")


class Forecaster(SensorModule):
    monitor = "val/mse"
    monitor_mode = "min"
    predict_file = "forecast.csv"

    def __init__(
        self,
        model: str = "ssm",
        n_channels: int = 7,
        seq_len: int = 96,
        horizon: int = 96,
        patch_len: int = 16,
        patch_stride: int = 8,
        head_dropout: float = 0.0,
        fourier: dict[str, Any] | None = None,
        kernel_size: int = 25,
        **kwargs: Any,
    ) -> None:
        """model: 'ssm' (RevIN, channel independence, patches of patch_len every patch_stride, the backbone
        settings; fourier: FourierHead kwargs + d_head for a predictive distribution) or 'dlinear'."""
        super().__init__(**kwargs)
        self.save_hyperparameters()
        if model not in FORECASTERS:
            raise ValueError(f"model must be one of {FORECASTERS}, got {model!r}")
        self.n_channels, self.seq_len, self.horizon = n_channels, seq_len, horizon
        if model == "ssm":
            self.model: nn.Module = SSMForecaster(
                n_channels, seq_len, horizon, self.backbone_config, patch_len, patch_stride, head_dropout, fourier
            )
        else:
            self.model = DLinear(seq_len, horizon, kernel_size)
        self.metrics = nn.ModuleDict(
            {
                f"{stage}_{name}": metric()
                for stage in ("val", "test")
                for name, metric in (("mse", MeanSquaredError), ("mae", MeanAbsoluteError))
            }
        )

    def setup(self, stage: str) -> None:
        self.check_data({"seq_len": self.seq_len, "horizon": self.horizon, "n_channels": self.n_channels})

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, seq_len, C) -> forecast (B, horizon, C)."""
        return self.model(x)

    def batch_tokens(self, batch: tuple[Tensor, Tensor]) -> int:
        return int(batch[0].shape[0] * batch[0].shape[1] * batch[0].shape[2])

    def predict_pair(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """x: (B, seq_len, C), y: (B, horizon, C) -> the forecast (B, horizon, C) and y."""
        return self(x), y

    def prediction_table(self, pred: np.ndarray, true: np.ndarray) -> pd.DataFrame:
        """pred, true: standardised (N, horizon, C) -> window, step (1 .. horizon), then per channel `<name>`
        and `<name>_true` in the data's original units."""
        data = self.trainer.datamodule
        names = getattr(data, "channels", None) or [f"c{c}" for c in range(self.n_channels)]
        scaler = getattr(data, "scaler", None)
        steps = np.arange(1, pred.shape[1] + 1)
        return step_table(original_units(pred, scaler), original_units(true, scaler), names, steps)

    def shared_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, y = batch
        loss = self.model.loss(x, y)
        self.log(f"{stage}/loss", loss, prog_bar=True)
        if stage == "train":
            return loss
        pred = self(x).contiguous()
        for name in ("mse", "mae"):
            metric = self.metrics[f"{stage}_{name}"]
            metric(pred, y)
            self.log(f"{stage}/{name}", metric, on_step=False, on_epoch=True, prog_bar=name == "mse")
        self.keep_for_plot(x[0], y[0], pred[0])
        return loss

    def on_fit_end(self) -> None:
        self.write_plot("val")

    def on_test_epoch_end(self) -> None:
        self.write_plot("test")

    def write_plot(self, stage: str) -> None:
        path = self.plot_path(f"{stage}_forecast.png")
        if path is None or not self.shown:
            return
        history, truth, predicted = (t.numpy() for t in self.shown)
        names = getattr(self.trainer.datamodule, "channels", None) or [f"c{c}" for c in range(self.n_channels)]
        plot_forecast(history, truth, predicted, names, path, f"{self.hparams.model}: first {stage} window")
        rank_zero_info(f"{stage} forecast plot: {path}")


def original_units(values: np.ndarray, scaler: StandardScaler | None) -> np.ndarray:
    """(..., C) standardised values -> the data's units (float64; NaN stays NaN); without a scaler (a data
    module that keeps none) they stay standardised."""
    if scaler is None:
        return values
    return scaler.inverse_transform(values.reshape(-1, values.shape[-1]).astype(np.float64)).reshape(values.shape)


def step_table(pred: np.ndarray, true: np.ndarray, names: list[str], steps: np.ndarray) -> pd.DataFrame:
    """pred, true: (N, S, C); steps: (S,) labels -> N * S rows: window, step, then `<name>`, `<name>_true`
    per channel."""
    n, s, _ = pred.shape
    columns: dict[str, np.ndarray] = {"window": np.repeat(np.arange(n), s), "step": np.tile(steps, n)}
    for c, name in enumerate(names):
        columns[name] = pred[..., c].reshape(-1)
        columns[f"{name}_true"] = true[..., c].reshape(-1)
    return pd.DataFrame(columns)
