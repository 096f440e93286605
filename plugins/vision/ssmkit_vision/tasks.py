"""`ImageClassifier`: a timm-registry image model trained with cross-entropy.

With `mixup` (timm's `Mixup` arguments: `mixup_alpha`, `cutmix_alpha`, `prob`, `switch_prob`, `mode`, ...),
training batches are mixed by timm's Mixup / CutMix into soft targets (label smoothing folded in) and the loss is
timm's `SoftTargetCrossEntropy`; top-1 / top-5 are still measured against the hard labels of the batch.

Logs `<stage>/loss`, `<stage>/acc` (top-1) and `<stage>/top5`. At the end of fit (from the last validation
epoch) and of test it writes, into the run folder, `plots/<stage>_confusion.png` (confusion matrix beside
per-class accuracy), `plots/<stage>_mistakes.png` (a grid of misclassified images) and
`<stage>_per_class_accuracy.csv`. `predict` writes `predictions.csv`: one row per image (its path, or its
index in the arrays), the predicted class and the probability of every class.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import timm
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only
from timm.data import Mixup
from timm.loss import SoftTargetCrossEntropy
from torch import nn
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

import ssmkit_vision.models  # noqa: F401  (registers the models in timm)
from ssmkit.train.module import TaskModule
from ssmkit_vision.plots import plot_confusion, plot_mistakes

Tensor = torch.Tensor
STAGES = ("train", "val", "test")


class ImageClassifier(TaskModule):
    monitor = "val/acc"
    monitor_mode = "max"

    def __init__(
        self,
        model_name: str = "vim_test_patch4_28",
        num_classes: int = 10,
        in_chans: int = 1,
        img_size: int = 16,
        model_kwargs: dict[str, Any] | None = None,
        pretrained_file: str | None = None,
        label_smoothing: float = 0.0,
        mixup: dict[str, Any] | None = None,
        max_mistakes: int = 32,
        lr: float = 1e-3,
        weight_decay: float = 0.05,
        warmup_steps: int = 100,
        min_lr_ratio: float = 0.1,
        betas: tuple[float, float] = (0.9, 0.999),
    ) -> None:
        """model_name: any timm model (`vim_*`, `hydra_*`, `vit_matched_*`, or timm's own) built with these
        num_classes / in_chans / img_size and `model_kwargs`; pretrained_file: local weights (never a download), of
        any image size (the position embedding is resampled); mixup: timm's `Mixup` arguments, or None."""
        super().__init__(
            lr=lr, weight_decay=weight_decay, warmup_steps=warmup_steps, min_lr_ratio=min_lr_ratio, betas=betas
        )
        self.save_hyperparameters()
        weights = {"pretrained": True, "pretrained_cfg_overlay": {"file": pretrained_file}} if pretrained_file else {}
        self.model = timm.create_model(
            model_name, num_classes=num_classes, in_chans=in_chans, img_size=img_size, **weights, **(model_kwargs or {})
        )
        self.num_classes, self.in_chans, self.img_size = num_classes, in_chans, img_size
        self.label_smoothing, self.max_mistakes = label_smoothing, max_mistakes
        self.mixup = _mixup(mixup, label_smoothing, num_classes)
        self.soft_cross_entropy = SoftTargetCrossEntropy()
        top_k = min(5, num_classes)
        # ModuleDict keys may not be "train" (a Module method), hence "<stage>_top1"
        self.metrics = nn.ModuleDict(
            {
                f"{stage}_top{k}": MulticlassAccuracy(num_classes, top_k=k, average="micro")
                for stage in STAGES
                for k in (1, top_k)
            }
        )
        self.top_k = top_k
        self.confusion = MulticlassConfusionMatrix(num_classes)
        self._mistakes: list[tuple[Tensor, Tensor, Tensor]] = []  # (images, true, predicted) per batch
        self._predictions: list[Tensor] = []

    def setup(self, stage: str) -> None:
        data = self.trainer.datamodule
        if data is None:  # plain dataloaders: nothing to check against
            return
        expected = {"num_classes": self.num_classes, "in_chans": self.in_chans, "image_size": self.img_size}
        found = {"num_classes": data.num_classes, "in_chans": data.in_chans, "image_size": data.size[0]}
        clash = {k: (expected[k], found[k]) for k in expected if found[k] != expected[k]}
        if clash:
            details = ", ".join(f"{k}: model {m}, data {d}" for k, (m, d) in clash.items())
            raise ValueError(f"the model and the data disagree ({details}); set model.* and data.* to match")
        if self.mixup is not None and data.train_set is not None:
            smallest_batch = min(data.batch_size, len(data.train_set))  # the loader drops a last partial batch
            if smallest_batch % 2:
                raise ValueError(
                    "mixup / cutmix pair each image with another of its batch and need an even batch size, "
                    f"but training batches hold {smallest_batch} images; set data.batch_size to an even number"
                )

    def forward(self, images: Tensor) -> Tensor:
        """images (B, C, H, W) -> logits (B, num_classes)."""
        return self.model(images)

    def batch_tokens(self, batch: tuple[Tensor, Tensor]) -> int:
        """Sequence positions per batch: images times tokens per image."""
        tokens = getattr(self.model, "pos_embed", None)
        return batch[0].shape[0] * (tokens.shape[1] if tokens is not None else 1)

    def shared_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        images, labels = batch
        if stage == "train" and self.mixup is not None:
            mixed, soft_targets = self.mixup(images, labels)  # (B, C, H, W), (B, num_classes)
            logits = self(mixed)
            loss = self.soft_cross_entropy(logits, soft_targets)
        else:
            logits = self(images)
            loss = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing if stage == "train" else 0.0)
        self.log(f"{stage}/loss", loss, prog_bar=True)
        for k, name in ((1, "acc"), (self.top_k, f"top{self.top_k}")):
            metric = self.metrics[f"{stage}_top{k}"]
            metric(logits, labels)
            self.log(f"{stage}/{name}", metric, on_step=False, on_epoch=True, prog_bar=k == 1)
        if stage != "train":
            self._collect(images, labels, logits.argmax(-1))
        return loss

    def _collect(self, images: Tensor, labels: Tensor, predicted: Tensor) -> None:
        self.confusion.update(predicted, labels)
        wrong = (predicted != labels).nonzero().flatten()
        room = self.max_mistakes - sum(len(m[1]) for m in self._mistakes)
        if room > 0 and len(wrong):
            keep = wrong[:room]
            self._mistakes.append((images[keep].cpu(), labels[keep].cpu(), predicted[keep].cpu()))

    def on_validation_epoch_start(self) -> None:
        self.confusion.reset()
        self._mistakes = []

    on_test_epoch_start = on_validation_epoch_start

    def on_fit_end(self) -> None:
        self.write_report("val")

    def on_test_epoch_end(self) -> None:
        self.write_report("test")

    def write_report(self, stage: str) -> Path | None:
        """Confusion matrix, per-class accuracy and mistakes of the last `stage` epoch, into the run folder."""
        run_dir = self.run_dir()
        if run_dir is None or not int(self.confusion.confmat.sum()):
            return None
        matrix = self.confusion.compute().cpu().numpy()  # on every rank: compute() synchronises
        if not self.trainer.is_global_zero:
            return None
        classes = self.trainer.datamodule.classes
        per_class = matrix.diagonal() / matrix.sum(1).clip(min=1)
        with open(run_dir / f"{stage}_per_class_accuracy.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["class", "accuracy", "count"])
            writer.writerows((c, f"{a:.4f}", n) for c, a, n in zip(classes, per_class, matrix.sum(1), strict=True))
        title = f"{self.hparams.model_name}: {stage} top-1 {matrix.trace() / matrix.sum():.4f}"
        plot_confusion(matrix, classes, run_dir / "plots" / f"{stage}_confusion.png", title)
        plot_mistakes(*self._mistake_arrays(), classes, run_dir / "plots" / f"{stage}_mistakes.png")
        rank_zero_info(f"{stage} report: {title}; plots in {run_dir / 'plots'}")
        return run_dir

    def _mistake_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(images (N, C, H, W), true (N,), predicted (N,)) of the collected mistakes."""
        if not self._mistakes:
            return np.zeros((0, self.in_chans, self.img_size, self.img_size)), np.zeros(0, int), np.zeros(0, int)
        images, true, predicted = (torch.cat(parts) for parts in zip(*self._mistakes, strict=True))
        return images.float().numpy(), true.numpy(), predicted.numpy()

    def predict_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        probabilities = self(batch[0]).softmax(-1)
        self._predictions.append(probabilities.cpu())
        return probabilities

    def on_predict_epoch_start(self) -> None:
        self._predictions = []

    @rank_zero_only
    def on_predict_epoch_end(self) -> None:
        run_dir = self.run_dir() or Path.cwd()
        probabilities = torch.cat(self._predictions).numpy()
        data = self.trainer.datamodule
        path = run_dir / "predictions.csv"
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["item", "predicted", *(f"p_{c}" for c in data.classes)])
            for name, row in zip(data.item_names("predict"), probabilities, strict=True):
                writer.writerow([name, data.classes[int(row.argmax())], *(f"{p:.6f}" for p in row)])
        rank_zero_info(f"predictions for {len(probabilities)} images: {path}")


def _mixup(arguments: dict[str, Any] | None, label_smoothing: float, num_classes: int) -> Mixup | None:
    """timm's Mixup / CutMix from the config's arguments; label smoothing and classes come from the task."""
    if arguments is None:
        return None
    clash = sorted({"label_smoothing", "num_classes"} & set(arguments))
    if clash:
        raise ValueError(f"mixup takes {clash} from the task (model.label_smoothing, model.num_classes); drop them")
    return Mixup(**arguments, label_smoothing=label_smoothing, num_classes=num_classes)
