"""`ImageClassificationData`: the classify task's data, from an image folder, arrays, or scikit-learn's digits.

Batches are (images (B, C, H, W) float, labels (B,) long). Validation: `val_root`, else a stratified split of the
training source by `seed`. Test: `test_root` or `test_arrays` (the training classes), else the validation split
serves test. Prediction: `predict_root`, else the test (or validation) split. Transforms are timm's
(`timm.data.create_transform`): ToTensor + Normalize for evaluation, and for training, when `augment` is given,
timm's training transform with those arguments (e.g. `{scale: [0.8, 1.0], hflip: 0.0, color_jitter: 0.0}`:
note timm's defaults flip horizontally and jitter colours, wrong for digits).

`classes`, `n_classes`, `in_chans` and `image_size` are known right after construction (the command line hands
the last three to the model): an image folder's classes are its folder names, arrays are read once and kept.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from timm.data import create_transform
from torch.utils.data import Dataset

from ssmkit.data import BaseDataModule, DataError, stratified_split
from ssmkit_vision.data import (
    ImageDataset,
    ImageSamples,
    class_folders,
    list_images,
    read_arrays,
    read_digits,
    read_image_folder,
)

MODES = {"L": 1, "RGB": 3}


class ImageClassificationData(BaseDataModule):
    def __init__(
        self,
        root: str | None = None,
        arrays: str | None = None,
        image_shape: list[int] | None = None,
        val_root: str | None = None,
        val_fraction: float = 0.2,
        test_root: str | None = None,
        test_arrays: str | None = None,
        predict_root: str | None = None,
        mode: str = "L",
        image_size: int = 16,
        fit: str = "resize",
        augment: dict[str, Any] | None = None,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        on_bad_file: str = "error",
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        """Labelled images of an image folder, arrays, or scikit-learn's digits (see the module doc).

        Args:
            root: an ImageFolder-style folder, `root/<class>/<image>` (None: arrays, or the digits).
            arrays: a .npz (images, labels[, classes]) or .csv[.gz] (pixels then label per row) file.
            image_shape: the shape of a csv row's pixels, e.g. [28, 28] (needed for csv arrays).
            val_root: an ImageFolder-style validation folder (None: a stratified `val_fraction` of the training data).
            val_fraction: the stratified share of the training data that validates (without val_root).
            test_root: an ImageFolder-style test folder (None: test_arrays, or the val split serves test).
            test_arrays: test arrays in the formats of `arrays` (None: test_root, or the val split serves test).
            predict_root: a folder of images to classify, searched recursively (None: the test or val split).
            mode: "L" (grey) or "RGB": every image is converted to it.
            image_size: side in pixels of the model's square input.
            fit: an image of another size: "resize" (bicubic) or "pad" (shrunk if larger, aspect kept, centred).
            augment: timm's training-transform arguments, e.g. {scale: [0.8, 1.0], hflip: 0.0} (None: no augmentation).
            mean: per channel normalisation mean (None: 0.5 each).
            std: per channel normalisation standard deviation (None: 0.5 each).
            on_bad_file: an unreadable image file: "error" or "skip" (with a warning).
            batch_size: samples per batch.
            num_workers: loader processes (0: load in the main process).
            seed: the data's own randomness (splits, generated data), apart from the training seed.
        """
        super().__init__(batch_size, num_workers, seed)
        for prefix, folder, table in (("", root, arrays), ("test_", test_root, test_arrays)):
            if folder is not None and table is not None:
                raise ValueError(f"give {prefix}root (an image folder) or {prefix}arrays (.npz / .csv), not both")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
        if not 0 < val_fraction < 1 and val_root is None:
            raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
        self.root, self.arrays, self.image_shape = root, arrays, image_shape
        self.val_root, self.val_fraction, self.predict_root = val_root, val_fraction, predict_root
        self.test_root, self.test_arrays = test_root, test_arrays
        self.mode, self.image_size, self.fit, self.augment = mode, image_size, fit, augment
        self.size = (image_size, image_size)
        self.mean = tuple(mean or [0.5] * MODES[mode])
        self.std = tuple(std or [0.5] * MODES[mode])
        self.on_bad_file = on_bad_file

    @property
    def in_chans(self) -> int:
        return MODES[self.mode]

    @cached_property
    def classes(self) -> list[str]:
        """The training classes: an image folder's class folder names (no image opened), else the arrays'."""
        if self.root is not None:
            return [d.name for d in class_folders(self.root)]
        return self.training_samples.classes

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @cached_property
    def training_samples(self) -> ImageSamples:
        return self._read(self.root, self.arrays)

    def build(self, stage: str) -> dict[str, Dataset]:
        if stage == "predict" and self.predict_root is not None:
            files = list_images(self.predict_root, self.on_bad_file)
            return {"predict": ImageDataset(files, None, self.mode, self.size, self.fit, self.transform(False))}
        if stage in ("test", "predict") and (self.test_root or self.test_arrays) is not None:
            return {"test": self._dataset(self._read(self.test_root, self.test_arrays, held_out=True))}
        samples = self.training_samples
        if self.val_root is not None:
            val = self._read(self.val_root, None, held_out=True)
            return {"train": self._dataset(samples, training=True), "val": self._dataset(val)}
        train, val = stratified_split(samples.labels, self.val_fraction, self.seed)
        return {"train": self._dataset(samples, train, training=True), "val": self._dataset(samples, val)}

    def _read(self, root: str | None, arrays: str | None, held_out: bool = False) -> ImageSamples:
        """An image folder, arrays, or digits; a held-out (validation or test) source must have the training classes."""
        if root is not None:
            samples = read_image_folder(root, self.on_bad_file)
        else:
            samples = read_arrays(arrays, self.image_shape) if arrays is not None else read_digits()
        if held_out and samples.classes != self.classes:
            message = f"classes {samples.classes} differ from the training classes {self.classes}"
            raise DataError(message, source=root or arrays)
        return samples

    def _dataset(self, samples: ImageSamples, indices: np.ndarray | None = None, training: bool = False) -> Dataset:
        indices = np.arange(len(samples)) if indices is None else indices
        items = [samples.items[i] for i in indices]
        return ImageDataset(items, samples.labels[indices], self.mode, self.size, self.fit, self.transform(training))

    def transform(self, training: bool):
        """timm's transform: PIL image at the model's size -> normalised tensor (C, H, W)."""
        common = {"input_size": (self.in_chans, *self.size), "mean": self.mean, "std": self.std, "crop_pct": 1.0}
        if training and self.augment is not None:
            return create_transform(**common, is_training=True, **self.augment)
        return create_transform(**common)

    def item_names(self, split: str) -> list[str]:
        """A name per sample of the set serving `split`: its path, or its index in the arrays."""
        dataset = self.serving_split(split)[1]
        return [str(item) if isinstance(item, Path) else f"#{i}" for i, item in enumerate(dataset.items)]
