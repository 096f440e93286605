"""`BaseDataModule`: the LightningDataModule every ssmkit data module builds on (as torchgeo's does).

It owns the split -> dataset mapping (`self.datasets`, keys "train", "val", "test", "predict"), the loaders
(batch size, workers, shuffling, drop_last, persistent workers, the collate function) and the seed. A concrete
data module implements `build(stage)` and nothing else of Lightning's:

    class DigitsData(BaseDataModule):
        def build(self, stage: str) -> dict[str, Dataset]:
            images, labels = load_digits(...)
            train, val = stratified_split(labels, 0.2, self.seed)
            return {"train": TensorDataset(images[train], labels[train]), "val": ...}

Lightning's stages need these splits: fit "train" and "val", validate "val", test "test", predict "predict".
A missing "test" is served by "val" and a missing "predict" by "test" (or "val"), and the log says so.
The loaders are torchdata's `StatefulDataLoader` (a drop-in DataLoader whose sampler position is saved in the
checkpoint), so a run resumed from a mid-epoch checkpoint sees the batches an uninterrupted run would.
"""

from __future__ import annotations

from collections.abc import Callable, Sized
from typing import Any, ClassVar

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import Dataset, IterableDataset
from torchdata.stateful_dataloader import StatefulDataLoader
from torchdata.stateful_dataloader.sampler import RandomSampler

from ssmkit.data.errors import DataError

# Lightning stage -> the splits it reads
STAGE_SPLITS = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("predict",)}
# a split a data module may leave out, and the one that serves in its place
FALLBACK = {"test": ("val",), "predict": ("test", "val")}


class BaseDataModule(L.LightningDataModule):
    """Subclasses implement `build(stage) -> {split: dataset}`; `collate_fn` may be set on the class or instance."""

    collate_fn: ClassVar[Callable[[list[Any]], Any] | None] = None

    def __init__(self, batch_size: int = 32, num_workers: int = 0, seed: int = 0) -> None:
        """Loaders for the splits that `build` makes.

        Args:
            batch_size: samples per batch.
            num_workers: loader processes (0: load in the main process).
            seed: the data's own randomness (splits, generated data), apart from the training seed.
        """
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.datasets: dict[str, Dataset] = {}
        self.built_stages: set[str] = set()  # `build` runs once per stage, even when it leaves a split out

    def build(self, stage: str) -> dict[str, Dataset]:
        """The splits this data module makes for a Lightning stage ("fit", "validate", "test", "predict").
        It may return more than the stage needs (e.g. train, val and test at once); splits already built are
        kept, so `build` runs again only for splits still missing."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        stage = stage or "fit"
        if stage not in self.built_stages and any(split not in self.datasets for split in STAGE_SPLITS[stage]):
            built = {k: v for k, v in self.build(stage).items() if k not in self.datasets}
            empty = sorted(k for k, v in built.items() if isinstance(v, Sized) and not len(v))
            if empty:
                raise DataError(f"the {' and '.join(empty)} split(s) hold no samples", source=type(self).__name__)
            self.datasets.update(built)
        self.built_stages.add(stage)

    def serving_split(self, name: str) -> tuple[str, Dataset]:
        """(the split that serves `name`, its dataset): `name` itself, or its fallback when it was not built."""
        for candidate in (name, *FALLBACK.get(name, ())):
            if candidate in self.datasets:
                return candidate, self.datasets[candidate]
        raise RuntimeError(
            f"{type(self).__name__} has no {name!r} split (built: {sorted(self.datasets) or 'none'}); "
            f"run setup() first, or give the data for it"
        )

    def dataloader(self, name: str) -> StatefulDataLoader:
        """The loader of split `name`: shuffled, dropping a last partial batch, for "train"; in order otherwise."""
        served, dataset = self.serving_split(name)
        if served != name:
            rank_zero_info(f"{type(self).__name__}: no {name} split; using the {served} split for {name}")
        train = name == "train"
        shuffle = train and not isinstance(dataset, IterableDataset)
        return StatefulDataLoader(
            dataset,
            batch_size=self.batch_size,
            # the shuffling has a generator of its own, seeded by the run's seed (seed_everything): its state in the
            # checkpoint decides every later epoch's order too, whatever else draws from the global RNG
            sampler=RandomSampler(dataset, generator=torch.Generator().manual_seed(torch.initial_seed()))
            if shuffle
            else None,
            drop_last=train and isinstance(dataset, Sized) and len(dataset) > self.batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            collate_fn=self.collate_fn,
        )

    def train_dataloader(self) -> StatefulDataLoader:
        return self.dataloader("train")

    def val_dataloader(self) -> StatefulDataLoader:
        return self.dataloader("val")

    def test_dataloader(self) -> StatefulDataLoader:
        return self.dataloader("test")

    def predict_dataloader(self) -> StatefulDataLoader:
        return self.dataloader("predict")
