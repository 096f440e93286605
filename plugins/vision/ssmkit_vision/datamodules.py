"""`ImageClassificationData`: the classify task's data, from an image folder, arrays, or scikit-learn's digits.

Batches are (images (B, C, H, W) float, labels (B,) long). Without `val_root`, a stratified split of the
training source by `seed` gives the validation set (also used for test). Transforms are timm's
(`timm.data.create_transform`): ToTensor + Normalize for evaluation, and for training, when `augment` is given,
timm's training transform with those arguments (e.g. `{scale: [0.8, 1.0], hflip: 0.0, color_jitter: 0.0}`:
note timm's defaults flip horizontally and jitter colours, wrong for digits).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from timm.data import create_transform
from torch.utils.data import DataLoader

from ssmkit_vision.data import ImageDataset, ImageSamples, list_images, read_arrays, read_digits, read_image_folder

MODES = {"L": 1, "RGB": 3}


class ImageClassificationData(L.LightningDataModule):
    def __init__(
        self,
        root: str | None = None,
        arrays: str | None = None,
        image_shape: list[int] | None = None,
        val_root: str | None = None,
        val_fraction: float = 0.2,
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
        """root: ImageFolder-style folder; arrays: .npz / .csv[.gz] (csv needs image_shape); neither: digits.
        mode: "L" or "RGB", every image converted to it. image_size: side of the model's square input; images
        of another size are resized or padded (`fit`). mean/std: per channel, default 0.5."""
        super().__init__()
        if root is not None and arrays is not None:
            raise ValueError("give root (an image folder) or arrays (.npz / .csv), not both")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
        if not 0 < val_fraction < 1 and val_root is None:
            raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
        self.root, self.arrays, self.image_shape = root, arrays, image_shape
        self.val_root, self.val_fraction, self.predict_root = val_root, val_fraction, predict_root
        self.mode, self.size, self.fit, self.augment = mode, (image_size, image_size), fit, augment
        self.mean = tuple(mean or [0.5] * MODES[mode])
        self.std = tuple(std or [0.5] * MODES[mode])
        self.on_bad_file = on_bad_file
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.classes: list[str] = []
        self.train_set: ImageDataset | None = None
        self.val_set: ImageDataset | None = None
        self.predict_set: ImageDataset | None = None

    @property
    def in_chans(self) -> int:
        return MODES[self.mode]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self._setup_train_val()
        if stage == "predict" and self.predict_set is None and self.predict_root is not None:
            files = list_images(self.predict_root, self.on_bad_file)
            self.predict_set = ImageDataset(files, None, self.mode, self.size, self.fit, self.transform(False))

    def _setup_train_val(self) -> None:
        samples = self._read(self.root, self.arrays)
        if self.val_root is not None:
            val = read_image_folder(self.val_root, self.on_bad_file)
            if val.classes != samples.classes:
                raise ValueError(f"val_root classes {val.classes} differ from the training classes {samples.classes}")
            train_idx, val_samples, val_idx = np.arange(len(samples)), val, np.arange(len(val))
        else:
            train_idx, val_idx = stratified_split(samples.labels, self.val_fraction, self.seed)
            val_samples = samples
        self.classes = samples.classes
        self.train_set = self._dataset(samples, train_idx, training=True)
        self.val_set = self._dataset(val_samples, val_idx, training=False)

    def _read(self, root: str | None, arrays: str | None) -> ImageSamples:
        if root is not None:
            return read_image_folder(root, self.on_bad_file)
        if arrays is not None:
            return read_arrays(arrays, self.image_shape)
        return read_digits()

    def _dataset(self, samples: ImageSamples, indices: np.ndarray, training: bool) -> ImageDataset:
        items = [samples.items[i] for i in indices]
        return ImageDataset(items, samples.labels[indices], self.mode, self.size, self.fit, self.transform(training))

    def transform(self, training: bool):
        """timm's transform: PIL image at the model's size -> normalised tensor (C, H, W)."""
        common = {"input_size": (self.in_chans, *self.size), "mean": self.mean, "std": self.std, "crop_pct": 1.0}
        if training and self.augment is not None:
            return create_transform(**common, is_training=True, **self.augment)
        return create_transform(**common)

    def item_names(self, stage: str) -> list[str]:
        """A name per sample of the predict (or validation) set: its path, or its index in the arrays."""
        dataset = self.predict_set if stage == "predict" and self.predict_set is not None else self.val_set
        return [str(item) if isinstance(item, Path) else f"#{i}" for i, item in enumerate(dataset.items)]

    def _loader(self, dataset: ImageDataset, shuffle: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            drop_last=shuffle and len(dataset) > self.batch_size,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.predict_set or self.val_set, shuffle=False)


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices): `val_fraction` of each class (at least one) to validation."""
    rng = np.random.default_rng(seed)
    val = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        val.append(members[: max(1, round(val_fraction * len(members)))])
    val_idx = np.sort(np.concatenate(val))
    return np.setdiff1d(np.arange(len(labels)), val_idx), val_idx
