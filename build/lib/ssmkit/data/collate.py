"""Batches of variable-length sequences: right-padded, with their `lengths` (DESIGN.md: never silently dropped)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import default_collate

Tensor = torch.Tensor


def pad_sequences(sequences: Sequence[Tensor], pad_value: float = 0) -> tuple[Tensor, Tensor]:
    """[(L_i, ...)] -> padded (B, max L_i, ...), right-padded with `pad_value`, and lengths (B,) long."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    first = sequences[0]
    padded = first.new_full((len(sequences), int(lengths.max()), *first.shape[1:]), pad_value)
    for i, s in enumerate(sequences):
        padded[i, : len(s)] = s
    return padded, lengths


class PadCollate:
    """A DataLoader `collate_fn` for samples `(sequence (L_i, ...), *rest)`: -> (padded, lengths, *rest batched)."""

    def __init__(self, pad_value: float = 0) -> None:
        self.pad_value = pad_value

    def __call__(self, samples: Sequence[tuple[Any, ...]]) -> tuple[Any, ...]:
        sequences = [torch.as_tensor(sample[0]) for sample in samples]
        padded, lengths = pad_sequences(sequences, self.pad_value)
        rest = default_collate([tuple(sample[1:]) for sample in samples]) if len(samples[0]) > 1 else []
        return (padded, lengths, *rest)
