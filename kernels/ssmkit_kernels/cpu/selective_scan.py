"""Fused numba selective scan (Mamba-1's S6) for CPU: forward and a hand-written backward.

Same signature and semantics as `ssmkit.ops.selective_scan_ref` (mamba_ssm's reference):

    h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t,    y_t = <C_t, h_t> + D * u_t,    y_t *= silu(z_t)

Shapes (b batch, d channels, l length, n state, g groups):
    u, delta, z: (b, d, l)   A: (d, n)   B, C: (d, n), (b, n, l) or (b, g, n, l)   D, delta_bias: (d,)

How it runs: channels are cut into blocks of cw (<= 32) and a task is (one batch row, one block), run in
parallel (`prange`). A task first lays its dt = softplus(delta + bias) and x = dt * u out blocked, (l, cw), then
scans with an (n, cw) state whose inner loops run over the block's contiguous channels: independent lanes that
LLVM vectorises, exponentials included (a float32 polynomial exp; see below). The forward keeps the state every
`chunk` (>= n) steps; the backward recomputes one chunk at a time from those checkpoints (states and decays in an
L2-sized scratch) and runs the adjoint recurrence backwards through it,
    g_t = dy_t C_t + exp(dt_{t+1} A) g_{t+1},    g after the last step = d(last_state),
and what it leaves before the first step is the gradient of the initial state h_{-1}. Where `resets` (b, l) is set
the decay is 0 (the state restarts before that step): forward and backward both read it from the stored decays.
Nothing of size (b, l, d, n) exists: extra memory is dt, x (b, d, l) and the checkpoints (b, d, l / chunk, n).
Gradients shared between channels (dB, dC of the variable layouts) go to one partial per channel block (a block
never straddles a group), those shared between batch rows (dA, dD, d delta_bias, time-invariant dB, dC) to one
partial per batch row; torch sums the partials, so there are no races and results do not depend on scheduling.
Compute is float64 for float64 `u` (with libm exp / log1p, an exact reference), else float32.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload

from ssmkit_kernels.cpu import JIT_OPTIONS
from ssmkit_kernels.cpu.threads import with_torch_threads
from ssmkit_kernels.scan_api import selective_scan_backend, selective_state_update_backend, working_dtype

Tensor = torch.Tensor


# ---------------------------------------------------------------------------------------------------------------
# exp and softplus for the kernels. numba calls scalar libm `exp` / `log1p`, which keeps loops from vectorising;
# for float32 a branch-free Cephes-style exp (range reduction to [-ln2/2, ln2/2], degree-5 polynomial, 2^k through
# the exponent bits; <= 3 ulp, arguments clamped to [-87.3, 88.4], i.e. no denormals or inf) vectorises with
# AVX2 / AVX-512, and softplus uses it with log1p(w) = 2 atanh(w / (2 + w)) as a series (w = exp(-|v|) <= 1, so
# s = w / (2 + w) <= 1/3 and seven terms leave < 2e-8 relative error). float64 keeps libm so float64 runs stay
# exact references. Softplus is linear above 20, as torch's is.
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


@overload(_exp, jit_options={"fastmath": JIT_OPTIONS["fastmath"], "error_model": JIT_OPTIONS["error_model"]})
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


_TWENTY, _TWO = np.float32(20), np.float32(2)
_S = tuple(np.float32(1 / k) for k in (3, 5, 7, 9, 11, 13))


def _softplus(v):
    """softplus for the kernels (see `_softplus_impl`): log(1 + exp(v)), linear above 20."""
    return v if v > 20 else np.log1p(np.exp(v))


@overload(_softplus, jit_options={"fastmath": JIT_OPTIONS["fastmath"], "error_model": JIT_OPTIONS["error_model"]})
def _softplus_impl(v):
    if v != types.float32:
        return lambda v: v if v > 20 else np.log1p(np.exp(v))

    def softplus_f32(v):
        w = _exp(-abs(v))
        s = w / (_TWO + w)
        s2 = s * s
        p = _ONE + s2 * (_S[0] + s2 * (_S[1] + s2 * (_S[2] + s2 * (_S[3] + s2 * (_S[4] + s2 * _S[5])))))
        return v if v > _TWENTY else max(v, v * 0) + _TWO * s * p  # max(v, 0) kept in float32

    return softplus_f32


@njit(**JIT_OPTIONS)
def _sigmoid(v):
    return 1 / (1 + _exp(-v))


# ---------------------------------------------------------------------------------------------------------------
# numba kernels. A task is (batch row bi, channel block j of cw channels c0 = j * cw ...). Its dt and x are blocked,
# (b, d / cw, l, cw), so the scan's inner loops run over cw contiguous channels indexed by the bare loop counter
# (an offset index such as c0 + c gets numba's negative-index wrap and is gathered instead: 5x slower, measured).
# Per-channel elementwise work (softplus, the D skip, the gate and their gradients) runs along time, contiguous in
# the (b, d, l) inputs, on (cw, chunk) rows that `_to_rows` and `_to_block` turn from and into the blocked layout:
# vectorised there, where the blocked layout's stride would keep it scalar (the forward 1.3x faster at B=64 D=512
# L=256). B and C arrive as (b, g, l, n) when variable (one value per step and state for the whole block: a block
# never straddles a group) and as (1, 1, d, n) when time-invariant.
# ---------------------------------------------------------------------------------------------------------------


@njit(**JIT_OPTIONS)
def _task(task, dt, B, C, b_var, c_var):
    """(bi, j, c0, gb, gc, Bt, Ct) of a task: batch row, block, first channel, the groups of B and C it reads, and
    (n, cw) buffers for B_t and C_t (time-invariant ones are loaded here, once)."""
    blocks, cw = dt.shape[1], dt.shape[3]
    bi, j = task // blocks, task % blocks
    c0, n = j * cw, B.shape[3]
    Bt, Ct = np.empty((n, cw), dt.dtype), np.empty((n, cw), dt.dtype)
    for c in range(cw):
        if not b_var:
            Bt[:, c] = B[0, 0, c0 + c]
        if not c_var:
            Ct[:, c] = C[0, 0, c0 + c]
    return bi, j, c0, j * B.shape[1] // blocks, j * C.shape[1] // blocks, Bt, Ct


@njit(**JIT_OPTIONS)
def _load_step(M, bi, group, t, buf):
    """buf: (n, cw) <- a variable B or C (b, g, l, n) at step t, the same for every channel of the block."""
    for k in range(buf.shape[0]):
        buf[k, :] = M[bi, group, t, k]


@njit(**JIT_OPTIONS)
def _to_rows(block, rows, steps):
    """rows[c, s] = block[s, c] for s < steps: (chunk, cw) in the scan's layout -> (cw, chunk), along time."""
    for s in range(steps):
        for c in range(block.shape[1]):
            rows[c, s] = block[s, c]


