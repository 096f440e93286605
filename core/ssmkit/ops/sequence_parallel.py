"""Sequence (context) parallelism by state passing, LASP-2 style, for the scans under S5 / LRU (`linear_scan`),
Mamba (`selective_scan`) and Mamba-2 (`ssd_scan`), and the short causal convolution before the last two.

The sequence is split into contiguous chunks, one per rank of a process group (`shard_sequence`). Each rank scans
its chunk from a zero state with the local fast path, then ONE all-gather exchanges every rank's (total decay a,
final state S) pair -- the state's size, independent of the sequence length -- and each rank combines the pairs of
the ranks before it into the state entering its chunk,

    S_in(r) = sum_{q < r} (prod_{q < p < r} a_p) S_q.

The linear scan then corrects its outputs, h_t += (prod_{s <= t} a_s keep_s) S_in; the selective and SSD scans run
their chunk again from S_in (their `initial_state(s)`), so the kernels need no correction term. A causal
convolution of kernel K reads the previous rank's last K inputs (its halo), gathered the same way; attention layers
of a hybrid all-gather their keys and values (LASP-2H: the one exchange whose size grows with the length). The results
equal the single-process ones; the backward is autograd's, through an all-gather whose backward sums the gathered
gradients over the group (all-reduce) and keeps the rank's own slice, so it runs on gloo (CPU) as on nccl.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ssmkit.ops.linear_scan import linear_scan
from ssmkit.ops.selective_scan import selective_scan
from ssmkit.ops.ssd_scan import ssd_scan
from ssmkit_kernels.scan_api import step_size, working_dtype

Tensor = torch.Tensor


@dataclass(frozen=True)
class SequenceSplit:
    """The sequence is split across the ranks of `group` (None: the default group), one contiguous chunk each."""

    group: dist.ProcessGroup | None = None

    def start(self, chunk: int) -> int:
        """The global position of this rank's first position, when each rank holds `chunk` positions."""
        return dist.get_rank(self.group) * chunk

    def total(self, chunk: int) -> int:
        """The whole sequence's length, when each rank holds `chunk` positions."""
        return dist.get_world_size(self.group) * chunk


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


