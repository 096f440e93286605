"""The medical plugin's tasks.

`MedicalClassifier` (classify): a timm-registry model (MedMamba `medmamba_*`, or timm's own such as `resnet18`, the
baseline) as an ssmkit `ClassificationTask`: cross-entropy, `<stage>/acc` and `<stage>/auc`, the confusion matrix
and per-class accuracy at the end of fit and test, `predictions.csv` from predict. Never downloads weights.

`Segmenter` (segment): a network of `ssmkit_medical.unets` (U-Mamba-bot / -enc, VM-UNet, or MONAI's DynUNet / UNet
baselines)
trained on patches with MONAI's `DiceCELoss`; validation, test and predict run MONAI's `sliding_window_inference`
over whole images (window = the training patch). Logged: `<stage>/loss`, and per foreground class and as their
mean, MONAI's Dice (`<stage>/dice`, `<stage>/dice_<class>`), IoU (`iou`) and 95th-percentile Hausdorff distance in
pixels (`hd95`; inf where a class is predicted nowhere). Reports: `plots/<stage>_overlays.png`, `<stage>_metrics.csv`;
predict writes `predictions/<name>.png` (2D) or `.nii.gz` (3D) masks in the data's raw label values and
`predictions/overlays.png`.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info
from monai.inferers import sliding_window_inference
from monai.losses import DiceCELoss
from monai.metrics import CumulativeIterationMetric, DiceMetric, HausdorffDistanceMetric, MeanIoU
from PIL import Image

import ssmkit_medical.models  # noqa: F401  (registers the MedMamba models in timm)
from ssmkit.train.classification import TimmClassifier
from ssmkit.train.module import TaskModule
from ssmkit_medical.plots import plot_overlays
from ssmkit_medical.unets import create_segmenter

Tensor = torch.Tensor


def segmentation_metrics() -> dict[str, CumulativeIterationMetric]:
    """MONAI's metrics of the segment task, per foreground class over an epoch."""
    per_class = {"include_background": False, "reduction": "mean_batch"}
    return {
        "dice": DiceMetric(**per_class),
        "iou": MeanIoU(**per_class),
        "hd95": HausdorffDistanceMetric(percentile=95, **per_class),
    }


class MedicalClassifier(TimmClassifier):
    metrics = ("acc", "auc")

    def __init__(
        self, model_name: str = "medmamba_test_patch2_28", n_classes: int = 3, in_chans: int = 1, **kwargs: Any
    ) -> None:
        """A MedMamba or timm model as the classifier (see `ssmkit.train.classification.TimmClassifier` for the rest).

        Args:
            model_name: MedMamba (`medmamba_*`) or any timm model (`resnet18`, the baseline).
            n_classes: number of classes (the command line takes it from the data).
            in_chans: image channels, 1 grey or 3 colour (the command line takes it from the data).
        """
        super().__init__(model_name, n_classes, in_chans, **kwargs)


