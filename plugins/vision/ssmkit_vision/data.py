"""Image sources and the dataset of the classify task.

Sources, each read into `ImageSamples` (an image item per sample: a file path or a uint8 array):
- an ImageFolder-style root (`root/<class>/<image>`), every file opened once at setup: a corrupt or non-image
  file is reported with its path (an error, or skipped with a warning); an empty class folder is an error
  naming it; hidden files (".DS_Store") are ignored;
- arrays: `.npz` with `images` (N, H, W[, C]) and `labels` (N,) (optional `classes`), or `.csv[.gz]` rows
  of H*W*C pixel values then the label, with `image_shape` given (MNIST's csv: [28, 28]); uint8 values, or
  floats in [0, 1];
- scikit-learn's digits (1,797 8x8 grey images), the bundled default.

`ImageDataset` converts every image to one mode ("L", "RGB"; alpha is dropped), brings it to the model's size
(`fit="resize"`, or `fit="pad"`: centred on a black canvas, shrunk first if larger) and applies the
transform (timm's, chosen by the data module's config). Unusable data raises ssmkit's `DataError` naming the file.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ssmkit.data import DataError, check_finite

Item = Path | np.ndarray
FITS = ("resize", "pad")
BAD_FILE_ACTIONS = ("error", "skip")


@dataclass
class ImageSamples:
    items: list[Item]
    labels: np.ndarray  # (N,) int64, indices into classes
    classes: list[str]

    def __len__(self) -> int:
        return len(self.items)


def class_folders(root: str | Path) -> list[Path]:
    """The class folders of `root/<class>/<image>`, sorted by name (hidden ones ignored); no image is opened."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        raise DataError("no class folders (expected root/<class>/<image>)", source=root)
    return class_dirs


def read_image_folder(root: str | Path, on_bad_file: str = "error") -> ImageSamples:
    """`root/<class>/<image>` (classes sorted by folder name); every file is opened once here."""
    if on_bad_file not in BAD_FILE_ACTIONS:
        raise ValueError(f"on_bad_file must be one of {BAD_FILE_ACTIONS}, got {on_bad_file!r}")
    class_dirs = class_folders(root)
    items, labels, bad = [], [], []
    for label, class_dir in enumerate(class_dirs):
        files = sorted(f for f in class_dir.rglob("*") if f.is_file() and not f.name.startswith("."))
        good, unreadable = _split_readable(files)
        bad += unreadable
        if not good:
            reason = "is empty" if not files else "holds no readable image"
            raise DataError(f"class folder {class_dir} {reason}: every class needs at least one image")
        items += good
        labels += [label] * len(good)
    _report_bad_files(bad, on_bad_file)
    return ImageSamples(items, np.asarray(labels, dtype=np.int64), [d.name for d in class_dirs])


def list_images(root: str | Path, on_bad_file: str = "error") -> list[Path]:
    """Every readable image under `root` (recursively, sorted), for prediction; bad files as configured."""
    files = sorted(f for f in Path(root).rglob("*") if f.is_file() and not f.name.startswith("."))
    good, bad = _split_readable(files)
    _report_bad_files(bad, on_bad_file)
    if not good:
        raise DataError("no readable image under it", source=root)
    return good


def _split_readable(files: list[Path]) -> tuple[list[Path], list[Path]]:
    """(the files PIL can decode, the others)."""
    readable = [_readable(f) for f in files]
    return [f for f, ok in zip(files, readable, strict=True) if ok], [
        f for f, ok in zip(files, readable, strict=True) if not ok
    ]


def _readable(path: Path) -> bool:
    try:
        with Image.open(path) as img:
            img.load()
        return True
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return False


def _report_bad_files(bad: list[Path], on_bad_file: str) -> None:
    if not bad:
        return
    shown = "\n  ".join(map(str, bad[:20])) + (f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else "")
    message = f"{len(bad)} corrupt or non-image file(s):\n  {shown}"
    if on_bad_file == "error":
        raise DataError(message + "\n(set on_bad_file: skip to train without them)")
    warnings.warn(message + "\nskipped (on_bad_file: skip)", stacklevel=2)


