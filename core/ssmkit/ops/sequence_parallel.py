"""Sequence (context) parallelism by state passing, LASP-2 style, for the linear recurrence under S5 and LRU.

The sequence is split into contiguous chunks, one per rank of a process group. Each rank scans its chunk from a
zero state with the local fast path (`linear_scan`), then ONE all-gather exchanges every rank's (total decay a,
final state S) pair -- (B, D) each, independent of the sequence length -- and each rank combines the pairs of the
ranks before it into the state entering its chunk,

    S_in(r) = sum_{q < r} (prod_{q < p < r} a_p) S_q,

and corrects its outputs: h_t += (prod_{s <= t} a_s keep_s) S_in. The result equals the single-process scan; the
backward is autograd's, through an all-gather whose backward sums the gathered gradients over the group
(all-reduce) and keeps the rank's own slice, so it runs on gloo (CPU) as on nccl.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ssmkit.ops.linear_scan import linear_scan

Tensor = torch.Tensor


@dataclass(frozen=True)
class SequenceSplit:
    """The sequence is split across the ranks of `group` (None: the default group), one contiguous chunk each."""

    group: dist.ProcessGroup | None = None


_SPLITS: list[SequenceSplit] = []


@contextmanager
def sequence_parallel(group: dist.ProcessGroup | None = None) -> Iterator[SequenceSplit]:
    """Inside, a model's inputs on each rank are that rank's contiguous chunk of the sequence (rank order): mixers
    with `sequence_parallel` pass their state between ranks; any other mixer refuses by name (its result would be
    wrong). Per-position layers (embeddings, norms, MLPs) need nothing. Parameter gradients come out per rank:
    all-reduce them (DDP does) to get the single-process gradients."""
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError("sequence_parallel needs an initialised process group (dist.init_process_group)")
    _SPLITS.append(SequenceSplit(group))
    try:
        yield _SPLITS[-1]
    finally:
        _SPLITS.pop()


def current_split() -> SequenceSplit | None:
    """The innermost active `sequence_parallel` split, or None."""
    return _SPLITS[-1] if _SPLITS else None


class _AllGather(torch.autograd.Function):
    """x (rank's) -> (world, *x.shape), differentiable: each rank's gradient is the group's sum for its slice."""

    @staticmethod
    def forward(ctx, x: Tensor, group: dist.ProcessGroup | None) -> Tensor:
        ctx.group = group
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size(group))]
        dist.all_gather(parts, x.contiguous(), group=group)
        return torch.stack(parts)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        grad = grad.contiguous()
        dist.all_reduce(grad, group=ctx.group)
        return grad[dist.get_rank(ctx.group)], None


def linear_scan_sequence_parallel(
    a: Tensor, b: Tensor, resets: Tensor | None = None, group: dist.ProcessGroup | None = None
) -> Tensor:
    """This rank's chunk of h_t = a_t keep_t h_{t-1} + b_t over a sequence split across `group` in rank order.

    a, b: (B, L_rank, D) real or complex, this rank's positions; resets: (B, L_rank) bool or None. -> h (B, L_rank, D),
    equal to the same positions of `linear_scan` over the whole sequence (h_{-1} = 0)."""
    h_local = linear_scan(a, b, resets=resets)
    decay = a if resets is None else a * (~resets)[..., None].to(a.real.dtype)
    running = torch.cumprod(decay, dim=1)  # (B, L, D): prod_{s <= t} a_s keep_s
    pairs = _AllGather.apply(torch.stack([running[:, -1], h_local[:, -1]]), group)  # (world, 2, B, D)
    # the entering state of every rank, then this rank's: each rank's output depends on the gathered pairs (rank 0's
    # through the selection), so every rank runs the all-gather's backward collective
    entering = [torch.zeros_like(h_local[:, 0])]
    for total, last in pairs[:-1]:
        entering.append(total * entering[-1] + last)
    state_in = torch.stack(entering)[dist.get_rank(group)]
    return h_local + running * state_in[:, None]
