"""`ClassificationTask`: the part of a task that classifies, shared by every plugin.

A subclass builds its model in `__init__` (after `super().__init__(n_classes=..., ...)`) and implements
`forward(*inputs) -> logits (B, n_classes)`; batches are `(*inputs, labels)`. This class owns the rest:
cross-entropy (label smoothing in training), the metrics named in `metrics` per stage, and the report at the end
of fit and test: `plots/<stage>_confusion.png` (confusion matrix beside per-class accuracy),
`<stage>_confusion.csv`, `<stage>_per_class_accuracy.csv`; `predict` writes `predictions.csv` (item, predicted
class, the true class where the predict split has labels, then the probability of every class).

Metric names: "acc" (top-1), "top<k>" (top-k, k capped at n_classes), "mcc" (Matthews), "f1" (macro F1), "auc"
(area under the ROC curve of the softmax probabilities, one class against the rest, macro-averaged: for two classes
the binary AUC).
Class names come from the data module's `classes` when it has them, else "0", "1", ...
"""

from __future__ import annotations

import csv
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_info
from torch import nn
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassAUROC,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassMatthewsCorrCoef,
)

from ssmkit.data.checks import check_labels
from ssmkit.train.module import TaskModule
from ssmkit.train.plots import plot_confusion

Tensor = torch.Tensor
STAGES = ("train", "val", "test")


def classification_metric(name: str, n_classes: int) -> Metric:
    """The torchmetrics object behind a metric name ("acc", "top5", "mcc", "f1", "auc"); each is updated with
    logits (B, n_classes) and labels (B,)."""
    if name == "acc":
        return MulticlassAccuracy(n_classes, average="micro")
    if name.startswith("top") and name[3:].isdigit():
        return MulticlassAccuracy(n_classes, top_k=min(int(name[3:]), n_classes), average="micro")
    if name == "mcc":
        return MulticlassMatthewsCorrCoef(n_classes)
    if name == "f1":
        return MulticlassF1Score(n_classes, average="macro")
    if name == "auc":
        return SoftmaxAUROC(n_classes, average="macro")
    raise ValueError(f"unknown classification metric {name!r}; known: acc, top<k>, mcc, f1, auc")


class SoftmaxAUROC(MulticlassAUROC):
    """AUROC of logits: torchmetrics applies softmax only when some score lies outside [0, 1], so logits that all
    happen to lie in [0, 1] would be ranked as if they were probabilities; this metric always takes the softmax.
    Exact (no thresholds binning): it keeps every score of the epoch, (N, n_classes) floats."""

    def update(self, preds: Tensor, target: Tensor) -> None:
        super().update(preds.float().softmax(-1), target)


