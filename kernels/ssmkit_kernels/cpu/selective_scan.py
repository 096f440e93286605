"""Fused numba selective scan (Mamba-1's S6) for CPU: forward and a hand-written backward.

Same signature and semantics as `ssmkit.ops.selective_scan_ref` (mamba_ssm's reference):

    h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t,    y_t = <C_t, h_t> + D * u_t,    y_t *= silu(z_t)

Shapes (b batch, d channels, l length, n state, g groups):
    u, delta, z: (b, d, l)   A: (d, n)   B, C: (d, n), (b, n, l) or (b, g, n, l)   D, delta_bias: (d,)

How it runs: work is split into tasks of (one batch row, one block of channels) run in parallel (`prange`);
each task walks its channels one by one, streaming over l with the n-vector of state in a small local array
and the exponentials computed on the fly. Nothing of size (b, l, d, n) exists: the backward recomputes one
channel's states into an (l, n) per-task scratch and runs the reverse recurrence
    g_t = dy_t C_t + exp(delta_{t+1} A) g_{t+1},    g_{l-1} = d(last_state) + dy_{l-1} C_{l-1}.
Gradients shared between channels (dB, dC of the variable layouts) go to one partial buffer per channel block
(a block never straddles a group), and those shared between batch rows (dA, dD, d delta_bias, time-invariant
dB, dC) to one partial per batch row; the partials are summed afterwards in torch, so there are no races and
the result does not depend on scheduling. Compute is float64 for float64 `u`, else float32.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload

Tensor = torch.Tensor

# reassoc/contract let LLVM vectorise the reductions over n; no flag that assumes finite values.
_JIT = {"cache": True, "nogil": True, "fastmath": {"reassoc", "contract", "nsz"}}


# ---------------------------------------------------------------------------------------------------------------
# exp over the state dimension. numba calls scalar libm `exp`, which keeps the n-loop from vectorising; for float32
# a branch-free Cephes-style exp (range reduction to [-ln2/2, ln2/2], degree-5 polynomial, 2^k through the
# exponent bits; <= 3 ulp, arguments clamped to [-87.3, 88.4], i.e. no denormals or inf) vectorises with AVX2.
# float64 keeps np.exp so float64 runs stay exact references.
# ---------------------------------------------------------------------------------------------------------------

_LO, _HI, _HALF, _ONE = np.float32(-87.33654), np.float32(88.37626), np.float32(0.5), np.float32(1)
_LOG2E, _LN2_HI, _LN2_LO = np.float32(1.4426950408889634), np.float32(0.693359375), np.float32(-2.12194440e-4)
_P0, _P1, _P2 = np.float32(1.9875691500e-4), np.float32(1.3981999507e-3), np.float32(8.3334519073e-3)
_P3, _P4, _P5 = np.float32(4.1665795894e-2), np.float32(1.6666665459e-1), np.float32(5.0000001201e-1)


@intrinsic
def _f32_from_bits(typingctx, bits):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


def _exp(x):
    """exp for the kernels: the vectorisable polynomial for float32, np.exp otherwise (see `_exp_impl`)."""
    return np.exp(x)


@overload(_exp, jit_options={"fastmath": _JIT["fastmath"]})
def _exp_impl(x):
    if x != types.float32:
        return lambda x: np.exp(x)

    def exp_f32(x):
        x = min(max(x, _LO), _HI)
        k = np.floor(x * _LOG2E + _HALF)
        r = x - k * _LN2_HI - k * _LN2_LO
        p = ((((_P0 * r + _P1) * r + _P2) * r + _P3) * r + _P4) * r + _P5
        return (_ONE + r + r * r * p) * _f32_from_bits(np.int32((np.int32(k) + 127) << 23))

    return exp_f32


# ---------------------------------------------------------------------------------------------------------------
# numba kernels. B and C arrive as (bM, G, lM, n) contiguous: (b, g, l, n) when variable, (1, d, 1, n) when
# time-invariant, so channel di reads group di // (d // G) at batch/time index 0 when not variable.
# ---------------------------------------------------------------------------------------------------------------


@njit(**_JIT)
def _sigmoid(x, one):
    return one / (one + np.exp(-x))


@njit(**_JIT)
def _step_size(raw, softplus, threshold):
    """delta as used by the scan: softplus(raw) (linear above `threshold`, like torch) or raw."""
    if softplus and raw <= threshold:
        return np.log1p(np.exp(raw))
    return raw


@njit(**_JIT)
def _channel_scan(bi, di, u, delta, A, B, C, D, bias, softplus, b_var, c_var, h, ys, hs, decays, store):
    """Runs channel (bi, di) forward: ys[t] = <C_t, h_t> + D u_t (before the gate), h = the last state.

    With `store`, also keeps hs[t + 1] = h_t (hs[0] = 0) and decays[t] = exp(delta_t A): (l + 1, n), (l, n).
    """
    length, n = u.shape[2], A.shape[1]
    threshold = u.dtype.type(20)
    bb, gb = (bi if b_var else 0), di // (u.shape[1] // B.shape[1])
    bc, gc = (bi if c_var else 0), di // (u.shape[1] // C.shape[1])
    h[:] = 0
    if store:
        hs[0, :] = 0
    for t in range(length):
        dt = _step_size(delta[bi, di, t] + bias[di], softplus, threshold)
        x = dt * u[bi, di, t]
        tb, tc = (t if b_var else 0), (t if c_var else 0)
        acc = u.dtype.type(0)
        for k in range(n):
            a = _exp(dt * A[di, k])
            h[k] = a * h[k] + x * B[bb, gb, tb, k]
            acc += h[k] * C[bc, gc, tc, k]
            if store:
                decays[t, k] = a
                hs[t + 1, k] = h[k]
        ys[t] = acc + D[di] * u[bi, di, t]


@njit(parallel=True, **_JIT)
def _forward_kernel(u, delta, A, B, C, D, z, bias, softplus, has_z, b_var, c_var, block, out, last):
    """out: (b, d, l) gated outputs; last: (b, d, n) last states. Tasks are (batch row, block of channels)."""
    batch, dim, length = u.shape
    n_blocks = dim // block
    one = u.dtype.type(1)
    for task in prange(batch * n_blocks):
        bi, j = task // n_blocks, task % n_blocks
        h = np.empty(A.shape[1], u.dtype)
        unused = np.empty((1, 1), u.dtype)
        for di in range(j * block, (j + 1) * block):
            ys = out[bi, di]
            _channel_scan(bi, di, u, delta, A, B, C, D, bias, softplus, b_var, c_var, h, ys, unused, unused, False)
            if has_z:
                for t in range(length):
                    ys[t] *= z[bi, di, t] * _sigmoid(z[bi, di, t], one)
            last[bi, di, :] = h


@njit(parallel=True, **_JIT)
def _backward_kernel(
    u, delta, A, B, C, D, z, bias, softplus, has_z, b_var, c_var, block, dout, dlast,
    du, ddelta, dz, dA, dB, dC, dD, dbias,
):  # fmt: skip
    """Fills du, ddelta, dz: (b, d, l) and the partials dA: (b, d, n), dD, dbias: (b, d), dB, dC: (rows, b, lM, n).

    dB / dC rows are channel blocks when variable ((n_blocks, b, l, n)) and channels when time-invariant
    ((d, b, 1, n)); dA, dD, dbias are per batch row. Each task owns the rows it writes.
    """
    batch, dim, length = u.shape
    n_blocks, n = dim // block, A.shape[1]
    one, zero, threshold = u.dtype.type(1), u.dtype.type(0), u.dtype.type(20)
    for task in prange(batch * n_blocks):
        bi, j = task // n_blocks, task % n_blocks
        h, g = np.empty(n, u.dtype), np.empty(n, u.dtype)
        ys, hs, decays = np.empty(length, u.dtype), np.empty((length + 1, n), u.dtype), np.empty((length, n), u.dtype)
        for di in range(j * block, (j + 1) * block):
            _channel_scan(bi, di, u, delta, A, B, C, D, bias, softplus, b_var, c_var, h, ys, hs, decays, True)
            bb, gb, rb = (bi if b_var else 0), di // (dim // B.shape[1]), (j if b_var else di)
            bc, gc, rc = (bi if c_var else 0), di // (dim // C.shape[1]), (j if c_var else di)
            g[:] = dlast[bi, di]
            dD_acc, dbias_acc = zero, zero
            for t in range(length - 1, -1, -1):
                raw = delta[bi, di, t] + bias[di]
                dt = _step_size(raw, softplus, threshold)
                x, dy = dt * u[bi, di, t], dout[bi, di, t]
                if has_z:
                    s = _sigmoid(z[bi, di, t], one)
                    dz[bi, di, t] = dy * ys[t] * s * (one + z[bi, di, t] * (one - s))
                    dy *= z[bi, di, t] * s
                tb, tc = (t if b_var else 0), (t if c_var else 0)
                ddt, gB = zero, zero
                for k in range(n):
                    g_k, a_k = g[k] + dy * C[bc, gc, tc, k], decays[t, k]
                    gah = g_k * a_k * hs[t, k]
                    dA[bi, di, k] += gah * dt
                    ddt += gah * A[di, k]
                    gB += g_k * B[bb, gb, tb, k]
                    dB[rb, bi, tb, k] += g_k * x
                    dC[rc, bi, tc, k] += dy * hs[t + 1, k]
                    g[k] = g_k * a_k
                ddt += gB * u[bi, di, t]
                du[bi, di, t] = dy * D[di] + dt * gB
                dD_acc += dy * u[bi, di, t]
                if softplus and raw <= threshold:
                    ddt *= _sigmoid(raw, one)
                ddelta[bi, di, t] = ddt
                dbias_acc += ddt
            dD[bi, di], dbias[bi, di] = dD_acc, dbias_acc


# ---------------------------------------------------------------------------------------------------------------
# torch side: layouts in and out, the autograd Function, the public entry point.
# ---------------------------------------------------------------------------------------------------------------


def _bc_layout(M: Tensor, work: torch.dtype) -> Tensor:
    """B or C in kernel layout: (d, n) as (1, d, 1, n), (b, n, l) as (b, 1, l, n), (b, g, n, l) as (b, g, l, n)."""
    M = M.detach().to(work)
    if M.dim() == 2:
        return M[None, :, None, :].contiguous()
    if M.dim() == 3:
        M = M[:, None]
    return M.transpose(-1, -2).contiguous()


def _bc_grad(partial: Tensor, like: Tensor) -> Tensor:
    """Sums the dB / dC partials (rows, b, lM, n) back to the shape and dtype of `like` (the original B or C)."""
    if like.dim() == 2:  # rows are channels: sum over batch rows (and the size-1 time axis)
        return partial.sum((1, 2)).to(like.dtype)
    groups = 1 if like.dim() == 3 else like.shape[1]
    rows, batch, length, n = partial.shape
    grad = partial.view(groups, rows // groups, batch, length, n).sum(1).permute(1, 0, 3, 2)  # (b, g, n, l)
    return (grad[:, 0] if like.dim() == 3 else grad).to(like.dtype)


def _block_size(batch: int, dim: int, groups: list[int]) -> int:
    """Channels per task: the largest block inside one group of every variable B/C (`groups`: their group
    counts) that still gives each thread about four tasks; the dB/dC partials hold one (b, l, n) slab per block."""
    base = math.gcd(dim, *(dim // g for g in groups))
    target = 4 * numba.get_num_threads()
    sizes = [s for s in range(base, 0, -1) if base % s == 0]
    return next((s for s in sizes if batch * (dim // s) >= target), 1)


def _kernel_inputs(u, delta, A, B, C, D, z, delta_bias) -> tuple[Tensor, ...]:
    """Contiguous work-dtype tensors in kernel order; zeros stand for an absent D / delta_bias, (1, 1, 1) for z."""
    work = torch.float64 if u.dtype == torch.float64 else torch.float32

    def prep(t: Tensor | None, *absent: int) -> Tensor:
        return torch.zeros(absent, dtype=work) if t is None else t.detach().to(work).contiguous()

    dim = u.shape[1]
    return (
        prep(u),
        prep(delta),
        prep(A),
        _bc_layout(B, work),
        _bc_layout(C, work),
        prep(D, dim),
        prep(z, 1, 1, 1),
        prep(delta_bias, dim),
    )


def _np(*tensors: Tensor) -> list[np.ndarray]:
    return [t.numpy() for t in tensors]


class SelectiveScanFn(torch.autograd.Function):
    """Autograd wrapper: returns (y, last_state); the backward also propagates a gradient of last_state."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, delta_softplus):
        ins = _kernel_inputs(u, delta, A, B, C, D, z, delta_bias)
        has_z, b_var, c_var = z is not None, B.dim() > 2, C.dim() > 2
        batch, dim, _ = u.shape
        block = _block_size(batch, dim, [M.shape[1] for M, var in zip(ins[3:5], (b_var, c_var), strict=True) if var])
        out = torch.empty_like(ins[0])
        last = ins[0].new_empty(batch, dim, A.shape[1])
        _forward_kernel(*_np(*ins), delta_softplus, has_z, b_var, c_var, block, *_np(out, last))
        ctx.save_for_backward(*ins)
        ctx.originals = (u, delta, A, B, C, D, z, delta_bias)
        ctx.flags = (delta_softplus, has_z, b_var, c_var, block)
        return out.to(u.dtype), last

    @staticmethod
    def backward(ctx, dout, dlast):
        ins = ctx.saved_tensors
        u, delta, A, B, C, D, z, delta_bias = ctx.originals
        softplus, has_z, b_var, c_var, block = ctx.flags
        (batch, dim, length), n, work = u.shape, A.shape[1], ins[0].dtype
        dout = dout.to(work).contiguous()
        dlast = dlast.to(work).contiguous()  # autograd materialises a zero gradient when last_state is unused
        du, ddelta, dz = (torch.empty(batch, dim, length, dtype=work) for _ in range(3))
        dA = torch.zeros(batch, dim, n, dtype=work)
        dB, dC = (_partial(var, batch, dim, length, n, block, work) for var in (b_var, c_var))
        dD, dbias = torch.zeros(batch, dim, dtype=work), torch.zeros(batch, dim, dtype=work)
        _backward_kernel(
            *_np(*ins), softplus, has_z, b_var, c_var, block, *_np(dout, dlast, du, ddelta, dz, dA, dB, dC, dD, dbias)
        )
        return (
            du.to(u.dtype),
            ddelta.to(delta.dtype),
            dA.sum(0).to(A.dtype),
            _bc_grad(dB, B),
            _bc_grad(dC, C),
            None if D is None else dD.sum(0).to(D.dtype),
            None if z is None else dz.to(z.dtype),
            None if delta_bias is None else dbias.sum(0).to(delta_bias.dtype),
            None,
        )


def _partial(variable: bool, batch: int, dim: int, length: int, n: int, block: int, work: torch.dtype) -> Tensor:
    """The zeroed dB / dC partial buffer: (n_blocks, b, l, n) if variable, else (d, b, 1, n)."""
    shape = (dim // block, batch, length, n) if variable else (dim, batch, 1, n)
    return torch.zeros(shape, dtype=work)


def selective_scan_numba(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """The fused CPU selective scan; same signature, shapes and dtypes as `ssmkit.ops.selective_scan_ref`."""
    y, last = SelectiveScanFn.apply(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    return (y, last) if return_last_state else y
