"""The segment task's data: image / mask pairs from a folder (MONAI's `LoadImage`), or synthetic images (the organs,
or their long-range variant: `ssmkit_medical.synthetic`).

A folder holds `<root>/<image_dir>/<name>.<ext>` and `<root>/<mask_dir>/<name>.<ext>`, paired by name: PNG, TIFF,
NIfTI (.nii / .nii.gz, through nibabel) or DICOM (.dcm, through pydicom), 2D or 3D, or a DICOM series as a volume:
a sub-folder `<root>/<image_dir>/<name>/` of .dcm slices (stacked in InstanceNumber order, MONAI's reader); its mask
is a volume file `<root>/<mask_dir>/<name>.<ext>` (e.g. NIfTI). `predict_root` a folder of images alone. A 2D
`patch_size` with 3D volumes trains and predicts on their slices along the last axis (`<name>_z<k>`).

Masks hold the raw values `label_values` (class k is the value label_values[k]; default [0, 1], ISBI's 0 / 255 masks:
[0, 255]); any other value is a DataError naming the file. Images are scaled to [0, 1] one by one
(MONAI's `ScaleIntensity`); an image and its mask of different sizes, a mask with channels, and an unreadable
(corrupt) file are DataErrors naming the file.

Splits: `val_fraction` of the pairs (at least one) by `seed` validate, the rest train; test falls back to
validation. Training batches: random patches of `patch_size` (MONAI's `SpatialPadd` + `RandSpatialCropd`), as
(images (B, C, *patch), masks (B, 1, *patch) int64); evaluation batches hold whole images (one size per batch).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

import numpy as np
import torch
from monai.data import NibabelReader, PILReader, PydicomReader
from monai.transforms import Compose, LoadImage, RandSpatialCropd, ScaleIntensity, SpatialPadd
from monai.utils import convert_to_tensor
from torch.utils.data import Dataset

from ssmkit.data import BaseDataModule, DataError
from ssmkit_medical.synthetic import LONG_RANGE, ORGANS, synthetic_long_range, synthetic_organs

Tensor = torch.Tensor
SYNTHETIC = {"organs": ORGANS, "long_range": LONG_RANGE}  # the generators' class names
SUFFIXES = (".nii.gz", ".nii", ".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".dcm")


@dataclass
class Pair:
    name: str
    image: Tensor  # (C, *S) float in [0, 1]
    mask: Tensor | None  # (1, *S) int64 class indices; None for prediction
    volume: str | None = None  # the volume a 2D slice was cut from (`slices`); None for a whole image


def image_name(path: Path) -> str | None:
    """The file's name without its image suffix (`a.nii.gz` -> `a`), None when it is no image file."""
    lower = path.name.lower()
    suffix = next((s for s in SUFFIXES if lower.endswith(s)), None)
    return path.name[: -len(suffix)] if suffix and not path.name.startswith(".") else None


def image_files(folder: Path) -> dict[str, Path]:
    """name -> file of every image file in `folder`, and -> folder of every DICOM series in it (sorted by name)."""
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    files = {}
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and image_name(entry):
            files[image_name(entry)] = entry
        elif entry.is_dir() and any(entry.glob("*.dcm")):
            files[entry.name] = entry
    if not files:
        raise DataError(f"no image files ({', '.join(SUFFIXES)}) or DICOM series folders", source=folder)
    return files


def slices(pairs: list[Pair]) -> list[Pair]:
    """Each 3D pair (image (C, H, W, D)) as its D slices along the last axis, `<name>_z<k>`; 2D pairs as they are."""
    flat = []
    for pair in pairs:
        if pair.image.dim() != 4:
            flat.append(pair)
            continue
        for k in range(pair.image.shape[-1]):
            mask = None if pair.mask is None else pair.mask[..., k]
            flat.append(Pair(f"{pair.name}_z{k:03d}", pair.image[..., k], mask, volume=pair.name))
    return flat


