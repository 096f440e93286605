"""Lightning modules of the sensors tasks. What a model must agree on with its data (input and target widths,
channels, lengths, classes) it takes from the data module (`data_links`); backbone settings are
`BackboneConfig`s (`model.backbone`, and HiSS's low level `model.low`).

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
  window has been read); accuracy, the confusion report and `predictions.csv` of `ClassificationTask`.

`predict` runs over the data module's predict split (the test windows, in order; `window`, for classify
`item`, is the index there) and writes into the run folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_info
from sklearn.preprocessing import StandardScaler
from torch import nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, Metric

from ssmkit.models.backbone import DEFAULT_BACKBONE, BackboneConfig
from ssmkit.models.heads import ClassificationHead
from ssmkit.train.classification import ClassificationTask
from ssmkit.train.module import TaskModule
from ssmkit_sensors.forecasting import FORECASTERS, DLinear, SSMForecaster
from ssmkit_sensors.models import LOW, build_encoder
from ssmkit_sensors.plots import plot_forecast, plot_prediction

Tensor = torch.Tensor
STAGES = ("train", "val", "test")


class RegressionTask(TaskModule):
    """Seq2seq and forecast: `predict` collects each batch's `predict_pair` and writes the task's
    `prediction_table` to `predict_file`; the first batch of each evaluation epoch is kept for the figure that
    `write_report` draws (`plot`) at the end of fit and test."""

    monitor = "val/mse"
    monitor_mode = "min"
    predict_file: ClassVar[str] = "predictions.csv"
    figure: ClassVar[str] = "prediction"
    shown: list[Tensor] | None = None

    def predict_pair(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """A batch's (prediction, truth) as the task's table wants them."""
        raise NotImplementedError

    def prediction_table(self, pred: np.ndarray, true: np.ndarray) -> pd.DataFrame:
        """The predict file's rows from the epoch's (prediction, truth), concatenated over batches."""
        raise NotImplementedError

    def plot(self, stage: str, path: Path) -> None:
        """Draw the kept batch (`self.shown`) of the last `stage` epoch to `path`."""
        raise NotImplementedError

    def on_predict_epoch_start(self) -> None:
        self.predicted: list[tuple[Tensor, Tensor]] = []

    def predict_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        pred, true = self.predict_pair(*batch)
        self.predicted.append((pred.detach().float().cpu(), true.cpu()))
        return pred

    def on_predict_epoch_end(self) -> None:
        path = self.run_file(self.predict_file, required=True)
        if path is None or not self.predicted:
            return
        pred, true = (torch.cat(t).numpy() for t in zip(*self.predicted, strict=True))
        self.prediction_table(pred, true).to_csv(path, index=False, float_format="%.7g")  # float32 precision
        rank_zero_info(f"wrote the predictions of {len(pred)} window(s) to {path}")

    def on_validation_epoch_start(self) -> None:
        self.shown = None

    on_test_epoch_start = on_validation_epoch_start

    def keep_for_plot(self, *tensors: Tensor) -> None:
        """Keep the first batch of an evaluation epoch for its figure."""
        if self.shown is None:
            self.shown = [t.detach().float().cpu() for t in tensors]

    def write_report(self, stage: str) -> None:
        path = self.run_file(f"plots/{stage}_{self.figure}.png")
        if path is not None and self.shown:
            self.plot(stage, path)
            rank_zero_info(f"{stage} {self.figure} plot: {path}")


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


def error_metrics(stages: tuple[str, ...]) -> nn.ModuleDict:
    """MSE and MAE per stage, keyed `<stage>_<name>`."""
    return nn.ModuleDict(
        {
            f"{stage}_{name}": metric()
            for stage in stages
            for name, metric in (("mse", MeanSquaredError), ("mae", MeanAbsoluteError))
        }
    )


class Seq2SeqRegressor(RegressionTask):
    data_links = {"d_input": "d_input", "d_target": "d_target"}

    def __init__(
        self,
        d_input: int = 3,
        d_target: int = 1,
        target_stride: int = 1,
        encoder: str = "hiss",
        chunk_size: int = 10,
        backbone: BackboneConfig = DEFAULT_BACKBONE,
        low: BackboneConfig = LOW,
        **kwargs: Any,
    ) -> None:
        """A causal encoder and a linear head, MSE on standardised targets (see the module doc).

        Args:
            d_input: input channels per step (the command line takes it from the data).
            d_target: target channels per step (the command line takes it from the data).
            target_stride: score only the steps closing a chunk of this many steps (1: every step).
            encoder: "hiss" (`low` per chunk, `backbone` over the chunks), "flat" (`backbone` over the raw stream)
                or "lstm" (an LSTM of `backbone`'s d_model, n_layers and dropout).
            chunk_size: steps per HiSS chunk (encoder "hiss"; the window must be a multiple of it).
            backbone: HiSS's high level, or the flat encoder's backbone (both must be causal).
            low: HiSS's low level, read over each chunk (default: one Mamba layer of width 32).
        """
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.d_input, self.d_target, self.target_stride = d_input, d_target, target_stride
        self.encoder = build_encoder(encoder, d_input, backbone, chunk_size, low)
        self.head = nn.Linear(self.encoder.d_output, d_target)
        self.metrics = error_metrics(STAGES)
        self.nmse = nn.ModuleDict({f"{stage}_nmse": NormalisedMSE(d_target) for stage in STAGES})

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, L, d_input) -> predictions at every step (B, L, d_target)."""
        return self.head(self.encoder(x))

    def scored(self, y: Tensor) -> Tensor:
        """(B, L, ...) -> the steps closing a chunk of target_stride (B, L // target_stride, ...)."""
        return y[:, self.target_stride - 1 :: self.target_stride].contiguous()

    def predict_pair(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """x: (B, L, d_input), y: (B, L, d_target) -> prediction and truth at the scored steps (B, S, d_target)."""
        return self.scored(self(x)), self.scored(y)

    def target_names(self) -> list[str]:
        data = self.trainer.datamodule
        return data.target_names if data is not None else [f"y{j}" for j in range(self.d_target)]

    def prediction_table(self, pred: np.ndarray, true: np.ndarray) -> pd.DataFrame:
        """pred, true: standardised (N, S, d_target) -> window, step (in the window, 0-based), then per
        target `<name>` and `<name>_true` in the data's original units (a missing truth stays empty)."""
        scaler = getattr(self.trainer.datamodule, "target_scaler", None)
        steps = np.arange(pred.shape[1]) * self.target_stride + self.target_stride - 1
        return step_table(original_units(pred, scaler), original_units(true, scaler), self.target_names(), steps)

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

    def plot(self, stage: str, path: Path) -> None:
        truth, predicted = (t.numpy() for t in self.shown)
        title = f"{self.hparams.encoder}: {stage} windows (standardised)"
        plot_prediction(truth, predicted, self.target_names(), path, title)


class SensorClassifier(ClassificationTask):
    data_links = {"n_classes": "n_classes", "d_input": "d_input"}

    def __init__(
        self,
        n_classes: int = 4,
        d_input: int = 3,
        pooling: str = "last",
        encoder: str = "hiss",
        chunk_size: int = 10,
        backbone: BackboneConfig = DEFAULT_BACKBONE,
        low: BackboneConfig = LOW,
        **kwargs: Any,
    ) -> None:
        """A causal encoder pooled over the window and a linear head.

        Args:
            n_classes: number of classes (the command line takes it from the data).
            d_input: input channels per step (the command line takes it from the data).
            pooling: how the head pools the window: "last" (once it has been read), "mean" or "cls" (step 0).
            encoder: "hiss" (`low` per chunk, `backbone` over the chunks), "flat" (`backbone` over the raw stream)
                or "lstm" (an LSTM of `backbone`'s d_model, n_layers and dropout).
            chunk_size: steps per HiSS chunk (encoder "hiss"; the window must be a multiple of it).
            backbone: HiSS's high level, or the flat encoder's backbone (both must be causal).
            low: HiSS's low level, read over each chunk (default: one Mamba layer of width 32).
        """
        super().__init__(n_classes=n_classes, **kwargs)
        self.save_hyperparameters()
        self.d_input = d_input
        self.encoder = build_encoder(encoder, d_input, backbone, chunk_size, low)
        self.head = ClassificationHead(self.encoder.d_output, n_classes, pooling)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, L, d_input) -> logits (B, n_classes)."""
        return self.head(self.encoder(x))


class Forecaster(RegressionTask):
    data_links = {"n_channels": "n_channels", "seq_len": "seq_len", "horizon": "horizon"}
    predict_file = "forecast.csv"
    figure = "forecast"

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
        backbone: BackboneConfig = DEFAULT_BACKBONE,
        **kwargs: Any,
    ) -> None:
        """A long-horizon forecaster: the patched SSM or the DLinear baseline (see `ssmkit_sensors.forecasting`).

        Args:
            model: "ssm" (RevIN, channel independence, patches read by `backbone`) or "dlinear" (the baseline).
            n_channels: channels of the series (the command line takes it from the data).
            seq_len: past steps the model reads (the command line takes it from the data).
            horizon: future steps it forecasts (the command line takes it from the data).
            patch_len: steps per patch (model "ssm"; at most seq_len).
            patch_stride: steps between the starts of neighbouring patches (model "ssm").
            head_dropout: dropout before the linear map to the horizon (model "ssm").
            fourier: `FourierHead` kwargs (n_bins, n_freqs, low, high) plus d_head, for a predictive distribution
                (model "ssm"); None: a point forecast.
            kernel_size: DLinear's moving-average kernel in steps, odd (model "dlinear").
            backbone: the backbone over the patches (model "ssm").
        """
        super().__init__(**kwargs)
        self.save_hyperparameters()
        if model not in FORECASTERS:
            raise ValueError(f"model must be one of {FORECASTERS}, got {model!r}")
        self.n_channels, self.seq_len, self.horizon = n_channels, seq_len, horizon
        if model == "ssm":
            self.model: nn.Module = SSMForecaster(
                n_channels, seq_len, horizon, backbone, patch_len, patch_stride, head_dropout, fourier
            )
        else:
            self.model = DLinear(seq_len, horizon, kernel_size)
        self.metrics = error_metrics(("val", "test"))

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, seq_len, C) -> forecast (B, horizon, C)."""
        return self.model(x)

    def batch_tokens(self, batch: tuple[Tensor, Tensor]) -> int:
        return int(batch[0].shape[0] * batch[0].shape[1] * batch[0].shape[2])

    def predict_pair(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """x: (B, seq_len, C), y: (B, horizon, C) -> the forecast (B, horizon, C) and y."""
        return self(x), y

    def channel_names(self) -> list[str]:
        return getattr(self.trainer.datamodule, "channels", None) or [f"c{c}" for c in range(self.n_channels)]

    def prediction_table(self, pred: np.ndarray, true: np.ndarray) -> pd.DataFrame:
        """pred, true: standardised (N, horizon, C) -> window, step (1 .. horizon), then per channel `<name>`
        and `<name>_true` in the data's original units."""
        scaler = getattr(self.trainer.datamodule, "scaler", None)
        steps = np.arange(1, pred.shape[1] + 1)
        return step_table(original_units(pred, scaler), original_units(true, scaler), self.channel_names(), steps)

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

    def plot(self, stage: str, path: Path) -> None:
        history, truth, predicted = (t.numpy() for t in self.shown)
        title = f"{self.hparams.model}: first {stage} window"
        plot_forecast(history, truth, predicted, self.channel_names(), path, title)


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