def shard_sequence(x: Tensor, group: dist.ProcessGroup | None = None, dim: int = 1) -> Tensor:
    """This rank's contiguous chunk of `x` along `dim` (the sequence), rank order. The length must be a multiple of
    the world size (pad the sequence, with `lengths` marking the padding, or pick a length that divides): uneven
    chunks are refused rather than guessed."""
    world, rank = dist.get_world_size(group), dist.get_rank(group)
    length = x.shape[dim]
    if length % world:
        raise ValueError(
            f"a sequence of {length} positions does not split evenly over {world} ranks: pad it to a multiple of "
            f"{world} (e.g. {-(-length // world) * world}) and mark the padding with `lengths`"
        )
    return x.narrow(dim, rank * (length // world), length // world)


def entering_state(
    total: Tensor, last: Tensor, group: dist.ProcessGroup | None = None, reverse: bool = False
) -> Tensor:
    """The state entering this rank's chunk from every rank's (total decay, final state from zero), both shaped like
    the state: S_in(r) = sum_{q < r} (prod_{q < p < r} total_p) last_q, zeros on rank 0. One all-gather. `reverse`:
    the scan runs from the last rank to the first (a backward direction), so the ranks after r feed it."""
    pairs = _AllGather.apply(torch.stack([total.to(last.dtype), last]), group)  # (world, 2, *state)
    # every rank's output depends on the gathered pairs (rank 0's through the selection), so every rank runs the
    # all-gather's backward collective
    rank = dist.get_rank(group)
    if reverse:
        pairs, rank = pairs.flip(0), len(pairs) - 1 - rank
    entering = [torch.zeros_like(last)]
    for decay, state in pairs[:-1]:
        entering.append(decay * entering[-1] + state)
    return torch.stack(entering)[rank]


def conv_halo(x: Tensor, kernel_size: int, group: dist.ProcessGroup | None = None) -> Tensor:
    """x: (B, C, L_rank) this rank's inputs of a causal convolution -> (B, C, K) the K inputs before them: the previous
    rank's last K (zeros on rank 0), the `window` of `ssmkit.layers.conv.causal_conv_from`. Only the tails travel
    (`neighbour_edges` would send the heads too)."""
    _check_reach(x.shape[-1], kernel_size)
    tails = _AllGather.apply(x[..., -kernel_size:], group)  # (world, B, C, K)
    return torch.stack([torch.zeros_like(tails[0]), *tails[:-1]])[dist.get_rank(group)]


def neighbour_edges(
    x: Tensor, width: int, dim: int = 1, group: dist.ProcessGroup | None = None
) -> tuple[Tensor, Tensor]:
    """(the previous rank's last `width` positions of x, the next rank's first `width`) along `dim`, zeros beyond the
    sequence's ends: a halo on both sides (a centred convolution) or the value a shift moves across a rank boundary.
    One all-gather of each rank's two edges."""
    _check_reach(x.shape[dim], width)
    edges = _AllGather.apply(torch.stack([x.narrow(dim, 0, width), x.narrow(dim, x.shape[dim] - width, width)]), group)
    rank, zeros = dist.get_rank(group), torch.zeros_like(edges[0, 0])  # edges: (world, 2 (first, last), ...)
    before = edges[rank - 1, 1] if rank > 0 else zeros + 0 * edges[0, 1]  # every rank takes part in the backward
    after = edges[rank + 1, 0] if rank + 1 < len(edges) else zeros + 0 * edges[-1, 0]
    return before, after


def _check_reach(chunk: int, width: int) -> None:
    if chunk < width:
        raise ValueError(
            f"each rank's chunk ({chunk} positions) must be at least {width} positions (a convolution's reach across "
            "the boundary): use fewer ranks or a longer sequence"
        )


def gather_sequence(x: Tensor, group: dist.ProcessGroup | None = None, dim: int = 1) -> Tensor:
    """Every rank's chunk of `x` (equal chunks along `dim`, rank order) -> the whole sequence, differentiable: the
    keys and values attention all-gathers in a hybrid (LASP-2H), B x L x D per layer where the scans send a state."""
    return torch.cat(list(_AllGather.apply(x, group)), dim=dim)


def linear_scan_sequence_parallel(
    a: Tensor, b: Tensor, resets: Tensor | None = None, group: dist.ProcessGroup | None = None
) -> Tensor:
    """This rank's chunk of h_t = a_t keep_t h_{t-1} + b_t over a sequence split across `group` in rank order.

    a, b: (B, L_rank, D) real or complex, this rank's positions; resets: (B, L_rank) bool or None. -> h (B, L_rank, D),
    equal to the same positions of `linear_scan` over the whole sequence (h_{-1} = 0)."""
    h_local = linear_scan(a, b, resets=resets)
    decay = a if resets is None else a * (~resets)[..., None].to(a.real.dtype)
    running = torch.cumprod(decay, dim=1)  # (B, L, D): prod_{s <= t} a_s keep_s
    return h_local + running * entering_state(running[:, -1], h_local[:, -1], group)[:, None]


def selective_scan_sequence_parallel(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    resets: Tensor | None = None,
    group: dist.ProcessGroup | None = None,
) -> Tensor:
    """`ssmkit.ops.selective_scan` (same arguments and shapes, this rank's positions along l) over a sequence split
    across `group`: equal to the same positions of one scan over the whole sequence. Two scans of the chunk: from
    zero for (total decay exp(A sum_t dt_t), 0 if the chunk holds a reset; last state), then from the entering
    state."""
    _, last = selective_scan(u, delta, A, B, C, delta_bias=delta_bias, delta_softplus=delta_softplus,
                             return_last_state=True, resets=resets)  # fmt: skip
    dt = step_size(delta, delta_bias, delta_softplus, working_dtype(u.dtype), channel_dim=1)  # (b, d, l)
    total = torch.exp(A.to(dt.dtype) * dt.sum(-1)[..., None])  # (b, d, n)
    if resets is not None:
        total = total * (~resets.any(-1)).to(total.dtype)[:, None, None]
    h0 = entering_state(total, last, group)
    return selective_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus, initial_state=h0, resets=resets)


def ssd_scan_sequence_parallel(
    x: Tensor,
    dt: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    chunk_size: int = 64,
    D: Tensor | None = None,
    z: Tensor | None = None,
    dt_bias: Tensor | None = None,
    dt_softplus: bool = False,
    resets: Tensor | None = None,
    group: dist.ProcessGroup | None = None,
    reverse: bool = False,
) -> Tensor:
    """`ssmkit.ops.ssd_scan` (same arguments and shapes, this rank's positions along l) over a sequence split across
    `group`: equal to the same positions of one scan over the whole sequence. Two scans of the chunk: from zero for
    (total decay exp(A_h sum_t dt_t) per head, 0 if the chunk holds a reset; final state), then from the entering
    state. `reverse`: the scan runs from the last rank to the first, each rank's inputs given in that order (a
    bidirectional mixer's backward direction: this rank's positions flipped)."""
    _, last = ssd_scan(x, dt, A, B, C, chunk_size, dt_bias=dt_bias, dt_softplus=dt_softplus,
                       return_final_states=True, resets=resets)  # fmt: skip
    steps = step_size(dt, dt_bias, dt_softplus, working_dtype(x.dtype))  # (b, l, h)
    total = torch.exp(A.to(steps.dtype) * steps.sum(1))  # (b, h)
    if resets is not None:
        total = total * (~resets.any(-1)).to(total.dtype)[:, None]
    h0 = entering_state(total[..., None, None].expand_as(last), last, group, reverse)  # (b, h, p, n)
    return ssd_scan(x, dt, A, B, C, chunk_size, D, z, dt_bias, initial_states=h0, dt_softplus=dt_softplus,
                    resets=resets)  # fmt: skip
