"""Lightning modules of the synthetic tasks.

- `TokenSequenceTask`: token in, next-token logits out, scored where the target is not IGNORE
  (selective copying, associative recall, induction heads). Metric: token accuracy.
- `InContextRegression`: reads (x, y) pairs, predicts y at each x; reports MSE beside least squares.
- `SequenceClassifier`: real-valued sequence in, one class out (sequential digits).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from ssmkit.data.synthetic import IGNORE, least_squares_predictions
from ssmkit.models.backbone import DEFAULT_BACKBONE, BackboneConfig
from ssmkit.models.heads import ClassificationHead, LMHead, RegressionHead
from ssmkit.train.classification import ClassificationTask
from ssmkit.train.module import TaskModule

Tensor = torch.Tensor


class TokenSequenceTask(TaskModule):
    monitor = "val/acc"
    monitor_mode = "max"
    data_links = {"input_vocab_size": "vocab_size"}
    sequence_dims = (1, 1)  # (tokens, targets) split along the sequence; the loss is a `sequence_mean`

    def __init__(self, vocab_size: int, backbone: BackboneConfig = DEFAULT_BACKBONE, **kwargs: Any) -> None:
        """vocab_size: number of input token ids (taken from the data by the command line)."""
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.backbone = self.make_backbone(backbone, vocab_size=vocab_size)
        self.head = LMHead(self.backbone.d_model, vocab_size)
        self.accuracy = nn.ModuleDict(
            {
                f"{stage}_acc": MulticlassAccuracy(vocab_size, average="micro", ignore_index=IGNORE)
                for stage in ("train", "val", "test")
            }
        )

    def forward(self, tokens: Tensor) -> Tensor:
        """tokens (B, L) -> logits (B, L, vocab_size)."""
        return self.head(self.backbone(tokens))

    def shared_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        tokens, targets = batch
        logits = self(tokens)
        nats = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE, reduction="sum")
        loss = self.sequence_mean(nats, (targets != IGNORE).sum())
        acc = self.accuracy[f"{stage}_acc"]
        acc(logits.flatten(0, 1), targets.flatten())
        self.log(f"{stage}/loss", loss, prog_bar=True)
        self.log(f"{stage}/acc", acc, prog_bar=True, on_step=stage == "train", on_epoch=True)
        return loss

    def on_predict_epoch_start(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def predict_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        """-> predicted ids (B, L); rows of predictions.csv: the scored positions' targets and predictions."""
        tokens, targets = batch[0], batch[1]
        predicted = self(tokens).argmax(-1)
        for inputs, target, guess in zip(tokens.tolist(), targets.tolist(), predicted.tolist(), strict=True):
            scored = [t for t, y in enumerate(target) if y != IGNORE]
            self.rows.append(
                {
                    "item": len(self.rows),
                    "inputs": " ".join(map(str, inputs)),
                    "targets": " ".join(str(target[t]) for t in scored),
                    "predicted": " ".join(str(guess[t]) for t in scored),
                    "correct": all(guess[t] == target[t] for t in scored),
                }
            )
        return predicted

    def on_predict_epoch_end(self) -> None:
        self.write_rows(self.rows)


class InContextRegression(TaskModule):
    monitor = "val/mse"
    monitor_mode = "min"
    data_links = {"dim": "dim"}

    def __init__(self, dim: int, backbone: BackboneConfig = DEFAULT_BACKBONE, **kwargs: Any) -> None:
        """dim: dimension of x (the inputs carry dim + 2 channels, see `ssmkit.data.synthetic.icl_regression`)."""
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.backbone = self.make_backbone(backbone, d_input=dim + 2)
        self.head = RegressionHead(self.backbone.d_model, 1)

    def forward(self, features: Tensor) -> Tensor:
        """features (B, 2P, dim + 2) -> predicted y at each x position (B, P)."""
        return self.head(self.backbone(features))[:, 0::2, 0]

    def shared_step(self, batch: tuple[Tensor, Tensor, Tensor], stage: str) -> Tensor:
        features, xs, ys = batch
        loss = F.mse_loss(self(features), ys)
        self.log(f"{stage}/loss", loss, prog_bar=True)
        if stage != "train":
            self.log(f"{stage}/mse", loss, prog_bar=True)
            self.log(f"{stage}/lstsq_mse", F.mse_loss(least_squares_predictions(xs, ys), ys))
        return loss

    def on_predict_epoch_start(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def predict_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        """-> predicted y (B, P); rows of predictions.csv: per prompt and position, truth, model, least squares."""
        features, xs, ys = batch
        predicted, lstsq = self(features), least_squares_predictions(xs, ys)
        columns = ("y", "predicted", "least_squares")
        for b in range(len(ys)):
            item = len(self.rows) // ys.shape[1]
            for position in range(ys.shape[1]):
                values = (f"{float(v[b, position]):.6g}" for v in (ys, predicted, lstsq))
                self.rows.append({"item": item, "position": position, **dict(zip(columns, values, strict=True))})
        return predicted

    def on_predict_epoch_end(self) -> None:
        self.write_rows(self.rows)


class SequenceClassifier(ClassificationTask):
    data_links = {"n_classes": "n_classes", "d_input": "d_input"}

    def __init__(
        self,
        n_classes: int,
        d_input: int,
        pooling: str = "mean",
        backbone: BackboneConfig = DEFAULT_BACKBONE,
        **kwargs: Any,
    ) -> None:
        """A sequence backbone and a pooled classification head.

        Args:
            n_classes: number of classes (the command line takes it from the data).
            d_input: input channels per step (the command line takes it from the data).
            pooling: how the head pools the sequence: "mean", "last" or "cls".
            backbone: the sequence backbone's settings.
        """
        super().__init__(n_classes=n_classes, **kwargs)
        self.save_hyperparameters()
        self.backbone = self.make_backbone(backbone, d_input=d_input)
        self.head = ClassificationHead(self.backbone.d_model, n_classes, pooling)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, L, d_input) -> logits (B, n_classes)."""
        return self.head(self.backbone(x))
