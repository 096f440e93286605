"""Packed rows: the batch-to-row boundaries of `rows_cu_seqlens`."""

import pytest
import torch

from ssmkit.layers.packing import check_cu_seqlens, rows_cu_seqlens


def test_rows_cu_seqlens_starts_a_sequence_at_every_row_and_every_marked_position():
    starts = torch.zeros(3, 5, dtype=torch.bool)
    starts[0, 2] = starts[1, 0] = starts[2, 4] = True  # a start at a row's first position counts once
    cu_seqlens = rows_cu_seqlens(starts)
    assert cu_seqlens.tolist() == [0, 2, 5, 10, 14, 15]
    check_cu_seqlens(cu_seqlens, torch.zeros(1, 15, 2))  # covers the packed row


def test_rows_cu_seqlens_names_a_bad_mask():
    with pytest.raises(ValueError, match=r"starts must be a bool tensor \(B, L\)"):
        rows_cu_seqlens(torch.zeros(3, 5))