class Segmenter(TaskModule):
    monitor = "val/dice"
    monitor_mode = "max"
    data_links = {"n_classes": "n_classes", "in_channels": "in_channels", "patch_size": "patch_size"}

    def __init__(
        self,
        model_name: str = "umamba_bot",
        n_classes: int = 3,
        in_channels: int = 1,
        patch_size: list[int] | None = None,
        model_kwargs: dict[str, Any] | None = None,
        sw_batch_size: int = 4,
        overlap: float = 0.25,
        max_overlays: int = 4,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        warmup_steps: int = 20,
        min_lr_ratio: float = 0.1,
        betas: tuple[float, float] = (0.9, 0.999),
    ) -> None:
        """A segmentation network of `ssmkit_medical.unets`, trained on patches, evaluated by sliding window.

        Args:
            model_name: "umamba_bot", "umamba_enc", "vmunet" (2D only), "dynunet" or "unet" (the MONAI baselines).
            n_classes: number of classes, background included (the command line takes it from the data).
            in_channels: image channels (the command line takes it from the data).
            patch_size: the training patch and sliding window in pixels (the command line takes it from the data).
            model_kwargs: more arguments of the network (filters, ...; see `ssmkit_medical.unets.create_segmenter`).
            sw_batch_size: windows per forward pass of the sliding-window inference.
            overlap: the fraction by which neighbouring sliding windows overlap.
            max_overlays: images shown in the overlay plots of validation, test and predict.
            lr: peak learning rate, reached after the warm-up.
            weight_decay: AdamW weight decay (never on SSM dynamics, norms or biases).
            warmup_steps: optimiser steps of linear warm-up from zero.
            min_lr_ratio: the cosine decay ends at lr * min_lr_ratio.
            betas: AdamW's moment coefficients.
        """
        super().__init__(lr, weight_decay, warmup_steps, min_lr_ratio, betas)
        self.save_hyperparameters()
        if n_classes < 2:
            raise ValueError(f"n_classes must be >= 2 (background and a structure), got {n_classes}")
        self.n_classes, self.patch_size = n_classes, list(patch_size or [64, 64])
        self.model = create_segmenter(model_name, in_channels, n_classes, self.patch_size, **(model_kwargs or {}))
        self.sw_batch_size, self.overlap, self.max_overlays = sw_batch_size, overlap, max_overlays
        self.loss = DiceCELoss(to_onehot_y=True, softmax=True)
        self.seg_metrics = segmentation_metrics()
        self.per_class: dict[str, dict[str, float]] = {}  # metric -> class -> value, of the last epoch
        self.kept: list[tuple[np.ndarray, np.ndarray | None, np.ndarray]] = []  # (image, mask, predicted)
        self.predicted: list[np.ndarray] = []

    def forward(self, images: Tensor) -> Tensor:
        """images (B, C, *patch) -> logits (B, n_classes, *patch)."""
        return self.model(images)

    def infer(self, images: Tensor) -> Tensor:
        """Whole images (B, C, *S) -> logits (B, n_classes, *S), window by window (MONAI's sliding window)."""
        return sliding_window_inference(images, self.patch_size, self.sw_batch_size, self.model, overlap=self.overlap)

    def batch_tokens(self, batch: tuple[Tensor, ...]) -> int:
        """Pixels (voxels) per batch."""
        return int(batch[0][:, 0].numel())

    def shared_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        images, masks = batch
        logits = self(images) if stage == "train" else self.infer(images)
        loss = self.loss(logits, masks)
        self.log(f"{stage}/loss", loss, prog_bar=True)
        if stage != "train":
            predicted = logits.argmax(1, keepdim=True)
            with warnings.catch_warnings():  # HD95 of a class absent from a mask or prediction: nan / inf, logged
                warnings.filterwarnings("ignore", message=".*this may result in nan/inf distance")
                # MONAI 1.6's HD95 passes its own deprecated argument to get_mask_edges: not the user's to fix
                warnings.filterwarnings("ignore", message=".*always_return_as_numpy", category=FutureWarning)
                for metric in self.seg_metrics.values():
                    metric(self.one_hot(predicted), self.one_hot(masks))
            self.keep(images, masks, predicted)
        return loss

    def one_hot(self, labels: Tensor) -> Tensor:
        """(B, 1, *S) class indices -> (B, n_classes, *S)."""
        return torch.nn.functional.one_hot(labels[:, 0], self.n_classes).movedim(-1, 1)

    def keep(self, images: Tensor, masks: Tensor | None, predicted: Tensor) -> None:
        """Keep the first `max_overlays` images of the epoch for the overlay plot."""
        for i in range(min(len(images), self.max_overlays - len(self.kept))):
            mask = None if masks is None else masks[i, 0].cpu().numpy()
            self.kept.append((images[i, 0].float().cpu().numpy(), mask, predicted[i, 0].cpu().numpy()))

    def on_validation_epoch_start(self) -> None:
        for metric in self.seg_metrics.values():
            metric.reset()
        self.kept = []

    def on_test_epoch_start(self) -> None:
        self.on_validation_epoch_start()

    def on_validation_epoch_end(self) -> None:
        self.log_metrics("val")

    def on_test_epoch_end(self) -> None:
        self.log_metrics("test")

    def log_metrics(self, stage: str) -> None:
        """`<stage>/<metric>` (mean over the foreground classes) and `<stage>/<metric>_<class>` of the epoch."""
        names = self.class_names()[1:]
        for metric_name, metric in self.seg_metrics.items():
            per_class = metric.aggregate().float().cpu()  # (n_classes - 1,), NaN for a class never present
            self.per_class[metric_name] = {name: float(v) for name, v in zip(names, per_class, strict=True)}
            self.log(f"{stage}/{metric_name}", per_class.nanmean(), prog_bar=metric_name == "dice")
            for name, value in zip(names, per_class, strict=True):
                self.log(f"{stage}/{metric_name}_{name.replace(' ', '_')}", value)

    def class_names(self) -> list[str]:
        classes = getattr(getattr(self.trainer, "datamodule", None), "classes", None)
        return [str(c) for c in classes] if classes else [str(k) for k in range(self.n_classes)]

    def write_report(self, stage: str) -> None:
        """`<stage>_metrics.csv` (Dice, IoU, HD95 per foreground class) and `plots/<stage>_overlays.png`."""
        png = self.run_file(f"plots/{stage}_overlays.png")
        if png is None or not self.kept or not self.per_class:
            return
        with open(png.parent.parent / f"{stage}_metrics.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["class", *self.per_class])
            for name in self.per_class["dice"]:
                writer.writerow([name, *(f"{values[name]:.4f}" for values in self.per_class.values())])
        mean = np.nanmean(list(self.per_class["dice"].values()))
        title = f"{self.hparams.model_name}: {stage} Dice {mean:.4f}"
        plot_overlays(*(list(part) for part in zip(*self.kept, strict=True)), self.class_names(), png, title)
        rank_zero_info(f"{stage} report: {title}; {png}")

    def predict_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        """batch: (images,) or (images, masks) -> predicted masks (B, 1, *S) of class indices."""
        predicted = self.infer(batch[0]).argmax(1, keepdim=True)
        self.predicted += [p[0].cpu().numpy() for p in predicted]
        self.keep(batch[0], batch[1] if len(batch) > 1 else None, predicted)
        return predicted

    def on_predict_epoch_start(self) -> None:
        self.predicted, self.kept = [], []

    def on_predict_epoch_end(self) -> None:
        folder = self.run_file("predictions/overlays.png", required=True)
        if folder is None or not self.predicted:
            return
        data = getattr(self.trainer, "datamodule", None)
        values = np.asarray(getattr(data, "label_values", range(self.n_classes)))
        masks = {str(i): mask for i, mask in enumerate(self.predicted)}
        if hasattr(data, "item_names"):
            masks = stack_volumes(data.item_names("predict"), data.item_volumes("predict"), self.predicted)
        for name, mask in masks.items():
            write_mask(folder.parent / name, values[mask])
        plot_overlays(*(list(part) for part in zip(*self.kept, strict=True)), self.class_names(), folder)
        rank_zero_info(f"predicted masks of {len(self.predicted)} image(s): {folder.parent}")


def stack_volumes(names: list[str], volumes: list[str | None], masks: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Predicted masks by name, the 2D slices of a volume (in slice order) stacked back into it (H, W, D)."""
    whole = {name: mask for name, volume, mask in zip(names, volumes, masks, strict=True) if volume is None}
    stacks: dict[str, list[np.ndarray]] = {}
    for volume, mask in zip(volumes, masks, strict=True):
        if volume is not None:
            stacks.setdefault(volume, []).append(mask)
    return whole | {volume: np.stack(parts, axis=-1) for volume, parts in stacks.items()}


def write_mask(stem: Path, mask: np.ndarray) -> Path:
    """A mask (H, W) as `<stem>.png` (8 or 16 bit), a volume (H, W, D) as `<stem>.nii.gz` (identity affine)."""
    if mask.ndim == 2:
        path = stem.with_name(stem.name + ".png")
        Image.fromarray(mask.astype(np.uint8 if mask.max() < 256 else np.uint16)).save(path)
    else:
        path = stem.with_name(stem.name + ".nii.gz")
        nib.save(nib.Nifti1Image(mask.astype(np.int16), np.eye(4)), path)
    return path