@cache
def loader() -> LoadImage:
    """MONAI's LoadImage with its PIL (PNG, TIFF, JPEG; rows first, PIL's transpose undone), nibabel (NIfTI) and
    pydicom (DICOM) readers; each reader checks the file suffix."""
    load_image = LoadImage(PILReader(reverse_indexing=False), image_only=True, ensure_channel_first=True)
    load_image.register(NibabelReader())
    load_image.register(PydicomReader())
    return load_image


def load(path: Path) -> Tensor:
    """A file through MONAI's LoadImage: (C, *S) float."""
    try:
        return convert_to_tensor(loader()(str(path)), dtype=torch.float32, track_meta=False)
    except Exception as exc:  # MONAI and its readers raise many kinds for a corrupt or unknown file
        raise DataError(f"cannot be read ({type(exc).__name__}: {exc})", source=path) from exc


def read_pairs(root: Path, image_dir: str, mask_dir: str, label_values: list[int]) -> list[Pair]:
    """Every image of `root/image_dir` with its mask in `root/mask_dir`, checked and converted."""
    images, masks = image_files(root / image_dir), image_files(root / mask_dir)
    missing = sorted(set(images) - set(masks))
    if missing:
        raise DataError(f"no mask for image(s) {missing[:5]} in {root / mask_dir}", source=root / image_dir)
    return [Pair(name, load_image(file), load_mask(masks[name], label_values)) for name, file in images.items()]


def load_image(path: Path) -> Tensor:
    return ScaleIntensity()(load(path))


def load_mask(path: Path, label_values: list[int]) -> Tensor:
    """(1, *S) class indices: the raw value label_values[k] becomes k."""
    raw = load(path)
    if raw.shape[0] != 1:
        raise DataError(f"a mask must have one channel, got {raw.shape[0]}", source=path)
    values = torch.tensor(label_values, dtype=raw.dtype)
    found = torch.unique(raw)
    unexpected = found[~torch.isin(found, values)]
    if len(unexpected):
        shown = [int(v) if float(v).is_integer() else float(v) for v in unexpected[:8]]
        raise DataError(
            f"unexpected mask values {shown}; expected label_values {label_values} (set data.label_values)",
            source=path,
        )
    return (raw[..., None] == values).int().argmax(-1).long()


def check_sizes(pairs: list[Pair], source: Path | str) -> None:
    for pair in pairs:
        if pair.mask is not None and pair.image.shape[1:] != pair.mask.shape[1:]:
            raise DataError(
                f"image {pair.name} is {list(pair.image.shape[1:])} but its mask is {list(pair.mask.shape[1:])}",
                source=source,
            )


class PairDataset(Dataset):
    """(image, mask) per pair, (image,) without masks; patches through `transform` (MONAI dict transforms)."""

    def __init__(self, pairs: list[Pair], transform: Compose | None = None) -> None:
        self.pairs, self.transform = pairs, transform

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        pair = self.pairs[index]
        if pair.mask is None:
            return (pair.image,)
        if self.transform is None:
            return pair.image, pair.mask
        out = self.transform({"image": pair.image, "mask": pair.mask})
        return tuple(convert_to_tensor(out[key], track_meta=False) for key in ("image", "mask"))

    def names(self) -> list[str]:
        return [pair.name for pair in self.pairs]

    def volumes(self) -> list[str | None]:
        """Per item, the volume it is a slice of (None: a whole image)."""
        return [pair.volume for pair in self.pairs]


