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
from ssmkit.models.heads import ClassificationHead, LMHead, RegressionHead
from ssmkit.train.module import TaskModule

Tensor = torch.Tensor


class TokenSequenceTask(TaskModule):
    monitor = "val/acc"
    monitor_mode = "max"

    def __init__(self, vocab_size: int = 10, **kwargs: Any) -> None:
        """vocab_size: number of input token ids (the data module's vocab_size + its special tokens)."""
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.backbone = self.make_backbone(vocab_size=vocab_size)
        self.head = LMHead(self.backbone_config["d_model"], vocab_size)
        self.vocab_size = vocab_size
        self.accuracy = _per_stage(lambda: MulticlassAccuracy(vocab_size, average="micro", ignore_index=IGNORE))  # noqa: E501

    def setup(self, stage: str) -> None:
        data_vocab = getattr(self.trainer.datamodule, "input_vocab_size", None)
        if data_vocab is not None and data_vocab != self.vocab_size:
            raise ValueError(
                f"model.vocab_size={self.vocab_size} does not match the data's input vocabulary ({data_vocab} ids)"
            )

    def forward(self, tokens: Tensor) -> Tensor:
        return self.head(self.backbone(tokens))

    def shared_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        tokens, targets = batch
        logits = self(tokens)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE)
        acc = self.accuracy[f"{stage}_acc"]
        acc(logits.flatten(0, 1), targets.flatten())
        self.log(f"{stage}/loss", loss, prog_bar=True)
        self.log(f"{stage}/acc", acc, prog_bar=True, on_step=stage == "train", on_epoch=True)
        return loss

    def predict_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        return self(batch[0]).argmax(-1)


class InContextRegression(TaskModule):
    monitor = "val/mse"
    monitor_mode = "min"

    def __init__(self, dim: int = 4, **kwargs: Any) -> None:
        """dim: dimension of x (the inputs carry dim + 2 channels, see `ssmkit.data.synthetic.icl_regression`)."""
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.backbone = self.make_backbone(d_input=dim + 2)
        self.head = RegressionHead(self.backbone_config["d_model"], 1)

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

    def predict_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        return self(batch[0])


class SequenceClassifier(TaskModule):
    monitor = "val/acc"
    monitor_mode = "max"

    def __init__(self, d_input: int = 1, n_classes: int = 10, pooling: str = "mean", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.backbone = self.make_backbone(d_input=d_input)
        self.head = ClassificationHead(self.backbone_config["d_model"], n_classes, pooling)
        self.accuracy = _per_stage(lambda: MulticlassAccuracy(n_classes, average="micro"))

    def forward(self, x: Tensor) -> Tensor:
        """x (B, L, d_input) -> logits (B, n_classes)."""
        return self.head(self.backbone(x))

    def shared_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, labels = batch
        logits = self(x)
        loss = F.cross_entropy(logits, labels)
        self.accuracy[f"{stage}_acc"](logits, labels)
        self.log(f"{stage}/loss", loss, prog_bar=True)
        self.log(f"{stage}/acc", self.accuracy[f"{stage}_acc"], prog_bar=True, on_step=False, on_epoch=True)
        return loss

    def predict_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        return self(batch[0]).softmax(-1)


def _per_stage(make_metric) -> nn.ModuleDict:
    """One metric object per stage, keyed "<stage>_acc" (a ModuleDict key may not be "train")."""
    return nn.ModuleDict({f"{stage}_acc": make_metric() for stage in ("train", "val", "test")})