@njit(**JIT_OPTIONS)
def _to_block(rows, block, steps):
    """block[s, c] = rows[c, s] for s < steps: the inverse of `_to_rows`."""
    for s in range(steps):
        for c in range(block.shape[1]):
            block[s, c] = rows[c, s]


@njit(**JIT_OPTIONS)
def _prepare(bi, j, u, delta, bias, softplus, dt, x, rows):
    """Fills the task's dt[bi, j] = softplus(delta + bias) (or delta + bias) and x[bi, j] = dt * u: (l, cw), a chunk
    of rows (>= 2, cw, chunk) at a time: computed along time (contiguous in the (b, d, l) inputs: it vectorises),
    then laid out blocked."""
    cw, length, chunk = dt.shape[3], delta.shape[2], rows.shape[2]
    for t0 in range(0, length, chunk):
        steps = min(chunk, length - t0)
        for c in range(cw):
            d = j * cw + c
            for s in range(steps):
                raw = delta[bi, d, t0 + s] + bias[d]
                v = _softplus(raw) if softplus else raw
                rows[0, c, s] = v
                rows[1, c, s] = v * u[bi, d, t0 + s]
        _to_block(rows[0], dt[bi, j, t0:], steps)
        _to_block(rows[1], x[bi, j, t0:], steps)


