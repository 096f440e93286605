"""First-order linear recurrence with resets as a chunked Triton scan, forward and backward.

Same signature and semantics as `ssmkit.ops.linear_scan_ref`:

    h_t = a'_t * h_{t-1} + b_t,    a'_t = 0 where resets[:, t] else a_t,    h_{-1} = h0 (zeros by default)

Shapes: a, b (B, L, D) real or complex; h0 (B, D); resets (B, L) bool. Returns h (B, L, D) [, h_last (B, D)].

Blocking: one program per (batch row, block of BLOCK_D channels) walks L in chunks of BLOCK_L steps; inside a
chunk `tl.associative_scan` composes the affine maps h -> a h + b, and the state at the chunk's end is carried
into the next one. Complex inputs are scanned as (real, imaginary) pairs. The backward runs the same scan in
reverse for the adjoint g_t = dh_t + conj(a'_{t+1}) g_{t+1} (the carry is g at the chunk's first step), then
db_t = g_t, da_t = g_t conj(h_{t-1}) (0 at a reset), dh0 = conj(a'_0) g_0, reading h_{t-1} from the saved output.
Compute is float32, or float64 for double inputs.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ssmkit_kernels.scan_api import linear_scan_backend
from ssmkit_kernels.triton import INTERPRET, on_device, warp_configs

Tensor = torch.Tensor

BLOCK_L, BLOCK_D = (8, 4) if INTERPRET else (64, 32)


@triton.jit
def first_order(a1, b1, a2, b2):
    """Compose the affine maps h -> a1 h + b1, then h -> a2 h + b2 (the scan's combine)."""
    return a1 * a2, b1 * a2 + b2


@triton.jit
def _first_order_complex(ar1, ai1, br1, bi1, ar2, ai2, br2, bi2):
    """`first_order` for complex a, b given as (real, imaginary) parts."""
    return (
        ar1 * ar2 - ai1 * ai2,
        ar1 * ai2 + ai1 * ar2,
        br1 * ar2 - bi1 * ai2 + br2,
        br1 * ai2 + bi1 * ar2 + bi2,
    )


@triton.jit
def _load(ptr, offs, mask, other, COMPLEX: tl.constexpr):
    """Real and imaginary parts (0 for real data) of the elements at `offs` (offsets of complex elements)."""
    if COMPLEX:
        re, im = tl.load(ptr + 2 * offs, mask, other), tl.load(ptr + 2 * offs + 1, mask, 0.0)
    else:
        re, im = tl.load(ptr + offs, mask, other), 0.0
    return re, im


@triton.jit
def _store(ptr, offs, mask, re, im, COMPLEX: tl.constexpr):
    if COMPLEX:
        tl.store(ptr + 2 * offs, re.to(ptr.dtype.element_ty), mask)
        tl.store(ptr + 2 * offs + 1, im.to(ptr.dtype.element_ty), mask)
    else:
        tl.store(ptr + offs, re.to(ptr.dtype.element_ty), mask)


@triton.jit
def _kept(resets_ptr, row, t, length):
    """False where step t (BLOCK_L,) restarts the state."""
    return tl.load(resets_ptr + row * length + t, (t >= 0) & (t < length), 0) == 0


@triton.jit
def _decay(a_ptr, resets_ptr, row, t, d, length, dim, HAS_RESETS: tl.constexpr, COMPLEX: tl.constexpr):
    """a'_t for steps t (BLOCK_L,) and channels d (BLOCK_D,): 0 at a reset, 1 outside [0, length)."""
    mask = ((t >= 0) & (t < length))[:, None] & (d < dim)[None, :]
    re, im = _load(a_ptr, (row * length + t[:, None]) * dim + d[None, :], mask, 1.0, COMPLEX)
    if HAS_RESETS:
        keep = _kept(resets_ptr, row, t, length)[:, None]
        re = tl.where(keep, re, 0.0)
        if COMPLEX:
            im = tl.where(keep, im, 0.0)
    return re, im


@triton.jit
def _program_channels(dim, BLOCK_D: tl.constexpr):
    """This program's batch row, its channels d (BLOCK_D,) and which of them exist (d < dim)."""
    d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    return tl.program_id(0), d, d < dim


@triton.jit
def _tile(row, t, d, d_ok, length, dim):
    """Offsets and mask of the (BLOCK_L, BLOCK_D) tile of steps t and channels d of a (B, L, D) tensor."""
    return (row * length + t[:, None]) * dim + d[None, :], (t < length)[:, None] & d_ok[None, :]


@triton.jit
def row_of(x, i, BLOCK_L: tl.constexpr):
    """x[i, :] of a (BLOCK_L, BLOCK_D) tile."""
    return tl.sum(tl.where(tl.arange(0, BLOCK_L)[:, None] == i, x, 0.0), 0)


@triton.autotune(configs=warp_configs(), key=["BLOCK_L", "BLOCK_D", "COMPLEX"])
@triton.jit
def _linear_scan_fwd(
    a_ptr, b_ptr, h0_ptr, resets_ptr, h_ptr, last_ptr, length, dim,
    HAS_H0: tl.constexpr, HAS_RESETS: tl.constexpr, COMPLEX: tl.constexpr,
    BLOCK_L: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    row, d, d_ok = _program_channels(dim, BLOCK_D)
    hr = tl.zeros((BLOCK_D,), h_ptr.dtype.element_ty)
    hi = tl.zeros((BLOCK_D,), h_ptr.dtype.element_ty) if COMPLEX else 0.0
    if HAS_H0:
        hr, hi = _load(h0_ptr, row * dim + d, d_ok, 0.0, COMPLEX)
    for chunk in range(tl.cdiv(length, BLOCK_L)):
        t = chunk * BLOCK_L + tl.arange(0, BLOCK_L)
        offs, mask = _tile(row, t, d, d_ok, length, dim)
        ar, ai = _decay(a_ptr, resets_ptr, row, t, d, length, dim, HAS_RESETS, COMPLEX)
        br, bi = _load(b_ptr, offs, mask, 0.0, COMPLEX)
        if COMPLEX:
            ar, ai, br, bi = tl.associative_scan((ar, ai, br, bi), 0, _first_order_complex)
            hr, hi = ar * hr[None, :] - ai * hi[None, :] + br, ar * hi[None, :] + ai * hr[None, :] + bi
        else:
            ar, br = tl.associative_scan((ar, br), 0, first_order)
            hr = ar * hr[None, :] + br
        _store(h_ptr, offs, mask, hr, hi, COMPLEX)
        hr, hi = row_of(hr, BLOCK_L - 1, BLOCK_L), row_of(hi, BLOCK_L - 1, BLOCK_L) if COMPLEX else 0.0
    _store(last_ptr, row * dim + d, d_ok, hr, hi, COMPLEX)


@triton.autotune(configs=warp_configs(), key=["BLOCK_L", "BLOCK_D", "COMPLEX"])
@triton.jit
def _linear_scan_bwd(
    a_ptr, h0_ptr, resets_ptr, h_ptr, dh_ptr, dlast_ptr, da_ptr, db_ptr, dh0_ptr, length, dim,
    HAS_H0: tl.constexpr, HAS_RESETS: tl.constexpr, COMPLEX: tl.constexpr,
    BLOCK_L: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    row, d, d_ok = _program_channels(dim, BLOCK_D)
    gr, gi = _load(dlast_ptr, row * dim + d, d_ok, 0.0, COMPLEX)
    for i in range(tl.cdiv(length, BLOCK_L)):
        t = (tl.cdiv(length, BLOCK_L) - 1 - i) * BLOCK_L + tl.arange(0, BLOCK_L)
        offs, mask = _tile(row, t, d, d_ok, length, dim)
        nr, ni = _decay(a_ptr, resets_ptr, row, t + 1, d, length, dim, HAS_RESETS, COMPLEX)
        dr, di = _load(dh_ptr, offs, mask, 0.0, COMPLEX)
        if COMPLEX:  # the adjoint runs with conj(a'_{t+1})
            nr, ni, dr, di = tl.associative_scan((nr, -ni, dr, di), 0, _first_order_complex, reverse=True)
            gr, gi = dr + nr * gr[None, :] - ni * gi[None, :], di + nr * gi[None, :] + ni * gr[None, :]
        else:
            nr, dr = tl.associative_scan((nr, dr), 0, first_order, reverse=True)
            gr = dr + nr * gr[None, :]
        _store(db_ptr, offs, mask, gr, gi, COMPLEX)
        # h_{t-1}: the saved output, or h0 before the first step
        pr, pi = _load(h_ptr, offs - dim, mask & (t >= 1)[:, None], 0.0, COMPLEX)
        if HAS_H0:
            qr, qi = _load(h0_ptr, row * dim + d, d_ok, 0.0, COMPLEX)
            pr = tl.where(t[:, None] == 0, qr[None, :], pr)
            if COMPLEX:
                pi = tl.where(t[:, None] == 0, qi[None, :], pi)
        dar, dai = (gr * pr + gi * pi, gi * pr - gr * pi) if COMPLEX else (gr * pr, 0.0)  # g conj(h_{t-1})
        if HAS_RESETS:  # a' = 0 at a reset does not depend on a
            dar = tl.where(_kept(resets_ptr, row, t, length)[:, None], dar, 0.0)
            if COMPLEX:
                dai = tl.where(_kept(resets_ptr, row, t, length)[:, None], dai, 0.0)
        _store(da_ptr, offs, mask, dar, dai, COMPLEX)
        gr, gi = row_of(gr, 0, BLOCK_L), row_of(gi, 0, BLOCK_L) if COMPLEX else 0.0
    if HAS_H0:
        ar, ai = _decay(a_ptr, resets_ptr, row, tl.arange(0, BLOCK_L), d, length, dim, HAS_RESETS, COMPLEX)
        ar, ai = row_of(ar, 0, BLOCK_L), row_of(ai, 0, BLOCK_L) if COMPLEX else 0.0
        _store(dh0_ptr, row * dim + d, d_ok, ar * gr + ai * gi, ar * gi - ai * gr, COMPLEX)


class LinearScanFn(torch.autograd.Function):
    """h = linear_scan(a, b, h0, resets) in the working dtype; inputs and outputs as real views if complex."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, h0: Tensor | None, resets: Tensor | None) -> tuple[Tensor, Tensor]:
        a_, b_, h0_ = (_as_real(t) for t in (a, b, h0))
        h, last = torch.empty_like(b_), torch.empty_like(b_[:, 0])
        _linear_scan_fwd[_grid(b)](a_, b_, h0_, resets, h, last, b.shape[1], b.shape[2], **_flags(b, h0, resets))
        ctx.save_for_backward(a, h0, resets, h)
        ctx.complex = b.is_complex()
        return _as_complex(h, ctx.complex), _as_complex(last, ctx.complex)

    @staticmethod
    def backward(ctx, dh: Tensor, dlast: Tensor):
        a, h0, resets, h = ctx.saved_tensors
        dh_, dlast_ = (_as_real(g.resolve_conj().contiguous()) for g in (dh, dlast))
        da, db, dh0 = torch.empty_like(h), torch.empty_like(h), torch.empty_like(dlast_)
        flags = _flags(dh, h0, resets)
        _linear_scan_bwd[_grid(dh)](
            _as_real(a), _as_real(h0), resets, h, dh_, dlast_, da, db, dh0, dh.shape[1], dh.shape[2], **flags
        )
        da, db, dh0 = (_as_complex(t, ctx.complex) for t in (da, db, dh0))
        return da, db, dh0 if h0 is not None else None, None


@linear_scan_backend
def linear_scan_triton(a, b, h0, resets):
    """The chunked Triton scan; same signature, shapes and dtypes as `ssmkit.ops.linear_scan_ref`."""
    with on_device(b):
        return LinearScanFn.apply(a, b, h0, None if resets is None else resets.contiguous())


def _as_real(t: Tensor | None) -> Tensor | None:
    return torch.view_as_real(t) if t is not None and t.is_complex() else t


def _as_complex(t: Tensor, complex_: bool) -> Tensor:
    return torch.view_as_complex(t) if complex_ else t


def _grid(b: Tensor):
    return lambda meta: (b.shape[0], triton.cdiv(b.shape[2], meta["BLOCK_D"]))


def _flags(b: Tensor, h0: Tensor | None, resets: Tensor | None) -> dict:
    return {
        "HAS_H0": h0 is not None,
        "HAS_RESETS": resets is not None,
        "COMPLEX": b.is_complex(),
        "BLOCK_L": BLOCK_L,
        "BLOCK_D": BLOCK_D,
    }