def read_arrays(path: str | Path, image_shape: list[int] | None = None) -> ImageSamples:
    """Images and labels from `.npz` (images, labels[, classes]) or `.csv[.gz]` (pixels then label per row)."""
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path) as npz:
            missing = {"images", "labels"} - set(npz.files)
            if missing:
                raise DataError(f"lacks the arrays {sorted(missing)} (found {npz.files})", source=path)
            images, labels = npz["images"], npz["labels"]
            classes = [str(c) for c in npz["classes"]] if "classes" in npz.files else None
    elif path.name.endswith((".csv", ".csv.gz")):
        if image_shape is None:
            raise DataError("a csv of pixels needs image_shape, e.g. [28, 28] for MNIST", source=path)
        table = np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2)
        if table.shape[1] != int(np.prod(image_shape)) + 1:
            raise DataError(
                f"rows have {table.shape[1]} values, expected {int(np.prod(image_shape))} pixels for "
                f"image_shape {list(image_shape)} plus the label",
                source=path,
            )
        images, labels, classes = table[:, :-1].reshape(-1, *image_shape), table[:, -1], None
    else:
        raise DataError("arrays must be .npz or .csv[.gz]", source=path)
    return _array_samples(str(path), images, labels, classes)


def read_digits() -> ImageSamples:
    """scikit-learn's bundled 8x8 digits (values 0..16) as uint8 grey images."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images * (255.0 / 16.0)
    return _array_samples("digits", images, digits.target, [str(c) for c in digits.target_names])


def _array_samples(name: str, images: np.ndarray, labels: np.ndarray, classes: list[str] | None) -> ImageSamples:
    """Check and convert: images to uint8 (floats up to 1 are scaled by 255), labels to 0..K-1."""
    if images.ndim not in (3, 4) or len(images) != len(labels):
        raise DataError(
            f"expected images (N, H, W[, C]) and labels (N,), got {images.shape}, {labels.shape}", source=name
        )
    if images.dtype.kind == "f":
        check_finite(f"{name} images", torch.from_numpy(np.ascontiguousarray(images)))
        images = images * 255.0 if images.max() <= 1.0 else images
    images = np.clip(images, 0, 255).astype(np.uint8)
    values, labels = np.unique(np.asarray(labels).astype(np.int64), return_inverse=True)
    classes = classes if classes is not None and len(classes) == len(values) else [str(v) for v in values]
    return ImageSamples(list(images), labels.astype(np.int64), classes)


def fit_image(img: Image.Image, size: tuple[int, int], fit: str) -> Image.Image:
    """Bring `img` to `size` (H, W): "resize" (bicubic), or "pad" (centred on black, shrunk first if larger)."""
    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}, got {fit!r}")
    height, width = size
    if img.size == (width, height):
        return img
    if fit == "resize":
        return img.resize((width, height), Image.Resampling.BICUBIC)
    img = img.copy()
    img.thumbnail((width, height), Image.Resampling.BICUBIC)  # only ever shrinks, keeps the aspect ratio
    canvas = Image.new(img.mode, (width, height))
    canvas.paste(img, ((width - img.width) // 2, (height - img.height) // 2))
    return canvas


class ImageDataset(Dataset):
    """(image tensor (C, H, W), label) per sample, or (image, index) when `labels` is None (prediction)."""

    def __init__(
        self,
        items: list[Item],
        labels: np.ndarray | None,
        mode: str,
        size: tuple[int, int],
        fit: str,
        transform: Callable[[Image.Image], torch.Tensor],
    ) -> None:
        self.items, self.labels = items, labels
        self.mode, self.size, self.fit, self.transform = mode, size, fit, transform

    def __len__(self) -> int:
        return len(self.items)

    def load(self, index: int) -> Image.Image:
        """The image in `mode` at `size`, before the transform."""
        item = self.items[index]
        if isinstance(item, Path):
            with Image.open(item) as img:
                img = img.convert(self.mode)
        else:
            img = Image.fromarray(item.squeeze(-1) if item.ndim == 3 and item.shape[-1] == 1 else item)
            img = img.convert(self.mode)
        return fit_image(img, self.size, self.fit)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        target = index if self.labels is None else int(self.labels[index])
        return self.transform(self.load(index)), target
