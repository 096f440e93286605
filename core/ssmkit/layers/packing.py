"""Packed variable-length batches: several sequences end to end in one row, `x: (1, L, D)`, with `cu_seqlens: (N + 1,)`
their boundaries (flash-attention's and fla's convention: cu_seqlens[0] = 0, increasing, cu_seqlens[-1] = L).

Every mixer takes `mixer(x, cu_seqlens=...)` and no state or convolution window crosses a boundary: the resettable
scans (`takes_resets`) read the packed row in one pass with a reset at each start; the others run the sequences
as a padded batch (their padding contract keeps the sequences apart) and are packed again.
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor


def check_cu_seqlens(cu_seqlens: Tensor, x: Tensor, lengths: Tensor | None = None) -> None:
    """A named ValueError unless `cu_seqlens` splits the single row of `x: (1, L, D)` into non-empty sequences
    (and agrees with `lengths: (N,)` when both are given)."""
    if x.shape[0] != 1:
        raise ValueError(f"a packed batch is one row: x must have shape (1, L, D), got {tuple(x.shape)}")
    if cu_seqlens.dim() != 1 or cu_seqlens.numel() < 2 or cu_seqlens.is_floating_point():
        raise ValueError(
            f"cu_seqlens must be a 1-D integer tensor (N + 1,), got {cu_seqlens.dtype} {tuple(cu_seqlens.shape)}"
        )
    bounds = cu_seqlens.tolist()
    if bounds[0] != 0 or bounds[-1] != x.shape[1]:
        raise ValueError(f"cu_seqlens must cover the row: start at 0 and end at L={x.shape[1]}, got {bounds}")
    if any(b <= a for a, b in zip(bounds, bounds[1:], strict=False)):
        raise ValueError(f"cu_seqlens must be increasing (every packed sequence non-empty), got {bounds}")
    if lengths is not None and lengths.tolist() != torch.tensor(bounds).diff().tolist():
        raise ValueError(f"lengths {lengths.tolist()} disagree with cu_seqlens {bounds} (lengths = its differences)")


def sequence_starts(cu_seqlens: Tensor, seq_len: int) -> Tensor:
    """(1, L) bool, true where a packed sequence starts: the `resets` of a resettable scan."""
    starts = torch.zeros(1, seq_len, dtype=torch.bool, device=cu_seqlens.device)
    starts[0, cu_seqlens[:-1]] = True
    return starts


def rows_cu_seqlens(starts: Tensor) -> Tensor:
    """starts: (B, L) bool, true where a sequence starts inside a row -> cu_seqlens (N + 1,) of the B rows laid end to
    end as one packed row (1, B * L): each row's first position starts a sequence too."""
    if starts.dim() != 2 or starts.dtype != torch.bool:
        raise ValueError(f"starts must be a bool tensor (B, L), got {starts.dtype} {tuple(starts.shape)}")
    bounds = starts.flatten().clone()
    bounds[:: starts.shape[1]] = True
    first = bounds.nonzero().squeeze(1)
    return torch.cat([first, first.new_tensor([bounds.numel()])])


def unpack(x: Tensor, cu_seqlens: Tensor) -> tuple[Tensor, Tensor]:
    """x: (1, L, D) packed -> (padded (N, L_max, D) with zeros after each sequence, lengths (N,))."""
    lengths = cu_seqlens.diff()
    pieces = torch.split(x[0], lengths.tolist())
    return torch.nn.utils.rnn.pad_sequence(list(pieces), batch_first=True), lengths


def pack(y: Tensor, lengths: Tensor) -> Tensor:
    """y: (N, L_max, D) padded -> (1, sum(lengths), D), each row's first lengths[n] positions end to end."""
    return torch.cat([row[:n] for row, n in zip(y, lengths.tolist(), strict=True)])[None]