@njit(**JIT_OPTIONS)
def _scan_chunk(bi, j, t0, t1, dt, x, A, B, C, gb, gc, b_var, c_var, resets, h, Bt, Ct, ys, hs, decays, store):
    """Advances h: (n, cw) of task (bi, j) over steps t0 <= t < t1, writing ys[t - t0] = <C_t, h_t>: (cw,).

    With `store`, also keeps hs[t - t0 + 1] = h_t (hs[0] = the state before t0) and decays[t - t0] = exp(dt_t A):
    (t1 - t0 + 1, n, cw) and (t1 - t0, n, cw). A is blocked: (d / cw, n, cw). `resets`: (b, l) uint8, or (1, 0)
    for none; where set, the decay is 0.
    """
    n, cw = h.shape
    if store:
        hs[0] = h
    for t in range(t0, t1):
        if b_var:
            _load_step(B, bi, gb, t, Bt)
        if c_var:
            _load_step(C, bi, gc, t, Ct)
        acc = ys[t - t0]
        acc[:] = 0
        keep = resets.shape[1] == 0 or resets[bi, t] == 0
        for k in range(n):
            for c in range(cw):
                a = _exp(dt[bi, j, t, c] * A[j, k, c]) if keep else dt.dtype.type(0)
                hk = a * h[k, c] + x[bi, j, t, c] * Bt[k, c]
                h[k, c] = hk
                acc[c] += hk * Ct[k, c]
                if store:
                    decays[t - t0, k, c] = a
                    hs[t - t0 + 1, k, c] = hk