class ClassificationTask(TaskModule):
    monitor = "val/acc"
    monitor_mode = "max"
    data_links = {"n_classes": "n_classes"}
    # logged per stage as "<stage>/<name>"; the first is shown in the progress bar
    metrics: ClassVar[tuple[str, ...]] = ("acc",)
    # how many tensors of a batch `forward` takes; the one after them is the label
    n_inputs: ClassVar[int] = 1

    def __init__(self, n_classes: int, label_smoothing: float = 0.0, **kwargs: Any) -> None:
        """A classifier trained with cross-entropy; the subclass builds the network.

        Args:
            n_classes: number of classes (the command line takes it from the data).
            label_smoothing: label smoothing of the training loss (validation and test use plain cross-entropy).
        """
        super().__init__(**kwargs)
        if n_classes < 2:
            raise ValueError(f"n_classes must be >= 2, got {n_classes}")
        self.n_classes, self.label_smoothing = n_classes, label_smoothing
        # ModuleDict keys may not be "train" (a Module method), hence "<stage>_metrics"
        self.stage_metrics = nn.ModuleDict(
            {
                f"{stage}_metrics": MetricCollection(
                    {name: classification_metric(name, n_classes) for name in self.metrics}, prefix=f"{stage}/"
                )
                for stage in STAGES
            }
        )
        self.confusion = MulticlassConfusionMatrix(n_classes)
        self.probabilities: list[Tensor] = []
        self.labels: list[Tensor] = []

    def classification_loss(self, logits: Tensor, labels: Tensor, stage: str) -> Tensor:
        smoothing = self.label_smoothing if stage == "train" else 0.0
        return F.cross_entropy(logits, labels, label_smoothing=smoothing)

    def shared_step(self, batch: tuple[Tensor, ...], stage: str) -> Tensor:
        inputs, labels = batch[: self.n_inputs], batch[self.n_inputs]
        check_labels(f"{stage} batch", labels, self.n_classes)
        logits = self(*inputs)
        loss = self.classification_loss(logits, labels, stage)
        self.log_classification(logits, labels, loss, stage)
        return loss

    def log_classification(self, logits: Tensor, labels: Tensor, loss: Tensor, stage: str) -> None:
        """Log `<stage>/loss` and the stage's metrics; count the confusion matrix in val and test."""
        self.log(f"{stage}/loss", loss, prog_bar=True)
        collection = self.stage_metrics[f"{stage}_metrics"]
        collection.update(logits, labels)
        for i, (name, metric) in enumerate(collection.items(keep_base=False)):
            self.log(name, metric, on_step=False, on_epoch=True, prog_bar=i == 0)
        if stage != "train":
            self.confusion.update(logits.argmax(-1), labels)

    def on_validation_epoch_start(self) -> None:
        self.confusion.reset()

    def on_test_epoch_start(self) -> None:
        self.confusion.reset()

    def class_names(self) -> list[str]:
        data = getattr(self.trainer, "datamodule", None)
        classes = getattr(data, "classes", None)
        return [str(c) for c in classes] if classes else [str(k) for k in range(self.n_classes)]

    def write_report(self, stage: str) -> None:
        """Confusion matrix (PNG + CSV) and per-class accuracy (CSV) of the last `stage` epoch."""
        if not int(self.confusion.confmat.sum()):
            return
        matrix = self.confusion.compute().cpu().numpy()  # on every rank: compute() synchronises
        png = self.run_file(f"plots/{stage}_confusion.png")
        if png is None:
            return
        classes = self.class_names()
        table = png.parent.parent
        write_confusion_csv(matrix, classes, table / f"{stage}_confusion.csv")
        per_class = matrix.diagonal() / matrix.sum(1).clip(min=1)
        with open(table / f"{stage}_per_class_accuracy.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["class", "accuracy", "count"])
            writer.writerows((c, f"{a:.4f}", int(n)) for c, a, n in zip(classes, per_class, matrix.sum(1), strict=True))
        title = f"{type(self).__name__}: {stage} accuracy {matrix.trace() / matrix.sum():.4f}"
        plot_confusion(matrix, classes, png, title)
        rank_zero_info(f"{stage} report: {title}; {png}")

    def predict_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        """batch: (*inputs, labels) or (*inputs,) when the predict split has no labels -> probabilities (B, K)."""
        probabilities = self(*batch[: self.n_inputs]).softmax(-1)
        self.probabilities.append(probabilities.detach().float().cpu())
        if len(batch) > self.n_inputs:
            self.labels.append(batch[self.n_inputs].cpu())
        return probabilities

    def on_predict_epoch_start(self) -> None:
        self.probabilities, self.labels = [], []

    def on_predict_epoch_end(self) -> None:
        path = self.run_file("predictions.csv", required=True)
        if path is None or not self.probabilities:
            return
        probabilities = torch.cat(self.probabilities).numpy()
        data = getattr(self.trainer, "datamodule", None)
        names = data.item_names("predict") if hasattr(data, "item_names") else None
        labels = torch.cat(self.labels).numpy() if self.labels else None
        write_predictions(path, probabilities, self.class_names(), names, labels)
        rank_zero_info(f"predictions for {len(probabilities)} item(s): {path}")


def write_confusion_csv(matrix: np.ndarray, classes: list[str], path: Any) -> None:
    """Rows: true class, columns: predicted class (counts)."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["true \\ predicted", *classes])
        writer.writerows([c, *(int(n) for n in row)] for c, row in zip(classes, matrix, strict=True))


def write_predictions(
    path: Any, probabilities: np.ndarray, classes: list[str], items: list[str] | None, labels: np.ndarray | None = None
) -> None:
    """CSV: item (a name, else the row index), predicted class, `label` (the true class, where the predict split has
    labels; empty for a label < 0, i.e. unknown), p_<class> for every class."""
    # the first len(probabilities) items: `limit_predict_batches` may stop before the end of the split
    items = items[: len(probabilities)] if items is not None else [str(i) for i in range(len(probabilities))]
    known = labels is not None and bool((labels >= 0).any())
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["item", "predicted", *(["label"] if known else []), *(f"p_{c}" for c in classes)])
        for i, (item, row) in enumerate(zip(items, probabilities, strict=True)):
            label = ([classes[int(labels[i])] if labels[i] >= 0 else ""]) if known else []
            writer.writerow([item, classes[int(row.argmax())], *label, *(f"{p:.6f}" for p in row)])


class TimmClassifier(ClassificationTask):
    """A timm-registry image model as a ClassificationTask: images (B, C, H, W) -> logits (B, n_classes).

    The model is `timm.create_model(model_name, num_classes=n_classes, in_chans=in_chans, **model_kwargs)` (timm
    keeps its own `num_classes`), with local weights from `pretrained_file` when given (never a download); AdamW
    defaults of timm's DeiT recipe (weight decay 0.05, betas 0.9 / 0.999). timm is imported when the model is
    built: the plugins whose tasks build on this class (vision, medical) install it."""

    data_links = {"n_classes": "n_classes", "in_chans": "in_chans"}

    def __init__(
        self,
        model_name: str,
        n_classes: int,
        in_chans: int = 3,
        model_kwargs: dict[str, Any] | None = None,
        pretrained_file: str | None = None,
        weight_decay: float = 0.05,
        betas: tuple[float, float] = (0.9, 0.999),
        **kwargs: Any,
    ) -> None:
        """A timm model as the classifier.

        Args:
            model_name: a name from `timm.list_models()` (the plugin's own models included).
            n_classes: number of classes (the command line takes it from the data).
            in_chans: image channels (the command line takes it from the data).
            model_kwargs: more arguments of the timm model (img_size, depth, drop_path_rate, ...).
            pretrained_file: local weights to start from (nothing is downloaded).
            weight_decay: AdamW weight decay (never on norms, biases or SSM dynamics).
            betas: AdamW's moment coefficients.
        """
        import timm

        super().__init__(n_classes=n_classes, weight_decay=weight_decay, betas=betas, **kwargs)
        self.save_hyperparameters()
        weights = {"pretrained": True, "pretrained_cfg_overlay": {"file": pretrained_file}} if pretrained_file else {}
        settings = {"num_classes": n_classes, "in_chans": in_chans, **weights, **(model_kwargs or {})}
        self.model = timm.create_model(model_name, **settings)

    def forward(self, images: Tensor) -> Tensor:
        """images (B, C, H, W) -> logits (B, n_classes)."""
        return self.model(images)
