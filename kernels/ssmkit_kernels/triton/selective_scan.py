"""Selective scan (Mamba-1's S6) and its one-step update as Triton kernels; the scan with a hand-written backward.

Same signatures and semantics as `ssmkit.ops.selective_scan_ref` / `selective_state_update_ref` (mamba_ssm's):

    h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t,    y_t = <C_t, h_t> + D u_t,    y_t *= silu(z_t)

with delta_t = softplus(delta_t + delta_bias) when `delta_softplus`. Shapes (b batch, d channels, l length,
n state, g groups): u, delta, z (b, d, l); A (d, n); B, C (d, n), (b, n, l) or (b, g, n, l); D, delta_bias (d,).

Blocking: one program per (batch row, block of BLOCK_D channels) holds the (BLOCK_D, n) state in float32 (float64
for double inputs), starting from `initial_state` (zeros without one), and walks l in chunks of BLOCK_L steps. In a
chunk, `tl.associative_scan` over the (BLOCK_D, BLOCK_N, BLOCK_L) tile of pairs (exp(delta A), delta B u) gives
every state from the one carried in; softplus, the D skip and the silu(z) gate are fused. The forward saves only the
state entering each chunk (b, d, ceil(l / BLOCK_L), n). The backward walks the chunks last to first: it recomputes
the chunk's states from the saved one, runs the reverse scan for the adjoint g_t = dy_t C_t + exp(delta_{t+1} A)
g_{t+1} (carried between chunks as g at the chunk's first step; the last one starts from d(last_state)), and forms
every gradient from h_t, h_{t-1} (the chunk's states moved one step with `tl.gather`) and g_t; the initial state's
is g_0 exp(delta_0 A). Where `resets` (b, l) is set the decay exp(delta_t A) is 0 (the state restarts before
step t), in the forward, in the recomputed states and in the adjoint's carry. Gradients summed over batch rows (dA,
dD, d delta_bias, time-invariant dB, dC) are written per row and summed in torch; variable dB, dC are summed over the
block's channels (a block never straddles a group) and added with `tl.atomic_add`.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ssmkit_kernels.scan_api import selective_scan_backend, selective_state_update_backend
from ssmkit_kernels.triton import INTERPRET, on_device, warp_configs
from ssmkit_kernels.triton.linear_scan import first_order

Tensor = torch.Tensor

BLOCK_L = 8 if INTERPRET else 32
TILE = 4096  # elements of one (BLOCK_D, BLOCK_N, BLOCK_L) tile on a GPU: BLOCK_D shrinks as n grows
INTERPRETER_BLOCK_D = 2  # channels per program under the interpreter, so tiny tests span several blocks


@triton.jit
def _softplus(x):
    """torch's softplus: linear above 20."""
    return tl.where(x <= 20.0, tl.log(1.0 + tl.exp(x)), x)


@triton.jit
def _step_size(delta_ptr, bias, offs, mask, SOFTPLUS: tl.constexpr):
    """delta as used by the scan (0 where masked) and the raw pre-softplus value."""
    raw = tl.load(delta_ptr + offs, mask, 0.0).to(bias.dtype) + bias
    dt = _softplus(raw) if SOFTPLUS else raw
    return tl.where(mask, dt, 0.0), raw


