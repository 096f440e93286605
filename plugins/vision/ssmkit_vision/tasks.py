"""`ImageClassifier`: a timm-registry image model as an ssmkit `ClassificationTask`.

The base does the loss (label smoothing in training), the metrics (`<stage>/acc` top-1, `<stage>/top5`), the
confusion matrix and per-class accuracy at the end of fit and test, and `predictions.csv` (one row per image: its
path, or its index in the arrays). The class count, channels and image size come from the data module.

Vision adds mixup and a picture. With `mixup` (timm's `Mixup` arguments: `mixup_alpha`, `cutmix_alpha`, `prob`,
`switch_prob`, `mode`, ...), training batches are mixed by timm's Mixup / CutMix into soft targets (label smoothing
folded in) and the loss is timm's `SoftTargetCrossEntropy`; top-1 / top-5 are still measured against the hard
labels of the batch. The report also draws `plots/<stage>_mistakes.png`, a grid of misclassified images.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from timm.data import Mixup
from timm.loss import SoftTargetCrossEntropy

import ssmkit_vision.models  # noqa: F401  (registers the models in timm)
from ssmkit.data import check_labels
from ssmkit.train.classification import TimmClassifier
from ssmkit_vision.plots import plot_mistakes

Tensor = torch.Tensor


class ImageClassifier(TimmClassifier):
    metrics = ("acc", "top5")
    data_links = {**TimmClassifier.data_links, "image_size": "img_size"}

    def __init__(
        self,
        model_name: str = "vim_test_patch4_28",
        n_classes: int = 10,
        in_chans: int = 1,
        img_size: int = 16,
        model_kwargs: dict[str, Any] | None = None,
        mixup: dict[str, Any] | None = None,
        max_mistakes: int = 32,
        **kwargs: Any,
    ) -> None:
        """A timm image model as the classifier, with optional mixup (see the module doc).

        `pretrained_file` (local weights, never a download) may be of any image size: the position embedding is
        resampled.

        Args:
            model_name: any timm model (`vim_*`, `hydra_*`, `vit_matched_*`, or timm's own).
            n_classes: number of classes (the command line takes it from the data).
            in_chans: image channels (the command line takes it from the data).
            img_size: side in pixels of the square input (the command line takes it from the data).
            model_kwargs: more arguments of the timm model (depth, drop_path_rate, ...).
            mixup: timm's `Mixup` arguments (mixup_alpha, cutmix_alpha, prob, switch_prob, mode, ...); None: no mixup.
            max_mistakes: misclassified images kept for the mistakes plot of validation and test.
        """
        model_kwargs = {"img_size": img_size, **(model_kwargs or {})}
        super().__init__(model_name, n_classes, in_chans, model_kwargs, **kwargs)
        self.mixup = _mixup(mixup, self.label_smoothing, n_classes)
        self.soft_cross_entropy = SoftTargetCrossEntropy()
        self.max_mistakes = max_mistakes
        self.mistakes: list[tuple[Tensor, Tensor, Tensor]] = []  # (images, true, predicted) per batch

    def batch_tokens(self, batch: tuple[Tensor, Tensor]) -> int:
        """Sequence positions per batch: images times tokens per image."""
        tokens = getattr(self.model, "pos_embed", None)
        return batch[0].shape[0] * (tokens.shape[1] if tokens is not None else 1)

    def shared_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        images, labels = batch
        check_labels(f"{stage} batch", labels, self.n_classes)
        if stage == "train" and self.mixup is not None:
            if len(images) % 2:
                raise ValueError(
                    "mixup / cutmix pair each image with another of its batch and need an even batch size, "
                    f"but training batches hold {len(images)} images; set data.batch_size to an even number"
                )
            mixed, soft_targets = self.mixup(images, labels)  # (B, C, H, W), (B, n_classes)
            logits = self(mixed)
            loss = self.soft_cross_entropy(logits, soft_targets)
        else:
            logits = self(images)
            loss = self.classification_loss(logits, labels, stage)
        self.log_classification(logits, labels, loss, stage)
        if stage != "train":
            self._keep_mistakes(images, labels, logits.argmax(-1))
        return loss

    def _keep_mistakes(self, images: Tensor, labels: Tensor, predicted: Tensor) -> None:
        room = self.max_mistakes - sum(len(m[1]) for m in self.mistakes)
        wrong = (predicted != labels).nonzero().flatten()[: max(room, 0)]
        if len(wrong):
            self.mistakes.append((images[wrong].cpu(), labels[wrong].cpu(), predicted[wrong].cpu()))

    def on_validation_epoch_start(self) -> None:
        super().on_validation_epoch_start()
        self.mistakes = []

    def on_test_epoch_start(self) -> None:
        super().on_test_epoch_start()
        self.mistakes = []

    def write_report(self, stage: str) -> None:
        """The base's confusion matrix and per-class accuracy, and `plots/<stage>_mistakes.png`."""
        super().write_report(stage)
        path = self.run_file(f"plots/{stage}_mistakes.png")
        if path is not None and int(self.confusion.confmat.sum()):
            plot_mistakes(*self._mistake_arrays(), self.class_names(), path)

    def _mistake_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(images (N, C, H, W), true (N,), predicted (N,)) of the kept mistakes."""
        if not self.mistakes:
            return np.zeros((0, 1, 1, 1)), np.zeros(0, int), np.zeros(0, int)
        images, true, predicted = (torch.cat(parts) for parts in zip(*self.mistakes, strict=True))
        return images.float().numpy(), true.numpy(), predicted.numpy()


def _mixup(arguments: dict[str, Any] | None, label_smoothing: float, n_classes: int) -> Mixup | None:
    """timm's Mixup / CutMix from the config's arguments; label smoothing and classes come from the task."""
    if arguments is None:
        return None
    clash = sorted({"label_smoothing", "num_classes"} & set(arguments))
    if clash:
        raise ValueError(f"mixup takes {clash} from the task (model.label_smoothing, the data's classes); drop them")
    return Mixup(**arguments, label_smoothing=label_smoothing, num_classes=n_classes)
