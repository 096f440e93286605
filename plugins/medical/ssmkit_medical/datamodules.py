"""The medical plugin's data modules.

`MedicalImageData` (classify): MedMNIST npz (`npz`), an image folder (`root`), or the synthetic organs (neither).
Splits: the source's own "val" (and "test") when it has them; a source without "val" gives `val_fraction` of its
training images, stratified by class with `seed`. Without a "test" split the validation split serves test (the
shared PneumoniaMNIST / BreastMNIST files hold train + val only, so their test numbers are validation numbers).
`classes`, `n_classes` and `in_chans` (1 grey, 3 colour: from the data) are known after construction; the command
line hands the last two to the model. Batches: (images (B, C, S, S) in [-1, 1], labels (B,)), S = image_size.

`SegmentationData` (segment): see `ssmkit_medical.segmentation_data`.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
from torch.utils.data import Dataset

from ssmkit.data import BaseDataModule, stratified_split
from ssmkit_medical.data import ImageArrayDataset, ImageArrays, read_image_folder, read_medmnist
from ssmkit_medical.segmentation_data import SegmentationData
from ssmkit_medical.synthetic import CLASSES, synthetic_organs

__all__ = ["MedicalImageData", "SegmentationData"]


class MedicalImageData(BaseDataModule):
    def __init__(
        self,
        npz: str | None = None,
        root: str | None = None,
        classes: list[str] | None = None,
        image_size: int = 28,
        val_fraction: float = 0.2,
        n_synthetic: int = 600,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        """Labelled images of a MedMNIST file, an image folder, or synthetic organs (see the module doc).

        Args:
            npz: a MedMNIST file (`train_images`, `train_labels`, `val_*`, `test_*`); None: root, or synthetic.
            root: an image folder (`root/<class>/<image>`); None: npz, or synthetic (neither given).
            classes: the class names of the npz file's labels 0, 1, ... (None: the label values).
            image_size: the side in pixels the images are resized to.
            val_fraction: the stratified share of the training images that validates, for a source without a val split.
            n_synthetic: synthetic organ images, 3 classes (neither npz nor root).
            batch_size: samples per batch.
            num_workers: loader processes (0: load in the main process).
            seed: the data's own randomness (splits, generated data), apart from the training seed.
        """
        super().__init__(batch_size, num_workers, seed)
        if npz is not None and root is not None:
            raise ValueError("give npz (a MedMNIST file) or root (an image folder), not both")
        if not 0 < val_fraction < 1:
            raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
        self.npz, self.root, self.class_names = npz, root, classes
        self.image_size, self.val_fraction, self.n_synthetic = image_size, val_fraction, n_synthetic

    @cached_property
    def sources(self) -> dict[str, ImageArrays]:
        """The source's splits ("train", and "val" / "test" where it has them), read once."""
        if self.npz is not None:
            return read_medmnist(self.npz, self.class_names)
        if self.root is not None:
            return {"train": read_image_folder(self.root)}
        images, _, labels = synthetic_organs(self.n_synthetic, self.image_size, self.seed)
        names = [f"synthetic#{i}" for i in range(len(labels))]
        return {"train": ImageArrays((images * 255).round().astype(np.uint8), labels, CLASSES, names)}

    @property
    def classes(self) -> list[str]:
        return self.sources["train"].classes

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def in_chans(self) -> int:
        return self.sources["train"].channels

    def build(self, stage: str) -> dict[str, Dataset]:
        sources, size = self.sources, self.image_size
        datasets = {split: ImageArrayDataset(arrays, None, size) for split, arrays in sources.items()}
        if "val" not in sources:
            train, val = stratified_split(sources["train"].labels, self.val_fraction, self.seed)
            datasets["train"] = ImageArrayDataset(sources["train"], train, size)
            datasets["val"] = ImageArrayDataset(sources["train"], val, size)
        return datasets

    def item_names(self, split: str) -> list[str]:
        """A name per sample of the set serving `split`: its file, or "<split>#<index>" in the arrays."""
        return self.serving_split(split)[1].names()
