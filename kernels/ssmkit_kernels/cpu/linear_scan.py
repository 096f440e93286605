"""Fused numba linear scan with resets for CPU: forward and a hand-written backward.

Same semantics as `ssmkit.ops.linear_scan_ref` (the scan under S5 and LRU):

    h_t = a_t * (keep_t * h_{t-1}) + b_t,    h_{-1} = h0,    keep_t = 0 where resets[:, t] else 1

Shapes: a, b (B, L, D) real or complex; h0 (B, D); resets (B, L) bool. Returns h (B, L, D).

How it runs: tasks of (one batch row, one block of channels) run in parallel (`prange`); each walks over L with
the block's state in a small local array, the inner loop over contiguous channels (independent lanes LLVM
vectorises). The backward runs the adjoint recurrence in reverse,

    G_t = dh_t + conj(a_{t+1} keep_{t+1}) G_{t+1},    db_t = G_t,    da_t = G_t conj(keep_t h_{t-1}),

reading h_{t-1} from the saved output (PyTorch's convention for complex gradients: the conjugate Wirtinger
derivative, so conj appears where a real scan has none). Every task writes only its own rows: no races.
It computes in `ssmkit_kernels.scan_api.working_dtype`: float64 and complex128 stay double, the rest runs in
float32 (complex64).
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit, prange

from ssmkit_kernels.cpu import JIT_OPTIONS
from ssmkit_kernels.cpu.threads import with_torch_threads
from ssmkit_kernels.scan_api import linear_scan_backend

Tensor = torch.Tensor

_BLOCK = 64  # channels per task


@njit(**JIT_OPTIONS)
def _task(task, n_blocks, dim):
    """(batch row, first channel, one past the last channel) of a task."""
    bi, c0 = task // n_blocks, (task % n_blocks) * _BLOCK
    return bi, c0, min(c0 + _BLOCK, dim)


@with_torch_threads
@njit(parallel=True, **JIT_OPTIONS)
def _forward_kernel(a, b, h0, keep, h):
    """h: (B, L, D) <- the scan of a, b: (B, L, D) from h0: (B, D), with keep: (B, L) (0 at a reset)."""
    batch, length, dim = b.shape
    n_blocks = (dim + _BLOCK - 1) // _BLOCK
    for task in prange(batch * n_blocks):
        bi, c0, c1 = _task(task, n_blocks, dim)
        state = h0[bi, c0:c1].copy()
        for t in range(length):
            k = keep[bi, t]
            for c in range(c1 - c0):
                state[c] = a[bi, t, c0 + c] * (k * state[c]) + b[bi, t, c0 + c]
            h[bi, t, c0:c1] = state


@with_torch_threads
@njit(parallel=True, **JIT_OPTIONS)
def _backward_kernel(a, h0, keep, h, dh, da, db, dh0):
    """da, db: (B, L, D) and dh0: (B, D) from the output gradient dh: (B, L, D), by the reverse recurrence."""
    batch, length, dim = dh.shape
    n_blocks = (dim + _BLOCK - 1) // _BLOCK
    for task in prange(batch * n_blocks):
        bi, c0, c1 = _task(task, n_blocks, dim)
        g = np.zeros(c1 - c0, dh.dtype)  # the gradient reaching h_t from later steps
        for t in range(length - 1, -1, -1):
            k = keep[bi, t]
            prev = h[bi, t - 1, c0:c1] if t > 0 else h0[bi, c0:c1]
            for c in range(c1 - c0):
                grad = g[c] + dh[bi, t, c0 + c]
                db[bi, t, c0 + c] = grad
                da[bi, t, c0 + c] = grad * np.conj(k * prev[c])
                g[c] = np.conj(k * a[bi, t, c0 + c]) * grad
        dh0[bi, c0:c1] = g


def _np(t: Tensor) -> np.ndarray:
    return t.detach().numpy()


# The kernels as torch.library custom ops with fake (shape-only) implementations: torch.compile and AOTAutograd see
# one op each way, with fullgraph=True too, instead of a graph break around numba's numpy calls.


@torch.library.custom_op("ssmkit::linear_scan_numba", mutates_args=())
def _scan(a: Tensor, b: Tensor, h0: Tensor, keep: Tensor) -> Tensor:
    h = torch.empty_like(b)
    _forward_kernel(*(_np(t) for t in (a, b, h0, keep, h)))
    return h


@_scan.register_fake
def _(a: Tensor, b: Tensor, h0: Tensor, keep: Tensor) -> Tensor:
    return torch.empty_like(b)


@torch.library.custom_op("ssmkit::linear_scan_numba_backward", mutates_args=())
def _scan_backward(a: Tensor, h0: Tensor, keep: Tensor, h: Tensor, dh: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    da, db, dh0 = torch.empty_like(a), torch.empty_like(a), torch.empty_like(h0)
    _backward_kernel(*(_np(t) for t in (a, h0, keep, h, dh, da, db, dh0)))
    return da, db, dh0


@_scan_backward.register_fake
def _(a: Tensor, h0: Tensor, keep: Tensor, h: Tensor, dh: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    return torch.empty_like(a), torch.empty_like(a), torch.empty_like(h0)


def _save(ctx, inputs: tuple, output: Tensor) -> None:
    a, _, h0, keep = inputs
    ctx.save_for_backward(a, h0, keep, output)


def _gradients(ctx, dh: Tensor) -> tuple[Tensor, Tensor, Tensor, None]:
    a, h0, keep, h = ctx.saved_tensors
    return (*_scan_backward(a, h0, keep, h, dh.contiguous()), None)


_scan.register_autograd(_gradients, setup_context=_save)


@linear_scan_backend
def linear_scan_numba(a, b, h0, resets):
    """The fused scan; arguments as `ssmkit.ops.linear_scan_ref`. As there, h0 is cast to b's dtype and h comes
    in the promotion of a's and b's (computed in float32 for half precision)."""
    h0 = torch.zeros_like(b[:, 0]) if h0 is None else h0
    keep = torch.ones(b.shape[:2], dtype=b.real.dtype) if resets is None else (~resets).to(b.real.dtype)
    h = _scan(a, b, h0.contiguous(), keep)
    return h, h[:, -1]
