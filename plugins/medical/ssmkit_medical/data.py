"""Image sources of the classify task, each read into `ImageArrays` (uint8 images in memory, labels, classes):

- MedMNIST's npz layout: `<split>_images` (N, H, W[, C]) uint8 and `<split>_labels` (N,) or (N, 1) for the splits
  "train", "val", "test" (any may be missing but "train"): `read_medmnist`;
- an ImageFolder-style root (`root/<class>/<image>`, torchvision's class and file listing), every image decoded
  once: grey files give (H, W) images, colour files (H, W, 3), and a folder mixing both is an error naming a file of
  each: `read_image_folder`;
- the synthetic organs (`ssmkit_medical.synthetic`), the bundled default.

`ImageArrayDataset` serves (image (C, H, W) float, label) at the model's size, normalised to [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

from ssmkit.data import DataError

SPLITS = ("train", "val", "test")


@dataclass
class ImageArrays:
    images: np.ndarray  # (N, H, W) grey or (N, H, W, C), uint8
    labels: np.ndarray  # (N,) int64 in [0, len(classes))
    classes: list[str]
    names: list[str]  # one per image: its file, or "<split>#<index>"

    @property
    def channels(self) -> int:
        return 1 if self.images.ndim == 3 else self.images.shape[-1]


def read_medmnist(path: str | Path, classes: list[str] | None = None) -> dict[str, ImageArrays]:
    """The splits of a MedMNIST npz file; class names `classes` or the label values."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MedMNIST npz file not found: {path}")
    with np.load(path) as npz:
        present = [s for s in SPLITS if f"{s}_images" in npz.files]
        if "train" not in present:
            raise DataError(f"lacks train_images / train_labels (MedMNIST layout); found {npz.files}", source=path)
        arrays = {s: (npz[f"{s}_images"], npz[f"{s}_labels"]) for s in present}
    n_classes = int(max(labels.max() for _, labels in arrays.values())) + 1
    names = classes or [str(k) for k in range(n_classes)]
    return {s: _checked(path, s, images, labels, names) for s, (images, labels) in arrays.items()}


def _checked(path: Path, split: str, images: np.ndarray, labels: np.ndarray, classes: list[str]) -> ImageArrays:
    labels = labels.reshape(-1) if labels.ndim == 2 and labels.shape[1] == 1 else labels
    if images.ndim not in (3, 4) or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(
            f"expected images (N, H, W[, C]) and labels (N,) or (N, 1), got {images.shape} and {labels.shape}",
            source=path,
            record=split,
        )
    if images.dtype != np.uint8:
        raise DataError(f"images must be uint8 as MedMNIST's are, got {images.dtype}", source=path, record=split)
    bad = np.flatnonzero((labels < 0) | (labels >= len(classes)))
    if len(bad):
        raise DataError(
            f"label {labels[bad[0]]} outside the {len(classes)} classes {classes}",
            source=path,
            record=f"{split} #{bad[0]}",
        )
    names = [f"{split}#{i}" for i in range(len(images))]
    return ImageArrays(images, labels.astype(np.int64), classes, names)


def read_image_folder(root: str | Path) -> ImageArrays:
    """`root/<class>/<image>` (classes sorted by folder name, as torchvision's ImageFolder), decoded once."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    try:
        classes, index = find_classes(str(root))
        samples = make_dataset(str(root), index, extensions=IMG_EXTENSIONS)
    except FileNotFoundError as exc:  # torchvision's words for an empty root or class folder
        raise DataError(str(exc), source=root) from None
    images = [_decode(Path(file)) for file, _ in samples]
    channels = {image.ndim for image in images}
    if len(channels) > 1:
        grey = next(f for (f, _), im in zip(samples, images, strict=True) if im.ndim == 2)
        colour = next(f for (f, _), im in zip(samples, images, strict=True) if im.ndim == 3)
        raise DataError(f"mixes grey ({grey}) and colour ({colour}) images; convert them to one mode", source=root)
    sizes = {image.shape for image in images}
    if len(sizes) > 1:
        raise DataError(f"images of several sizes {sorted(sizes)[:4]}; resize them to one size first", source=root)
    labels = np.asarray([label for _, label in samples], dtype=np.int64)
    return ImageArrays(np.stack(images), labels, classes, [file for file, _ in samples])


def _decode(path: Path) -> np.ndarray:
    """A file as uint8 (H, W) when grey, (H, W, 3) otherwise (alpha dropped)."""
    try:
        with Image.open(path) as img:
            grey = img.mode in ("1", "L", "I", "I;16", "F") or (img.mode == "P" and _grey_palette(img))
            return np.asarray(img.convert("L" if grey else "RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"not a readable image: {exc}", source=path) from None


def _grey_palette(img: Image.Image) -> bool:
    rgb = np.asarray(img.convert("RGB"))
    return bool((rgb == rgb[..., :1]).all())


class ImageArrayDataset(Dataset):
    """(image (C, size, size) float in [-1, 1], label) per sample; images resized bilinearly when needed."""

    def __init__(self, arrays: ImageArrays, indices: np.ndarray | None, size: int) -> None:
        self.indices = np.arange(len(arrays.labels)) if indices is None else indices
        self.arrays, self.size = arrays, size

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        i = int(self.indices[index])
        return to_tensor(self.arrays.images[i], self.size), int(self.arrays.labels[i])

    def names(self) -> list[str]:
        return [self.arrays.names[i] for i in self.indices]


def to_tensor(image: np.ndarray, size: int) -> torch.Tensor:
    """uint8 (H, W) or (H, W, C) -> float (C, size, size) in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(image)).float().div(127.5).sub(1.0)
    x = x[None] if x.dim() == 2 else x.permute(2, 0, 1)
    if x.shape[1:] != (size, size):
        x = F.interpolate(x[None], size=(size, size), mode="bilinear", align_corners=False)[0]
    return x