@with_torch_threads
@njit(parallel=True, **JIT_OPTIONS)
def _forward_kernel(
    u, delta, A, B, C, D, z, bias, softplus, has_z, b_var, c_var, chunk, resets, h0, dt, x, out, last, checkpoints,
    save,
):  # fmt: skip
    """h0: (b, d, n) the initial state; out: (b, d, l) gated outputs; last: (b, d, n); dt, x: (b, d / cw, l, cw)
    filled for the backward; with `save`, checkpoints[bi, j, i]: (n, cw) = the state before chunk i."""
    batch, blocks, length, cw = dt.shape
    for task in prange(batch * blocks):
        bi, j, c0, gb, gc, Bt, Ct = _task(task, dt, B, C, b_var, c_var)
        rows = np.empty((2, cw, chunk), dt.dtype)
        _prepare(bi, j, u, delta, bias, softplus, dt, x, rows)
        h = h0[bi, c0 : c0 + cw].T.copy()
        ys = np.empty((chunk, cw), dt.dtype)
        unused = np.empty((1, 1, 1), dt.dtype)
        for i in range((length + chunk - 1) // chunk):
            if save:
                checkpoints[bi, j, i] = h
            t0 = i * chunk
            t1 = min(t0 + chunk, length)
            _scan_chunk(
                bi, j, t0, t1, dt, x, A, B, C, gb, gc, b_var, c_var, resets, h, Bt, Ct, ys, unused, unused, False
            )
            _to_rows(ys, rows[0], t1 - t0)
            for c in range(cw):  # along time, as the (b, d, l) arrays lie
                d = c0 + c
                for s in range(t1 - t0):
                    v = rows[0, c, s] + D[d] * u[bi, d, t0 + s]
                    if has_z:
                        v *= z[bi, d, t0 + s] * _sigmoid(z[bi, d, t0 + s])
                    out[bi, d, t0 + s] = v
        last[bi, c0 : c0 + cw] = h.T


@with_torch_threads
@njit(parallel=True, **JIT_OPTIONS)
def _backward_kernel(
    u, delta, A, B, C, D, z, bias, softplus, has_z, b_var, c_var, chunk, resets, dt, x, checkpoints, dout, dlast,
    du, ddelta, dz, dA, dB, dC, dD, dbias, dh0,
):  # fmt: skip
    """Reverse pass, chunk by chunk from the checkpoints. Fills du, ddelta, dz: (b, d, l), dh0: (b, d, n) and the
    partials dA: (b, d, n), dD, dbias: (b, d) per batch row, dB / dC: (b, d / cw, l, n) per block when variable,
    (b, 1, d, n) when time-invariant. Each task writes only its own rows: no races.
    """
    batch, blocks, length, cw = dt.shape
    for task in prange(batch * blocks):
        bi, j, c0, gb, gc, Bt, Ct = _task(task, dt, B, C, b_var, c_var)
        n = Bt.shape[0]
        h, g = np.empty((n, cw), dt.dtype), dlast[bi, c0 : c0 + cw].T.copy()
        dA_acc, dB_acc, dC_acc = np.zeros((n, cw), dt.dtype), np.zeros((n, cw), dt.dtype), np.zeros((n, cw), dt.dtype)
        dD_acc, dbias_acc = np.zeros(cw, dt.dtype), np.zeros(cw, dt.dtype)
        hs, decays = np.empty((chunk + 1, n, cw), dt.dtype), np.empty((chunk, n, cw), dt.dtype)
        scratch, rows = np.empty((4, chunk, cw), dt.dtype), np.empty((4, cw, chunk), dt.dtype)
        ys, dys, dxs, ddts = scratch[0], scratch[1], scratch[2], scratch[3]
        for i in range((length + chunk - 1) // chunk - 1, -1, -1):
            t0 = i * chunk
            t1 = min(t0 + chunk, length)
            h[:] = checkpoints[bi, j, i]
            _scan_chunk(bi, j, t0, t1, dt, x, A, B, C, gb, gc, b_var, c_var, resets, h, Bt, Ct, ys, hs, decays, True)
            steps = t1 - t0
            _to_rows(ys, rows[0], steps)
            for c in range(cw):  # through the gate and the D skip: dys = d<C_t, h_t> (rows[1]), dz, dD
                d, dD_sum = c0 + c, dt.dtype.type(0)
                for s in range(steps):
                    grad, uu = dout[bi, d, t0 + s], u[bi, d, t0 + s]
                    if has_z:
                        zz = z[bi, d, t0 + s]
                        sg = _sigmoid(zz)
                        dz[bi, d, t0 + s] = grad * (rows[0, c, s] + D[d] * uu) * sg * (1 + zz * (1 - sg))
                        grad *= zz * sg
                    rows[1, c, s] = grad
                    dD_sum += grad * uu
                dD_acc[c] += dD_sum
            _to_block(rows[1], dys, steps)
            for s in range(t1 - t0 - 1, -1, -1):
                t = t0 + s
                if b_var:
                    _load_step(B, bi, gb, t, Bt)
                if c_var:
                    _load_step(C, bi, gc, t, Ct)
                dxs[s] = 0
                ddts[s] = 0
                for k in range(n):
                    sum_b, sum_c = dt.dtype.type(0), dt.dtype.type(0)
                    for c in range(cw):
                        gk = g[k, c] + dys[s, c] * Ct[k, c]
                        a = decays[s, k, c]
                        gah = gk * a * hs[s, k, c]
                        dA_acc[k, c] += gah * dt[bi, j, t, c]
                        ddts[s, c] += gah * A[j, k, c]
                        dxs[s, c] += gk * Bt[k, c]
                        grad_b, grad_c = gk * x[bi, j, t, c], dys[s, c] * hs[s + 1, k, c]
                        if b_var:
                            sum_b += grad_b
                        else:
                            dB_acc[k, c] += grad_b
                        if c_var:
                            sum_c += grad_c
                        else:
                            dC_acc[k, c] += grad_c
                        g[k, c] = gk * a
                    if b_var:
                        dB[bi, j, t, k] = sum_b
                    if c_var:
                        dC[bi, j, t, k] = sum_c
            _to_rows(dxs, rows[0], steps)
            _to_rows(ddts, rows[2], steps)
            _to_rows(dt[bi, j, t0:], rows[3], steps)
            for c in range(cw):  # through x = dt * u and dt = softplus(delta + bias), along time
                d, dbias_sum = c0 + c, dt.dtype.type(0)
                for s in range(steps):
                    t = t0 + s
                    du[bi, d, t] = rows[1, c, s] * D[d] + rows[3, c, s] * rows[0, c, s]
                    grad = rows[2, c, s] + rows[0, c, s] * u[bi, d, t]
                    raw = delta[bi, d, t] + bias[d]
                    if softplus and raw <= 20:
                        grad *= _sigmoid(raw)
                    ddelta[bi, d, t] = grad
                    dbias_sum += grad
                dbias_acc[c] += dbias_sum
        dA[bi, c0 : c0 + cw] = dA_acc.T
        dh0[bi, c0 : c0 + cw] = g.T
        if not b_var:
            dB[bi, 0, c0 : c0 + cw] = dB_acc.T
        if not c_var:
            dC[bi, 0, c0 : c0 + cw] = dC_acc.T
        dD[bi, c0 : c0 + cw] = dD_acc
        dbias[bi, c0 : c0 + cw] = dbias_acc


# ---------------------------------------------------------------------------------------------------------------
# torch side: layouts in and out, the autograd Function, the public entry point.
# ---------------------------------------------------------------------------------------------------------------

_MAX_BLOCK = 32  # channels per task: an (n, 32) float32 state is 2 KiB at n = 16


def _block_size(batch: int, dim: int, groups: list[int]) -> int:
    """Channels per block: a divisor of every variable B / C's group width (`groups`: their group counts), at most
    `_MAX_BLOCK`, the largest that still gives each thread two tasks."""
    base = math.gcd(dim, *(dim // g for g in groups))
    sizes = [s for s in range(min(base, _MAX_BLOCK), 0, -1) if base % s == 0]
    return next((s for s in sizes if batch * (dim // s) >= 2 * torch.get_num_threads()), sizes[-1])


def _kernel_inputs(u, delta, A, B, C, D, z, delta_bias, cw: int) -> tuple[Tensor, ...]:
    """Contiguous work-dtype tensors in kernel order: A blocked (d / cw, n, cw), B / C as (b, g, l, n) when variable
    and (1, 1, d, n) when not; zeros stand for an absent D / delta_bias, a (1, 1, 1) tensor for z."""
    work = working_dtype(u.dtype)

    def bc(M: Tensor) -> Tensor:
        M = M.detach().to(work)
        return (
            M[None, None].contiguous()
            if M.dim() == 2
            else (M[:, None] if M.dim() == 3 else M).transpose(-1, -2).contiguous()
        )

    dim, n = A.shape
    A_blocked = A.detach().to(work).reshape(dim // cw, cw, n).transpose(1, 2).contiguous()
    optional = _work(D, work, dim), _work(z, work, 1, 1, 1), _work(delta_bias, work, dim)
    return _work(u, work), _work(delta, work), A_blocked, bc(B), bc(C), *optional


def _work(t: Tensor | None, work: torch.dtype, *absent: int) -> Tensor:
    """t detached, contiguous, in `work`; zeros of shape `absent` for an absent input (the kernels take arrays)."""
    return torch.zeros(absent, dtype=work) if t is None else t.detach().to(work).contiguous()


def _bc_grad(partial: Tensor, like: Tensor, dtype: torch.dtype) -> Tensor:
    """dB or dC from the kernel's partials, (b, 1, d, n) when time-invariant or (b, d / cw, l, n) per block when
    variable (blocks in channel order, the same number per group), summed to the shape of `like`, contiguous."""
    if like.dim() == 2:
        return partial.sum((0, 1)).to(dtype)
    batch, blocks, length, n = partial.shape
    groups = 1 if like.dim() == 3 else like.shape[1]
    grad = partial.view(batch, groups, blocks // groups, length, n).sum(2).transpose(-1, -2)  # (b, g, n, l)
    return (grad[:, 0] if like.dim() == 3 else grad).to(dtype).contiguous()


def _resets(resets: Tensor | None) -> Tensor:
    """resets (b, l) bool as the kernels read them: uint8, or an empty (1, 0) array for none."""
    return torch.zeros(1, 0, dtype=torch.uint8) if resets is None else resets.to(torch.uint8).contiguous()


def _np(*tensors: Tensor) -> list[np.ndarray]:
    return [t.numpy() for t in tensors]


# The kernels as torch.library custom ops with fake (shape-only) implementations: torch.compile and AOTAutograd see
# one op each way (fullgraph=True too) instead of a graph break around numba's numpy calls. The channel block cw is
# chosen inside (from the thread count) and returned as a one-element tensor for the backward; the blocked buffers
# travel under shapes that do not depend on it: dt, x (b, d / cw, l, cw) as (b, d, l), the checkpoints
# (b, d / cw, chunks, n, cw) as (b, d, chunks, n).


def _saved_shape(u: Tensor, n: int, save: bool) -> tuple[int, ...]:
    """The checkpoints' shape as the ops pass them: (b, d, chunks, n), (1, 1, 1, 1) without `save`."""
    (batch, dim, length), chunk = u.shape, max(64, n)
    return (batch, dim, -(-length // chunk), n) if save else (1, 1, 1, 1)


def _blocked(t: Tensor, cw: int) -> Tensor:
    """A (b, d, ...) buffer seen in its kernel layout (b, d / cw, ..., cw)."""
    return t.view(t.shape[0], t.shape[1] // cw, *t.shape[2:], cw)


@torch.library.custom_op("ssmkit::selective_scan_numba", mutates_args=())
def _scan(
    u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None, z: Tensor | None,
    delta_bias: Tensor | None, delta_softplus: bool, initial_state: Tensor | None, resets: Tensor | None, save: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:  # fmt: skip
    """(out, last state, dt, x, checkpoints) in the working dtype, and cw (1,) int64."""
    (batch, dim, _), n = u.shape, A.shape[1]
    cw = _block_size(batch, dim, [M.shape[1] if M.dim() == 4 else 1 for M in (B, C) if M.dim() > 2])
    ins = _kernel_inputs(u, delta, A, B, C, D, z, delta_bias, cw)
    work = ins[0]
    dt, x, checkpoints = torch.empty_like(work), torch.empty_like(work), work.new_empty(_saved_shape(u, n, save))
    out, last = torch.empty_like(work), work.new_empty(batch, dim, n)
    h0 = _work(initial_state, work.dtype, batch, dim, n)
    flags = (delta_softplus, z is not None, B.dim() > 2, C.dim() > 2, max(64, n))
    saved = _blocked(checkpoints, cw) if save else checkpoints.view(1, 1, 1, 1, 1)
    buffers = _np(_resets(resets), h0, _blocked(dt, cw), _blocked(x, cw), out, last, saved)
    _forward_kernel(*_np(*ins), *flags, *buffers, save)
    return out, last, dt, x, checkpoints, torch.tensor([cw])


@_scan.register_fake
def _(u, delta, A, B, C, D, z, delta_bias, delta_softplus, initial_state, resets, save):
    (batch, dim, _), n, work = u.shape, A.shape[1], working_dtype(u.dtype)
    new = lambda shape: u.new_empty(shape, dtype=work)  # noqa: E731
    cw = u.new_empty((1,), dtype=torch.int64)
    return new(u.shape), new((batch, dim, n)), new(u.shape), new(u.shape), new(_saved_shape(u, n, save)), cw


@torch.library.custom_op("ssmkit::selective_scan_numba_backward", mutates_args=())
def _scan_backward(
    u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None, z: Tensor | None,
    delta_bias: Tensor | None, delta_softplus: bool, resets: Tensor | None, dt: Tensor, x: Tensor,
    checkpoints: Tensor, cw: Tensor, dout: Tensor, dlast: Tensor,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:  # fmt: skip
    """(du, ddelta, dz, dh0, dA, dB, dC, dD, dbias) in the working dtype: the partials `_backward_kernel` fills,
    summed here (dA, dD, dbias over batch rows; dB, dC as `_bc_grad` does, in B's and C's layouts)."""
    block = int(cw)
    ins = _kernel_inputs(u, delta, A, B, C, D, z, delta_bias, block)
    work = dt.dtype
    grads = [torch.empty(shape, dtype=work) for shape in _partial_shapes(u, A, B, C, block)]
    flags = (delta_softplus, z is not None, B.dim() > 2, C.dim() > 2, max(64, A.shape[1]))
    saved = _blocked(checkpoints, block) if checkpoints.numel() > 1 else checkpoints.view(1, 1, 1, 1, 1)
    _backward_kernel(
        *_np(*ins), *flags, *_np(_resets(resets), _blocked(dt, block), _blocked(x, block), saved),
        *_np(dout.to(work).contiguous(), dlast.to(work).contiguous(), *grads),
    )  # fmt: skip
    du, ddelta, dz, dA, dB, dC, dD, dbias, dh0 = grads
    return du, ddelta, dz, dh0, dA.sum(0), _bc_grad(dB, B, work), _bc_grad(dC, C, work), dD.sum(0), dbias.sum(0)


@_scan_backward.register_fake
def _(u, delta, A, B, C, D, z, delta_bias, delta_softplus, resets, dt, x, checkpoints, cw, dout, dlast):
    (batch, dim, _), n = u.shape, A.shape[1]
    new = lambda shape: dt.new_empty(shape)  # noqa: E731
    return (new(u.shape), new(u.shape), new(u.shape), new((batch, dim, n)), new((dim, n)), new(B.shape),
            new(C.shape), new((dim,)), new((dim,)))  # fmt: skip


def _partial_shapes(u: Tensor, A: Tensor, B: Tensor, C: Tensor, cw: int) -> list[tuple[int, ...]]:
    """Shapes of du, ddelta, dz, dA, dB, dC, dD, dbias, dh0 as `_backward_kernel` fills them."""
    (batch, dim, length), n = u.shape, A.shape[1]
    bc = [(batch, dim // cw, length, n) if M.dim() > 2 else (batch, 1, dim, n) for M in (B, C)]
    return [u.shape, u.shape, u.shape, (batch, dim, n), *bc, (batch, dim), (batch, dim), (batch, dim, n)]


def _save(ctx, inputs: tuple, output: tuple) -> None:
    u, delta, A, B, C, D, z, delta_bias, delta_softplus, initial_state, resets, _ = inputs
    ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, initial_state, resets, *output[2:])
    ctx.delta_softplus = delta_softplus


def _gradients(ctx, dout: Tensor, dlast: Tensor, *unused: Tensor) -> tuple:
    u, delta, A, B, C, D, z, delta_bias, initial_state, resets, dt, x, checkpoints, cw = ctx.saved_tensors
    du, ddelta, dz, dh0, dA, dB, dC, dD, dbias = _scan_backward(
        u, delta, A, B, C, D, z, delta_bias, ctx.delta_softplus, resets, dt, x, checkpoints, cw, dout, dlast
    )
    cast = lambda grad, like: None if like is None else grad.to(like.dtype)  # noqa: E731
    return (cast(du, u), cast(ddelta, delta), cast(dA, A), cast(dB, B), cast(dC, C), cast(dD, D), cast(dz, z),
            cast(dbias, delta_bias), None, cast(dh0, initial_state), None, None)  # fmt: skip


_scan.register_autograd(_gradients, setup_context=_save)


@selective_scan_backend
def selective_scan_numba(u, delta, A, B, C, D, z, delta_bias, delta_softplus, initial_state, resets):
    """The fused CPU selective scan; same signature, shapes and dtypes as `ssmkit.ops.selective_scan_ref`."""
    inputs = (u, delta, A, B, C, D, z, delta_bias, initial_state)
    save = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in inputs)
    out, last, *_ = _scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus, initial_state, resets, save)
    return out.to(u.dtype), last


# ---------------------------------------------------------------------------------------------------------------
# One decoding step (`ssmkit.ops.selective_state_update_ref`): a single fused loop, vectorised over the state.
# ---------------------------------------------------------------------------------------------------------------


@njit(**JIT_OPTIONS)
def _state_update_kernel(state, x, dt, A, B, C, D, z, bias, softplus, has_z, out):
    """state: (b, d, n) updated in place; x, dt, z, out: (b, d); A: (d, n); B, C: (b, n); D, bias: (d,)."""
    batch, dim, n = state.shape
    for bi in range(batch):
        for di in range(dim):
            step = dt[bi, di] + bias[di]
            if softplus:
                step = _softplus(step)
            xb, acc = step * x[bi, di], state.dtype.type(0)
            for k in range(n):
                h = _exp(step * A[di, k]) * state[bi, di, k] + xb * B[bi, k]
                state[bi, di, k] = h
                acc += h * C[bi, k]
            y = acc + D[di] * x[bi, di]
            if has_z:
                y *= z[bi, di] * _sigmoid(z[bi, di])
            out[bi, di] = y


def _state_update_now(
    state: Tensor, x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None, z: Tensor | None,
    dt_bias: Tensor | None, dt_softplus: bool,
) -> Tensor:  # fmt: skip
    """One step on a float32 / float64 contiguous `state`, updated in place; y in the state's dtype."""
    work, dim = state.dtype, state.shape[1]
    out = torch.empty(x.shape, dtype=work)
    optional = _work(D, work, dim), _work(z, work, 1, 1), _work(dt_bias, work, dim)
    ins = _np(*(_work(t, work) for t in (x, dt, A, B, C)), *optional)
    _state_update_kernel(state.detach().numpy(), *ins, dt_softplus, z is not None, out.numpy())
    return out


# the same step as a custom op for torch.compile; eager decoding calls `_state_update_now` directly (the custom op's
# dispatch costs about as much as the kernel at d_model 256)
_state_update = torch.library.custom_op("ssmkit::selective_state_update_numba", mutates_args=("state",))(
    _state_update_now
)


@_state_update.register_fake
def _(state, x, dt, A, B, C, D, z, dt_bias, dt_softplus):
    return x.new_empty(x.shape, dtype=state.dtype)


@selective_state_update_backend
def selective_state_update_numba(state, x, dt, A, B, C, D, z, dt_bias, dt_softplus):
    """The fused CPU decoding step; same signature and semantics as `ssmkit.ops.selective_state_update_ref`:
    computes in `state`'s dtype (float32 for other dtypes) and writes the new state into `state`."""
    if state.dtype not in (torch.float32, torch.float64) or not state.is_contiguous():
        work_state = state.float().contiguous()
        y = selective_state_update_numba(work_state, x, dt, A, B, C, D, z, dt_bias, dt_softplus)
        state.copy_(work_state)
        return y
    step = _state_update if torch.compiler.is_compiling() else _state_update_now
    return step(state, x, dt, A, B, C, D, z, dt_bias, dt_softplus).to(x.dtype)
