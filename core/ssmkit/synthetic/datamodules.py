"""Data modules of the synthetic tasks. Data is generated at `setup` from `seed` (train) and `seed + 1`
(validation, also used for test); nothing is downloaded."""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from ssmkit.data import synthetic
from ssmkit.data.checks import check_finite

Tensor = torch.Tensor


class SyntheticDataModule(L.LightningDataModule):
    """Base: subclasses implement `generate(n, generator) -> tuple of tensors` (one sample per row)."""

    def __init__(self, num_train: int, num_val: int, batch_size: int, seed: int, num_workers: int) -> None:
        super().__init__()
        self.num_train, self.num_val = num_train, num_val
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers
        self.train_set: TensorDataset | None = None
        self.val_set: TensorDataset | None = None

    def generate(self, n: int, generator: torch.Generator) -> tuple[Tensor, ...]:
        raise NotImplementedError

    @property
    def input_vocab_size(self) -> int | None:
        """Number of input token ids, for token tasks (checked against the model's vocab_size)."""
        return getattr(self, "vocab_size", None)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        splits = {"train": (self.num_train, self.seed), "validation": (self.num_val, self.seed + 1)}
        sets = {}
        for split, (n, seed) in splits.items():
            tensors = self.generate(n, torch.Generator().manual_seed(seed))
            for i, t in enumerate(tensors):
                check_finite(f"{type(self).__name__} {split} set, tensor {i}", t)
            sets[split] = TensorDataset(*tensors)
        self.train_set, self.val_set = sets["train"], sets["validation"]

    def _loader(self, dataset: TensorDataset, shuffle: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            drop_last=shuffle,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)


class SelectiveCopyData(SyntheticDataModule):
    def __init__(
        self,
        seq_len: int = 64,
        n_tokens: int = 8,
        vocab_size: int = 8,
        num_train: int = 20_000,
        num_val: int = 1_000,
        batch_size: int = 64,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        """Token vocabulary of the inputs is vocab_size + 2 (noise and marker)."""
        super().__init__(num_train, num_val, batch_size, seed, num_workers)
        self.seq_len, self.n_tokens, self.vocab_size = seq_len, n_tokens, vocab_size

    @property
    def input_vocab_size(self) -> int:
        return self.vocab_size + 2

    def generate(self, n: int, generator: torch.Generator) -> tuple[Tensor, ...]:
        return synthetic.selective_copy(n, self.seq_len, self.n_tokens, self.vocab_size, generator)


class AssociativeRecallData(SyntheticDataModule):
    def __init__(
        self,
        n_pairs: int = 16,
        n_queries: int = 16,
        vocab_size: int = 64,
        num_train: int = 20_000,
        num_val: int = 1_000,
        batch_size: int = 64,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__(num_train, num_val, batch_size, seed, num_workers)
        self.n_pairs, self.n_queries, self.vocab_size = n_pairs, n_queries, vocab_size

    def generate(self, n: int, generator: torch.Generator) -> tuple[Tensor, ...]:
        return synthetic.associative_recall(n, self.n_pairs, self.n_queries, self.vocab_size, generator)


class InductionHeadsData(SyntheticDataModule):
    def __init__(
        self,
        seq_len: int = 64,
        vocab_size: int = 16,
        num_train: int = 20_000,
        num_val: int = 1_000,
        batch_size: int = 64,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__(num_train, num_val, batch_size, seed, num_workers)
        self.seq_len, self.vocab_size = seq_len, vocab_size

    def generate(self, n: int, generator: torch.Generator) -> tuple[Tensor, ...]:
        return synthetic.induction_heads(n, self.seq_len, self.vocab_size, generator)


class ICLRegressionData(SyntheticDataModule):
    def __init__(
        self,
        n_points: int = 16,
        dim: int = 4,
        noise: float = 0.1,
        num_train: int = 20_000,
        num_val: int = 1_000,
        batch_size: int = 64,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        """Batches are (features (B, 2 n_points, dim + 2), xs (B, n_points, dim), ys (B, n_points))."""
        super().__init__(num_train, num_val, batch_size, seed, num_workers)
        self.n_points, self.dim, self.noise = n_points, dim, noise

    def generate(self, n: int, generator: torch.Generator) -> tuple[Tensor, ...]:
        return synthetic.icl_regression(n, self.n_points, self.dim, self.noise, generator)


class SequentialDigitsData(SyntheticDataModule):
    def __init__(self, val_fraction: float = 0.2, batch_size: int = 64, seed: int = 0, num_workers: int = 0) -> None:
        """scikit-learn's digits as 64-step sequences; a seeded split into train and validation."""
        super().__init__(0, 0, batch_size, seed, num_workers)
        self.val_fraction = val_fraction

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        images, labels = synthetic.sequential_digits()
        check_finite("digits images", images)
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(self.seed))
        n_val = int(round(self.val_fraction * len(labels)))
        val, train = order[:n_val], order[n_val:]
        self.train_set = TensorDataset(images[train], labels[train])
        self.val_set = TensorDataset(images[val], labels[val])