@triton.jit
def _bc_tile(ptr, row, d, k, t, mask, s_b, s_g, s_n, s_l, per_group, dtype):
    """B or C as a (BLOCK_D, BLOCK_N, BLOCK_L) tile from its (batch, group, state, time) strides."""
    offs = row * s_b + (d // per_group)[:, None, None] * s_g + k[None, :, None] * s_n + t[None, None, :] * s_l
    return tl.load(ptr + offs, mask, 0.0).to(dtype)


@triton.jit
def _decay(dt, A, resets_ptr, row, t, length, HAS_RESETS: tl.constexpr):
    """exp(dt A): (BLOCK_D, BLOCK_N, BLOCK_L) from dt (BLOCK_D, BLOCK_L) at steps t, 0 where the state restarts."""
    decay = tl.exp(dt[:, None, :] * A[:, :, None])
    if HAS_RESETS:
        restart = tl.load(resets_ptr + row * length + t, t < length, 0) != 0
        decay = tl.where(restart[None, None, :], 0.0, decay)
    return decay


@triton.jit
def _chunk(
    u_ptr, delta_ptr, B_ptr, C_ptr, resets_ptr, A, bias, row, d, k, t, dim, n, length,
    sBb, sBg, sBn, sBl, gB, sCb, sCg, sCn, sCl, gC, SOFTPLUS: tl.constexpr, HAS_RESETS: tl.constexpr,
):  # fmt: skip
    """One chunk's inputs: u, dt, raw delta (BLOCK_D, BLOCK_L); exp(dt A), dt B u, B, C (BLOCK_D, BLOCK_N, BLOCK_L).

    Steps past `length` get exp(dt A) = 1 and dt B u = 0, so the state passes through them unchanged.
    """
    offs, mask2 = _time_tile(row, d, t, dim, length)
    mask3 = mask2[:, None, :] & (k < n)[None, :, None]
    u = tl.load(u_ptr + offs, mask2, 0.0).to(A.dtype)
    dt, raw = _step_size(delta_ptr, bias[:, None], offs, mask2, SOFTPLUS)
    Bm = _bc_tile(B_ptr, row, d, k, t, mask3, sBb, sBg, sBn, sBl, gB, A.dtype)
    Cm = _bc_tile(C_ptr, row, d, k, t, mask3, sCb, sCg, sCn, sCl, gC, A.dtype)
    decay = _decay(dt, A, resets_ptr, row, t, length, HAS_RESETS)
    return u, dt, raw, decay, (dt * u)[:, None, :] * Bm, Bm, Cm


@triton.jit
def _block(
    A_ptr, D_ptr, bias_ptr, dim, n,
    HAS_D: tl.constexpr, HAS_BIAS: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    """This program's batch row, channels d (BLOCK_D,), states k (BLOCK_N,) and the (BLOCK_D, BLOCK_N) mask of those
    that exist; A on it in the working dtype, D and delta_bias (BLOCK_D,) (0 when absent)."""
    row = tl.program_id(0)
    d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    k = tl.arange(0, BLOCK_N)
    mask = (d < dim)[:, None] & (k < n)[None, :]
    A = tl.load(A_ptr + d[:, None] * n + k[None, :], mask, 0.0)
    zero = tl.zeros((BLOCK_D,), A.dtype)
    D = tl.load(D_ptr + d, d < dim, 0.0).to(A.dtype) if HAS_D else zero
    bias = tl.load(bias_ptr + d, d < dim, 0.0).to(A.dtype) if HAS_BIAS else zero
    return row, d, k, mask, A, D, bias


@triton.jit
def _time_tile(row, d, t, dim, length):
    """Offsets and mask of channels d (BLOCK_D,) at steps t (BLOCK_L,) in a (b, d, l) tensor: (BLOCK_D, BLOCK_L)."""
    return (row * dim + d[:, None]) * length + t[None, :], (d < dim)[:, None] & (t < length)[None, :]


@triton.autotune(configs=warp_configs(), key=["BLOCK_D", "BLOCK_N", "BLOCK_L"])
@triton.jit
def _selective_scan_fwd(
    u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, h0_ptr, resets_ptr, y_ptr, last_ptr, states_ptr,
    dim, n, length, sBb, sBg, sBn, sBl, gB, sCb, sCg, sCn, sCl, gC,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr, HAS_H0: tl.constexpr,
    HAS_RESETS: tl.constexpr, SAVE_STATES: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr,
):  # fmt: skip
    row, d, k, state_mask, A, D, bias = _block(A_ptr, D_ptr, bias_ptr, dim, n, HAS_D, HAS_BIAS, BLOCK_D, BLOCK_N)
    chunks = tl.cdiv(length, BLOCK_L)
    h = tl.zeros((BLOCK_D, BLOCK_N), A.dtype)
    if HAS_H0:
        h = tl.load(h0_ptr + (row * dim + d[:, None]) * n + k[None, :], state_mask, 0.0).to(A.dtype)
    for c in range(chunks):
        if SAVE_STATES:
            tl.store(states_ptr + ((row * dim + d[:, None]) * chunks + c) * n + k[None, :], h, state_mask)
        t = c * BLOCK_L + tl.arange(0, BLOCK_L)
        u, dt, raw, decay, x, Bm, Cm = _chunk(
            u_ptr, delta_ptr, B_ptr, C_ptr, resets_ptr, A, bias, row, d, k, t, dim, n, length,
            sBb, sBg, sBn, sBl, gB, sCb, sCg, sCn, sCl, gC, SOFTPLUS, HAS_RESETS,
        )  # fmt: skip
        decay, x = tl.associative_scan((decay, x), 2, first_order)
        hs = decay * h[:, :, None] + x
        y = tl.sum(hs * Cm, 1) + D[:, None] * u
        offs, mask = _time_tile(row, d, t, dim, length)
        if HAS_Z:
            z = tl.load(z_ptr + offs, mask, 0.0).to(A.dtype)
            y = y * z * tl.sigmoid(z)
        tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask)
        h = tl.sum(tl.where(tl.arange(0, BLOCK_L)[None, None, :] == BLOCK_L - 1, hs, 0.0), 2)
    tl.store(last_ptr + (row * dim + d[:, None]) * n + k[None, :], h, state_mask)


@triton.autotune(
    configs=warp_configs(),
    key=["BLOCK_D", "BLOCK_N", "BLOCK_L", "B_VARIES", "C_VARIES"],
    reset_to_zero=["dB_ptr", "dC_ptr"],
)
@triton.jit
def _selective_scan_bwd(
    u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, resets_ptr, states_ptr, dy_ptr, dlast_ptr,
    du_ptr, ddelta_ptr, dA_ptr, dB_ptr, dC_ptr, dD_ptr, dz_ptr, dbias_ptr, dh0_ptr,
    dim, n, length, sBb, sBg, sBn, sBl, gB, sCb, sCg, sCn, sCl, gC,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr, HAS_H0: tl.constexpr,
    HAS_RESETS: tl.constexpr, B_VARIES: tl.constexpr, C_VARIES: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr,
):  # fmt: skip
    row, d, k, state_mask, A, D, bias = _block(A_ptr, D_ptr, bias_ptr, dim, n, HAS_D, HAS_BIAS, BLOCK_D, BLOCK_N)
    state_offs = (row * dim + d[:, None]) * n + k[None, :]
    g = tl.load(dlast_ptr + state_offs, state_mask, 0.0).to(A.dtype)
    dA = tl.zeros((BLOCK_D, BLOCK_N), A.dtype)
    dB, dC = tl.zeros((BLOCK_D, BLOCK_N), A.dtype), tl.zeros((BLOCK_D, BLOCK_N), A.dtype)
    dD, dbias = tl.zeros((BLOCK_D,), A.dtype), tl.zeros((BLOCK_D,), A.dtype)
    dh0 = tl.zeros((BLOCK_D, BLOCK_N), A.dtype)  # g_0 exp(dt_0 A): the gradient of the initial state
    chunks = tl.cdiv(length, BLOCK_L)
    for i in range(chunks):
        c = chunks - 1 - i
        t = c * BLOCK_L + tl.arange(0, BLOCK_L)
        offs, mask = _time_tile(row, d, t, dim, length)
        u, dt, raw, decay, x, Bm, Cm = _chunk(
            u_ptr, delta_ptr, B_ptr, C_ptr, resets_ptr, A, bias, row, d, k, t, dim, n, length,
            sBb, sBg, sBn, sBl, gB, sCb, sCg, sCn, sCl, gC, SOFTPLUS, HAS_RESETS,
        )  # fmt: skip
        h0 = tl.load(states_ptr + ((row * dim + d[:, None]) * chunks + c) * n + k[None, :], state_mask, 0.0)
        cum_decay, cum_x = tl.associative_scan((decay, x), 2, first_order)
        hs = cum_decay * h0[:, :, None] + cum_x
        dy = tl.load(dy_ptr + offs, mask, 0.0).to(A.dtype)
        if HAS_Z:  # out = y silu(z): recompute y, then split dy into the gate's and the scan's parts
            z = tl.load(z_ptr + offs, mask, 0.0).to(A.dtype)
            gate = tl.sigmoid(z)
            y = tl.sum(hs * Cm, 1) + D[:, None] * u
            tl.store(dz_ptr + offs, (dy * y * gate * (1.0 + z * (1.0 - gate))).to(dz_ptr.dtype.element_ty), mask)
            dy = dy * z * gate
        # the adjoint: g_t = dy_t C_t + exp(dt_{t+1} A) g_{t+1}, steps past the end pass g through
        next_dt, _ = _step_size(
            delta_ptr, bias[:, None], offs + 1, (d < dim)[:, None] & (t + 1 < length)[None, :], SOFTPLUS
        )
        next_decay = _decay(next_dt, A, resets_ptr, row, t + 1, length, HAS_RESETS)
        carry_decay, carry_in = tl.associative_scan((next_decay, dy[:, None, :] * Cm), 2, first_order, reverse=True)
        g = carry_in + carry_decay * g[:, :, None]
        g_h_prev = g * decay * _previous(hs, h0, BLOCK_L)  # g_t exp(dt_t A) h_{t-1}
        dA += tl.sum(g_h_prev * dt[:, None, :], 2)
        g_B = tl.sum(g * Bm, 1)
        ddt = tl.sum(g_h_prev * A[:, :, None], 1) + u * g_B
        if SOFTPLUS:
            ddt = tl.where(raw <= 20.0, ddt * tl.sigmoid(raw), ddt)
        ddt = tl.where(mask, ddt, 0.0)
        dbias += tl.sum(ddt, 1)
        dD += tl.sum(dy * u, 1)
        tl.store(ddelta_ptr + offs, ddt.to(ddelta_ptr.dtype.element_ty), mask)
        tl.store(du_ptr + offs, (dy * D[:, None] + dt * g_B).to(du_ptr.dtype.element_ty), mask)
        g_x = g * (dt * u)[:, None, :]
        dC_t = dy[:, None, :] * hs
        if B_VARIES:
            _add_to_group(dB_ptr, tl.sum(g_x, 0), row, d, k, t, n, length, sBb, sBg, sBn, sBl, gB)
        else:
            dB += tl.sum(g_x, 2)
        if C_VARIES:
            _add_to_group(dC_ptr, tl.sum(dC_t, 0), row, d, k, t, n, length, sCb, sCg, sCn, sCl, gC)
        else:
            dC += tl.sum(dC_t, 2)
        if HAS_H0:  # the last chunk walked (the first in time) leaves it
            dh0 = tl.sum(tl.where(tl.arange(0, BLOCK_L)[None, None, :] == 0, g * decay, 0.0), 2)
        g = tl.sum(tl.where(tl.arange(0, BLOCK_L)[None, None, :] == 0, g, 0.0), 2)
    if HAS_H0:
        tl.store(dh0_ptr + state_offs, dh0, state_mask)
    tl.store(dA_ptr + state_offs, dA, state_mask)
    if not B_VARIES:
        tl.store(dB_ptr + state_offs, dB, state_mask)
    if not C_VARIES:
        tl.store(dC_ptr + state_offs, dC, state_mask)
    tl.store(dD_ptr + row * dim + d, dD, d < dim)
    tl.store(dbias_ptr + row * dim + d, dbias, d < dim)


@triton.jit
def _previous(hs, h0, BLOCK_L: tl.constexpr):
    """h_{t-1} for every step of a chunk: its states hs (BLOCK_D, BLOCK_N, BLOCK_L) moved one step, h0 first."""
    step = tl.broadcast_to(tl.arange(0, BLOCK_L)[None, None, :], hs.shape)
    return tl.where(step == 0, h0[:, :, None], tl.gather(hs, tl.maximum(step - 1, 0), 2))


@triton.jit
def _add_to_group(ptr, part, row, d, k, t, n, length, s_b, s_g, s_n, s_l, per_group):
    """Adds a block's (BLOCK_N, BLOCK_L) part to its group's slice of a variable dB or dC (strides of B or C)."""
    offs = row * s_b + (tl.program_id(1) * d.shape[0] // per_group) * s_g + k[:, None] * s_n + t[None, :] * s_l
    tl.atomic_add(ptr + offs, part, (k < n)[:, None] & (t < length)[None, :])


@triton.jit
def _selective_state_update(
    state_ptr, x_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, y_ptr,
    dim, n, s_b, s_d, s_n,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    row, d, k, mask, A, D, bias = _block(A_ptr, D_ptr, bias_ptr, dim, n, HAS_D, HAS_BIAS, BLOCK_D, BLOCK_N)
    offs = row * s_b + d[:, None] * s_d + k[None, :] * s_n
    x = tl.load(x_ptr + row * dim + d, d < dim, 0.0).to(A.dtype)
    dt, _ = _step_size(dt_ptr, bias, row * dim + d, d < dim, SOFTPLUS)
    Bv = tl.load(B_ptr + row * n + k, k < n, 0.0).to(A.dtype)
    Cv = tl.load(C_ptr + row * n + k, k < n, 0.0).to(A.dtype)
    h = tl.exp(dt[:, None] * A) * tl.load(state_ptr + offs, mask, 0.0) + (dt * x)[:, None] * Bv[None, :]
    tl.store(state_ptr + offs, h, mask)
    y = tl.sum(h * Cv[None, :], 1) + D * x
    if HAS_Z:
        z = tl.load(z_ptr + row * dim + d, d < dim, 0.0).to(A.dtype)
        y = y * z * tl.sigmoid(z)
    tl.store(y_ptr + row * dim + d, y.to(y_ptr.dtype.element_ty), d < dim)


@selective_state_update_backend
def selective_state_update_triton(state, x, dt, A, B, C, D, z, dt_bias, dt_softplus):
    """One decoding step, forward only: `state (b, d, n)` is updated in place (in its own dtype); returns y (b, d).

    One program per (batch row, BLOCK_D channels) loads its (BLOCK_D, n) state tile once. No autotune: a sweep
    would run the in-place update more than once.
    """
    b, dim, n = state.shape
    x, dt, B, C, D, z, dt_bias = (None if t is None else t.contiguous() for t in (x, dt, B, C, D, z, dt_bias))
    y = torch.empty_like(x)
    block_n = triton.next_power_of_2(n)
    block_d = INTERPRETER_BLOCK_D if INTERPRET else max(1, min(64, TILE // block_n))
    with on_device(state):
        _selective_state_update[(b, triton.cdiv(dim, block_d))](
            state, x, dt, A.to(state.dtype).contiguous(), B, C, D, z, dt_bias, y, dim, n, *state.stride(),
            **_flags(D, z, dt_bias, dt_softplus), BLOCK_D=block_d, BLOCK_N=block_n,
        )  # fmt: skip
    return y


class SelectiveScanFn(torch.autograd.Function):
    """(y, last_state) = selective_scan(...); A in the working dtype, the rest in any float dtype."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, delta_softplus: bool, h0, resets) -> tuple[Tensor, Tensor]:
        u, delta, z, h0 = (None if t is None else t.contiguous() for t in (u, delta, z, h0))
        resets = None if resets is None else resets.to(torch.int8).contiguous()
        (b, dim, length), n = u.shape, A.shape[1]
        (B4, sB, gB, _), (C4, sC, gC, _), meta = _plan(B, C, dim, n)
        save = any(ctx.needs_input_grad)
        y, last = torch.empty_like(u), u.new_empty(b, dim, n, dtype=A.dtype)
        states = u.new_empty(b, dim, triton.cdiv(length, meta["BLOCK_L"]), n, dtype=A.dtype) if save else None
        _selective_scan_fwd[_grid(b, dim)](
            u, delta, A, B4, C4, D, z, delta_bias, h0, resets, y, last, states, dim, n, length, *sB, gB, *sC, gC,
            **_flags(D, z, delta_bias, delta_softplus), HAS_H0=h0 is not None, HAS_RESETS=resets is not None,
            SAVE_STATES=save, **meta,
        )  # fmt: skip
        ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, h0, resets, states)
        ctx.delta_softplus = delta_softplus
        return y, last

    @staticmethod
    def backward(ctx, dy: Tensor, dlast: Tensor):
        u, delta, A, B, C, D, z, delta_bias, h0, resets, states = ctx.saved_tensors
        (b, dim, length), n = u.shape, A.shape[1]
        (B4, sB, gB, b_varies), (C4, sC, gC, c_varies), meta = _plan(B, C, dim, n)
        du, ddelta, dz = torch.empty_like(u), torch.empty_like(delta), None if z is None else torch.empty_like(z)
        per_row = A.new_empty(b, dim, n)
        dA, dD, dbias = torch.empty_like(per_row), A.new_empty(b, dim), A.new_empty(b, dim)
        dh0 = None if h0 is None else torch.empty_like(h0)
        dB, dC = (
            torch.zeros_like(M, dtype=A.dtype) if v else torch.empty_like(per_row)
            for M, v in ((B4, b_varies), (C4, c_varies))
        )
        _selective_scan_bwd[_grid(b, dim)](
            u, delta, A, B4, C4, D, z, delta_bias, resets, states, dy.contiguous(), dlast.contiguous(),
            du, ddelta, dA, dB, dC, dD, dz, dbias, dh0, dim, n, length, *sB, gB, *sC, gC,
            **_flags(D, z, delta_bias, ctx.delta_softplus), HAS_H0=h0 is not None, HAS_RESETS=resets is not None,
            B_VARIES=b_varies, C_VARIES=c_varies, **meta,
        )  # fmt: skip
        dB, dC = (_bc_grad(g, M, v) for g, M, v in ((dB, B, b_varies), (dC, C, c_varies)))
        dD, dbias = (None if p is None else g.sum(0).to(p.dtype) for g, p in ((dD, D), (dbias, delta_bias)))
        return du, ddelta, dA.sum(0), dB, dC, dD, dz, dbias, None, dh0, None


@selective_scan_backend
def selective_scan_triton(u, delta, A, B, C, D, z, delta_bias, delta_softplus, initial_state, resets):
    """The chunked Triton selective scan; same signature, shapes and dtypes as `ssmkit.ops.selective_scan_ref`."""
    D, delta_bias = (None if t is None else t.contiguous() for t in (D, delta_bias))
    with on_device(u):
        return SelectiveScanFn.apply(
            u, delta, A.contiguous(), B, C, D, z, delta_bias, delta_softplus, initial_state, resets
        )


def _bc_layout(M: Tensor, dim: int) -> tuple[Tensor, tuple[int, ...], int, bool]:
    """B or C as (tensor, (batch, group, state, time) strides, channels per group, varies in time).

    Time-invariant (d, n) reads as one group per channel with batch and time strides 0.
    """
    if M.dim() == 2:
        M = M.contiguous()
        return M, (0, M.stride(0), M.stride(1), 0), 1, False
    M = M.contiguous() if M.dim() == 4 else M.contiguous()[:, None]
    return M, M.stride(), dim // M.shape[1], True


def _bc_grad(grad: Tensor, M: Tensor, varies: bool) -> Tensor:
    """The gradient of B or C from the kernel's buffer: (b, g, n, l) when varying, per batch row otherwise."""
    return (grad.view(M.shape) if varies else grad.sum(0)).to(M.dtype)


def _plan(B: Tensor, C: Tensor, dim: int, n: int) -> tuple[tuple, tuple, dict[str, int]]:
    """B and C through `_bc_layout`, and the block sizes: BLOCK_N covers n; BLOCK_D divides the channels per group
    of each varying B, C (its channels' gradients are summed in registers before one atomic add per group)."""
    layouts = _bc_layout(B, dim), _bc_layout(C, dim)
    block_n = triton.next_power_of_2(n)
    block_d = INTERPRETER_BLOCK_D if INTERPRET else max(1, min(8, TILE // (block_n * BLOCK_L)))
    while any(varies and per_group % block_d for _, _, per_group, varies in layouts):
        block_d //= 2
    return *layouts, {"BLOCK_D": block_d, "BLOCK_N": block_n, "BLOCK_L": BLOCK_L}


def _grid(b: int, dim: int):
    return lambda meta: (b, triton.cdiv(dim, meta["BLOCK_D"]))


def _flags(D: Tensor | None, z: Tensor | None, delta_bias: Tensor | None, softplus: bool) -> dict[str, bool]:
    return {"HAS_D": D is not None, "HAS_Z": z is not None, "HAS_BIAS": delta_bias is not None, "SOFTPLUS": softplus}
