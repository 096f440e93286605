"""Random bit sequences (B, L, 1) labelled 1 when more than half the bits are ones."""

import torch
from torch.utils.data import Dataset, TensorDataset

from ssmkit.data import BaseDataModule


class BitsData(BaseDataModule):
    classes = ["mostly zeros", "mostly ones"]
    n_classes = 2
    d_input = 1

    def __init__(self, seq_len: int = 33, n_train: int = 512, n_val: int = 128, **loader: int) -> None:
        """Generated train and val sets.

        Args:
            seq_len: bits per sequence.
            n_train: training sequences.
            n_val: validation sequences.
            loader: batch_size, num_workers, seed (see BaseDataModule).
        """
        super().__init__(**loader)
        self.seq_len, self.n_train, self.n_val = seq_len, n_train, n_val

    def build(self, stage: str) -> dict[str, Dataset]:
        generator = torch.Generator().manual_seed(self.seed)
        bits = torch.randint(0, 2, (self.n_train + self.n_val, self.seq_len, 1), generator=generator).float()
        labels = (bits.mean((1, 2)) > 0.5).long()
        n = self.n_train
        return {"train": TensorDataset(bits[:n], labels[:n]), "val": TensorDataset(bits[n:], labels[n:])}