class SegmentationData(BaseDataModule):
    def __init__(
        self,
        root: str | None = None,
        image_dir: str = "image",
        mask_dir: str = "label",
        label_values: list[int] | None = None,
        classes: list[str] | None = None,
        patch_size: list[int] | None = None,
        val_fraction: float = 0.2,
        predict_root: str | None = None,
        synthetic: str = "organs",
        n_synthetic: int = 120,
        synthetic_size: int = 64,
        batch_size: int = 8,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        """Image / mask pairs of a folder, or synthetic images (see the module doc).

        Args:
            root: a folder holding `image_dir` and `mask_dir` (None: synthetic images).
            image_dir: the sub-folder of `root` with the images.
            mask_dir: the sub-folder of `root` with the masks, named as their images.
            label_values: the raw mask value of each class (None: [0, 1] for a folder, 0, 1, ... for synthetic).
            classes: a name per label value (None: "value <v>", or the synthetic classes).
            patch_size: the training patch and the model's sliding window in pixels (None: [64, 64]; 3 sides: 3D;
                2 sides with 3D volumes: their slices).
            val_fraction: the share of the pairs (at least one) that validates; the rest train.
            predict_root: a folder of images to segment in predict (None: predict serves the val split).
            synthetic: "organs" (background, liver, kidney) or "long_range" (background, target) (root None).
            n_synthetic: synthetic images (root None).
            synthetic_size: the side in pixels of the synthetic images (root None).
            batch_size: samples per batch.
            num_workers: loader processes (0: load in the main process).
            seed: the data's own randomness (splits, generated data), apart from the training seed.
        """
        super().__init__(batch_size, num_workers, seed)
        if not 0 < val_fraction < 1:
            raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
        if synthetic not in SYNTHETIC:
            raise ValueError(f"synthetic must be one of {sorted(SYNTHETIC)}, got {synthetic!r}")
        self.root, self.image_dir, self.mask_dir, self.synthetic = root, image_dir, mask_dir, synthetic
        self.label_values = list(label_values or ([0, 1] if root else range(len(SYNTHETIC[synthetic]))))
        if classes is not None and len(classes) != len(self.label_values):
            raise ValueError(f"classes {classes} need one name per label value {self.label_values}")
        self.class_names, self.patch_size = classes, list(patch_size or [64, 64])
        self.val_fraction, self.predict_root = val_fraction, predict_root
        self.n_synthetic, self.synthetic_size = n_synthetic, synthetic_size

    @cached_property
    def pairs(self) -> list[Pair]:
        if self.root is None:
            make = synthetic_organs if self.synthetic == "organs" else synthetic_long_range
            images, masks = make(self.n_synthetic, self.synthetic_size, self.seed)[:2]
            images, masks = torch.from_numpy(images)[:, None], torch.from_numpy(masks)[:, None]
            return [
                Pair(f"synthetic_{i}", image, mask) for i, (image, mask) in enumerate(zip(images, masks, strict=True))
            ]
        pairs = read_pairs(Path(self.root), self.image_dir, self.mask_dir, self.label_values)
        check_sizes(pairs, self.root)
        return slices(pairs) if len(self.patch_size) == 2 else pairs

    @property
    def classes(self) -> list[str]:
        if self.class_names:
            return list(self.class_names)
        return list(SYNTHETIC[self.synthetic]) if self.root is None else [f"value {v}" for v in self.label_values]

    @property
    def n_classes(self) -> int:
        return len(self.label_values)

    @property
    def in_channels(self) -> int:
        return int(self.pairs[0].image.shape[0])

    def build(self, stage: str) -> dict[str, Dataset]:
        if stage == "predict" and self.predict_root is not None:
            files = image_files(Path(self.predict_root))
            images = [Pair(name, load_image(f), None) for name, f in files.items()]
            return {"predict": PairDataset(slices(images) if len(self.patch_size) == 2 else images)}
        pairs = self.pairs
        if len(pairs) < 2:
            raise DataError(
                f"{len(pairs)} image / mask pair(s): need at least 2 to train and validate", source=self.root
            )
        order = np.random.default_rng(self.seed).permutation(len(pairs))
        n_val = min(len(pairs) - 1, max(1, round(self.val_fraction * len(pairs))))
        keys = ["image", "mask"]
        patches = Compose(
            [SpatialPadd(keys, self.patch_size), RandSpatialCropd(keys, self.patch_size, random_size=False)]
        )
        patches.set_random_state(self.seed)
        return {
            "train": PairDataset([pairs[i] for i in sorted(order[n_val:])], patches),
            "val": PairDataset([pairs[i] for i in sorted(order[:n_val])]),
        }

    def item_names(self, split: str) -> list[str]:
        return self.serving_split(split)[1].names()

    def item_volumes(self, split: str) -> list[str | None]:
        """Per item of `split`, the volume it is a slice of (None: a whole image)."""
        return self.serving_split(split)[1].volumes()
