"""Data modules of the synthetic tasks. Data is generated at `setup` from `seed` (train) and `seed + 1` (val, which
also serves test and predict); nothing is downloaded."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset, TensorDataset

from ssmkit.data import BaseDataModule, check_finite, stratified_split, synthetic

Tensor = torch.Tensor


class SyntheticDataModule(BaseDataModule):
    """Base: subclasses implement `generate(n, generator) -> tuple of tensors` (one sample per row)."""

    def __init__(self, n_train: int = 20_000, n_val: int = 1_000, batch_size: int = 64, **loader: int) -> None:
        """Generated train and val sets.

        Args:
            n_train: generated training samples.
            n_val: generated validation samples.
            batch_size: samples per batch.
            loader: num_workers, seed (see BaseDataModule).
        """
        super().__init__(batch_size=batch_size, **loader)
        self.n_train, self.n_val = n_train, n_val

    def generate(self, n: int, generator: torch.Generator) -> tuple[Tensor, ...]:
        raise NotImplementedError

    def build(self, stage: str) -> dict[str, Dataset]:
        splits = {"train": (self.n_train, self.seed), "val": (self.n_val, self.seed + 1)}
        datasets = {}
        for split, (n, seed) in splits.items():
            tensors = self.generate(n, torch.Generator().manual_seed(seed))
            for i, t in enumerate(tensors):
                check_finite(f"{type(self).__name__} {split} set, tensor {i}", t)
            datasets[split] = TensorDataset(*tensors)
        return datasets


class TokenTaskData(SyntheticDataModule):
    """A token task: inputs are ids below `input_vocab_size` (the model's vocabulary, linked by the CLI)."""

    vocab_size: int

    @property
    def input_vocab_size(self) -> int:
        return self.vocab_size


class SelectiveCopyData(TokenTaskData):
    def __init__(self, seq_len: int = 64, n_tokens: int = 8, vocab_size: int = 8, **data: int) -> None:
        """Selective copying: the data tokens scattered among noise, to be recalled in order after a marker.

        Args:
            seq_len: positions of noise among which the data tokens lie.
            n_tokens: data tokens to copy.
            vocab_size: distinct data tokens (the inputs add two more ids: noise and marker).
        """
        super().__init__(**data)
        self.seq_len, self.n_tokens, self.vocab_size = seq_len, n_tokens, vocab_size

    @property
    def input_vocab_size(self) -> int:
        return self.vocab_size + 2

    def generate(self, n: int, generator: torch.Generator) -> tuple[Tensor, ...]:
        return synthetic.selective_copy(n, self.seq_len, self.n_tokens, self.vocab_size, generator)


class AssociativeRecallData(TokenTaskData):
    def __init__(self, n_pairs: int = 16, n_queries: int = 16, vocab_size: int = 64, **data: int) -> None:
        """Associative recall: key-value pairs, then keys whose values are to be recalled.

        Args:
            n_pairs: key-value pairs per sequence.
            n_queries: keys asked for after the pairs.
            vocab_size: distinct tokens for keys and values.
        """
        super().__init__(**data)
        self.n_pairs, self.n_queries, self.vocab_size = n_pairs, n_queries, vocab_size

    def generate(self, n: int, generator: torch.Generator) -> tuple[Tensor, ...]:
        return synthetic.associative_recall(n, self.n_pairs, self.n_queries, self.vocab_size, generator)


class InductionHeadsData(TokenTaskData):
    def __init__(self, seq_len: int = 64, vocab_size: int = 16, **data: int) -> None:
        """Induction heads: a trigger token recurs; the token that followed it the first time is the answer.

        Args:
            seq_len: sequence length.
            vocab_size: distinct tokens.
        """
        super().__init__(**data)
        self.seq_len, self.vocab_size = seq_len, vocab_size

    def generate(self, n: int, generator: torch.Generator) -> tuple[Tensor, ...]:
        return synthetic.induction_heads(n, self.seq_len, self.vocab_size, generator)


class ICLRegressionData(SyntheticDataModule):
    def __init__(self, n_points: int = 16, dim: int = 4, noise: float = 0.1, **data: int) -> None:
        """In-context linear regression. Batches are (features (B, 2 n_points, dim + 2), xs (B, n_points, dim),
        ys (B, n_points)).

        Args:
            n_points: (x, y) examples per sequence.
            dim: dimension of x.
            noise: standard deviation of the noise added to y.
        """
        super().__init__(**data)
        self.n_points, self.dim, self.noise = n_points, dim, noise

    def generate(self, n: int, generator: torch.Generator) -> tuple[Tensor, ...]:
        return synthetic.icl_regression(n, self.n_points, self.dim, self.noise, generator)


class SequentialDigitsData(BaseDataModule):
    """scikit-learn's digits as 64-step sequences of one pixel each; a stratified split into train and val."""

    d_input = 1
    classes = [str(k) for k in range(10)]
    n_classes = len(classes)

    def __init__(self, val_fraction: float = 0.2, batch_size: int = 64, seed: int = 0, num_workers: int = 0) -> None:
        """The digits, split once.

        Args:
            val_fraction: share of each class held out for validation.
            batch_size: samples per batch.
            seed: the split's randomness.
            num_workers: loader processes (0: load in the main process).
        """
        super().__init__(batch_size, num_workers, seed)
        self.val_fraction = val_fraction

    def build(self, stage: str) -> dict[str, Dataset]:
        images, labels = synthetic.sequential_digits()
        check_finite("digits images", images)
        train, val = stratified_split(labels.numpy(), self.val_fraction, self.seed)
        return {"train": TensorDataset(images[train], labels[train]), "val": TensorDataset(images[val], labels[val])}
