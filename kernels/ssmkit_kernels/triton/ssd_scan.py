"""The SSD scan (Mamba-2) as a fused chunked Triton kernel, forward and backward.

Same signature and semantics as `ssmkit.ops.ssd_scan_ref` (mamba_ssm's `mamba_chunk_scan_combined`):

    H_t = exp(dt_t A_h) H_{t-1} + dt_t x_t B_t^T,    y_t = H_t C_t + D_h x_t,    y_t *= silu(z_t)

Shapes: x, z (b, l, h, p); dt (b, l, h); A (h,); B, C (b, l, g, n); D (h, p) or (h,); dt_bias (h,);
initial_states (b, h, p, n). Returns y (b, l, h, p) [, final_states (b, h, p, n)].

Blocking: one program per (batch row, head) carries the (p, n) state in float32 (float64 for double inputs) and
walks l in chunks of BLOCK_T steps, each chunk in matmuls (`tl.dot`, IEEE float32): with cs the within-chunk
cumulative sum of dt A,

    y     = ((C B^T) * exp(cs_t - cs_s) [s <= t]) (dt x) + exp(cs) (C H_in^T)
    H_out = exp(cs_T) H_in + (exp(cs_T - cs) dt x)^T B.

With `resets` (b, l), seg_t counts the chunk's resets up to t and every decay that reaches back past one is 0:
exp(cs_t - cs_s) unless seg_t = seg_s, exp(cs_t) unless seg_t = 0, exp(cs_T - cs_s) unless seg_s = seg_T, exp(cs_T)
unless seg_T = 0. The masked decays are constants, so the backward's formulas hold with them in place.

The forward saves the state entering each chunk (b, h, chunks, p, n). The backward walks the chunks last to
first with the state's adjoint, reusing each chunk's saved state, and returns the gradients of x, dt, A, B, C
and the initial state (dB, dC per head, summed over a group's heads in torch). dt_bias / softplus before the
kernel and the D skip and silu(z) gate after it are torch ops (`ssmkit_kernels.scan_api.ssd_scan_backend`, the
same for every SSD backend; autograd differentiates them).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ssmkit_kernels.scan_api import ssd_scan_backend
from ssmkit_kernels.triton import INTERPRET, on_device, warp_configs

Tensor = torch.Tensor

MAX_STATE_TILE = 8192  # padded p·n: the backward's tiles must fit in shared memory (see `ssd_scan_triton`)


@triton.jit
def _mm(a, b):
    return tl.dot(a, b, input_precision="ieee")


@triton.jit
def _load_chunk(
    x_ptr, dt_ptr, B_ptr, C_ptr, A, row, head, t, heads, groups, length, p, n, hpg, BP: tl.constexpr, BN: tl.constexpr
):
    """x (T, BP), dt (T,), B and C (T, BN) of one chunk (zeros past `length`), and cs = cumsum(dt A) (T,)."""
    t_ok = t < length
    ip, jn = tl.arange(0, BP), tl.arange(0, BN)
    rows = row * length + t
    x = tl.load(x_ptr + ((rows * heads + head) * p)[:, None] + ip[None, :], t_ok[:, None] & (ip < p)[None, :], 0.0)
    dt = tl.load(dt_ptr + rows * heads + head, t_ok, 0.0)
    bc_offs = ((rows * groups + head // hpg) * n)[:, None] + jn[None, :]
    bc_mask = t_ok[:, None] & (jn < n)[None, :]
    B = tl.load(B_ptr + bc_offs, bc_mask, 0.0).to(A.dtype)
    C = tl.load(C_ptr + bc_offs, bc_mask, 0.0).to(A.dtype)
    return x.to(A.dtype), dt.to(A.dtype), B, C, tl.cumsum(dt.to(A.dtype) * A, 0)


@triton.jit
def _decays(cs, resets_ptr, row, t, length, HAS_RESETS: tl.constexpr, BLOCK_T: tl.constexpr):
    """The chunk's decays: within, exp(cs_t - cs_s) for s <= t, else 0 (T, T); into it, exp(cs_t) (T,); out of it,
    exp(cs_T - cs_s) (T,); across it, exp(cs_T); each 0 where it reaches back past a reset (see the module doc)."""
    i = tl.arange(0, BLOCK_T)
    cs_end = tl.sum(tl.where(i == BLOCK_T - 1, cs, 0.0), 0)
    keep = i[:, None] >= i[None, :]
    decay_in, decay_out, across = tl.exp(cs), tl.exp(cs_end - cs), tl.exp(cs_end)
    if HAS_RESETS:
        seg = tl.cumsum(tl.load(resets_ptr + row * length + t, t < length, 0).to(tl.int32), 0)
        seg_end = tl.max(seg, 0)
        keep = keep & (seg[:, None] == seg[None, :])
        decay_in = tl.where(seg == 0, decay_in, 0.0)
        decay_out = tl.where(seg == seg_end, decay_out, 0.0)
        across = tl.where(seg_end == 0, across, 0.0)
    within = tl.exp(tl.where(keep, cs[:, None] - cs[None, :], float("-inf")))
    return within, decay_in, decay_out, across


@triton.jit
def _state_offsets(row, head, c, chunks, heads, p, n, BP: tl.constexpr, BN: tl.constexpr):
    ip, jn = tl.arange(0, BP), tl.arange(0, BN)
    offs = (((row * heads + head) * chunks + c) * p + ip[:, None]) * n + jn[None, :]
    return offs, (ip < p)[:, None] & (jn < n)[None, :]


@triton.autotune(configs=warp_configs(), key=["BLOCK_T", "BP", "BN"])
@triton.jit
def _ssd_fwd(
    x_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, init_ptr, resets_ptr, y_ptr, final_ptr, states_ptr,
    length, heads, groups, p, n, hpg,
    HAS_INIT: tl.constexpr, HAS_RESETS: tl.constexpr, SAVE_STATES: tl.constexpr,
    BLOCK_T: tl.constexpr, BP: tl.constexpr, BN: tl.constexpr,
):  # fmt: skip
    row, head = tl.program_id(0), tl.program_id(1)
    A = tl.load(A_ptr + head)
    ip = tl.arange(0, BP)
    chunks = tl.cdiv(length, BLOCK_T)
    state_offs, state_mask = _state_offsets(row, head, 0, 1, heads, p, n, BP, BN)
    S = tl.zeros((BP, BN), A.dtype)
    if HAS_INIT:
        S = tl.load(init_ptr + state_offs, state_mask, 0.0).to(A.dtype)
    for c in range(chunks):
        if SAVE_STATES:
            offs, mask = _state_offsets(row, head, c, chunks, heads, p, n, BP, BN)
            tl.store(states_ptr + offs, S, mask)
        t = c * BLOCK_T + tl.arange(0, BLOCK_T)
        x, dt, B, C, cs = _load_chunk(
            x_ptr, dt_ptr, B_ptr, C_ptr, A, row, head, t, heads, groups, length, p, n, hpg, BP, BN
        )
        xdt = x * dt[:, None]
        within, decay_in, decay_out, across = _decays(cs, resets_ptr, row, t, length, HAS_RESETS, BLOCK_T)
        scores = _mm(C, tl.trans(B)) * within
        y = _mm(scores, xdt) + decay_in[:, None] * _mm(C, tl.trans(S))
        y_offs = (((row * length + t) * heads + head) * p)[:, None] + ip[None, :]
        tl.store(y_ptr + y_offs, y, (t < length)[:, None] & (ip < p)[None, :])
        S = across * S + _mm(tl.trans(xdt * decay_out[:, None]), B)
    tl.store(final_ptr + state_offs, S, state_mask)


@triton.autotune(configs=warp_configs(), key=["BLOCK_T", "BP", "BN"])
@triton.jit
def _ssd_bwd(
    x_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, resets_ptr, states_ptr, dy_ptr, dfinal_ptr,
    dx_ptr, ddt_ptr, dA_ptr, dB_ptr, dC_ptr, dinit_ptr,
    length, heads, groups, p, n, hpg,
    HAS_RESETS: tl.constexpr, BLOCK_T: tl.constexpr, BP: tl.constexpr, BN: tl.constexpr,
):  # fmt: skip
    row, head = tl.program_id(0), tl.program_id(1)
    A = tl.load(A_ptr + head)
    ip, jn, i = tl.arange(0, BP), tl.arange(0, BN), tl.arange(0, BLOCK_T)
    chunks = tl.cdiv(length, BLOCK_T)
    state_offs, state_mask = _state_offsets(row, head, 0, 1, heads, p, n, BP, BN)
    dS = tl.load(dfinal_ptr + state_offs, state_mask, 0.0).to(A.dtype)
    dA = tl.zeros((BLOCK_T,), A.dtype)
    for k in range(chunks):
        c = chunks - 1 - k
        t = c * BLOCK_T + i
        x, dt, B, C, cs = _load_chunk(
            x_ptr, dt_ptr, B_ptr, C_ptr, A, row, head, t, heads, groups, length, p, n, hpg, BP, BN
        )
        offs, mask = _state_offsets(row, head, c, chunks, heads, p, n, BP, BN)
        S = tl.load(states_ptr + offs, mask, 0.0)
        xp_offs = (((row * length + t) * heads + head) * p)[:, None] + ip[None, :]
        xp_mask = (t < length)[:, None] & (ip < p)[None, :]
        dy = tl.load(dy_ptr + xp_offs, xp_mask, 0.0).to(A.dtype)
        xdt = x * dt[:, None]
        L, decay_in, decay_out, across = _decays(cs, resets_ptr, row, t, length, HAS_RESETS, BLOCK_T)
        CB_L = _mm(C, tl.trans(B)) * L  # (t, s)
        dyx = _mm(dy, tl.trans(xdt))  # (t, s): dy_t . (dt x)_s
        dyx_L = dyx * L
        B_dS = _mm(B, tl.trans(dS))  # (T, BP)
        dxdt = _mm(tl.trans(CB_L), dy) + decay_out[:, None] * B_dS
        dB = _mm(tl.trans(dyx_L), C) + decay_out[:, None] * _mm(xdt, dS)
        dC = _mm(dyx_L, B) + decay_in[:, None] * _mm(dy, S)
        # d(dt A)_r, the gradient of every cs_t with t >= r, summed so that no two large terms cancel: a pair
        # (t, s) of the within-chunk decay exp(cs_t - cs_s) counts only where s < r <= t, the state carried in
        # (exp(cs_t)) where r <= t, the state carried out (exp(cs_end - cs_s)) where s < r.
        W = CB_L * dyx
        straddle = tl.sum(tl.where(i[:, None] >= i[None, :], tl.cumsum(W, 1) - W, 0.0), 0)
        carried_in = tl.cumsum(decay_in * tl.sum(dy * _mm(C, tl.trans(S)), 1), 0, reverse=True)
        out = decay_out * tl.sum(xdt * B_dS, 1)
        d_dtA = straddle + carried_in + tl.cumsum(out, 0) - out + across * tl.sum(tl.sum(dS * S, 1), 0)
        dA += d_dtA * dt
        t_ok = t < length
        tl.store(dx_ptr + xp_offs, dxdt * dt[:, None], xp_mask)
        tl.store(ddt_ptr + (row * length + t) * heads + head, d_dtA * A + tl.sum(dxdt * x, 1), t_ok)
        bc_offs = (((row * length + t) * heads + head) * n)[:, None] + jn[None, :]
        bc_mask = t_ok[:, None] & (jn < n)[None, :]
        tl.store(dB_ptr + bc_offs, dB, bc_mask)
        tl.store(dC_ptr + bc_offs, dC, bc_mask)
        dS = across * dS + _mm(tl.trans(dy * decay_in[:, None]), C)
    tl.store(dinit_ptr + state_offs, dS, state_mask)
    tl.store(dA_ptr + row * heads + head, tl.sum(dA, 0))


class SSDScanFn(torch.autograd.Function):
    """(y, final_states) of the SSD recurrence without D and z; dt after bias / softplus; A in the working dtype."""

    @staticmethod
    def forward(ctx, x, dt, A, B, C, initial_states, chunk_size: int, resets) -> tuple[Tensor, Tensor]:
        x, dt, B, C = (t.contiguous() for t in (x, dt, B, C))
        resets = None if resets is None else resets.to(torch.int8).contiguous()
        b, length, heads, p = x.shape
        meta = _blocks(p, B.shape[-1], chunk_size)
        save = any(ctx.needs_input_grad)
        y = x.new_empty(x.shape, dtype=A.dtype)
        final = x.new_empty(b, heads, p, B.shape[-1], dtype=A.dtype)
        chunks = triton.cdiv(length, meta["BLOCK_T"])
        states = x.new_empty(b, heads, chunks, p, B.shape[-1], dtype=A.dtype) if save else None
        _ssd_fwd[(b, heads)](
            x, dt, A, B, C, initial_states, resets, y, final, states, *_sizes(x, B),
            HAS_INIT=initial_states is not None, HAS_RESETS=resets is not None, SAVE_STATES=save, **meta,
        )  # fmt: skip
        ctx.save_for_backward(x, dt, A, B, C, resets, states)
        ctx.has_init, ctx.chunk_size = initial_states is not None, chunk_size
        return y, final

    @staticmethod
    def backward(ctx, dy: Tensor, dfinal: Tensor):
        x, dt, A, B, C, resets, states = ctx.saved_tensors
        b, length, heads, p = x.shape
        groups, n = B.shape[2:]
        dx, ddt = torch.empty_like(x, dtype=A.dtype), torch.empty_like(dt, dtype=A.dtype)
        dB, dC = (x.new_empty(b, length, heads, n, dtype=A.dtype) for _ in range(2))  # per head
        dA, dinit = A.new_empty(b, heads), torch.empty_like(dfinal, dtype=A.dtype)
        _ssd_bwd[(b, heads)](
            x, dt, A, B, C, resets, states, dy.contiguous(), dfinal.contiguous(), dx, ddt, dA, dB, dC, dinit,
            *_sizes(x, B), HAS_RESETS=resets is not None, **_blocks(p, n, ctx.chunk_size),
        )  # fmt: skip
        dB, dC = (g.view(b, length, groups, heads // groups, n).sum(3).to(B.dtype) for g in (dB, dC))
        return dx.to(x.dtype), ddt.to(dt.dtype), dA.sum(0), dB, dC, dinit if ctx.has_init else None, None, None


@ssd_scan_backend
def ssd_scan_triton(x, dt, A, B, C, chunk_size, initial_states, resets):
    """The chunked Triton SSD scan; same signature, shapes and dtypes as `ssmkit.ops.ssd_scan_ref`.

    Chunks are `chunk_size` rounded up to a power of two within [16, 32], and 16 where p·n > 4096 or under the
    interpreter: the chunk length changes only rounding, not the result, and bounds the backward's shared memory
    (compiled for sm_90: 129 KiB at chunk 32, p = n = 64; 150 KiB at chunk 16, p = 64, n = 128; 225 KiB at
    chunk 64, p = n = 64, past an A100's 164). p·n (each rounded up to a power of two) may be at most 8192.
    """
    init = None if initial_states is None else initial_states.contiguous()
    with on_device(x):
        return SSDScanFn.apply(x, dt, A.contiguous(), B, C, init, chunk_size, resets)


def _blocks(p: int, n: int, chunk_size: int) -> dict[str, int]:
    """Tiles cover p and n whole (16 is the least size `tl.dot` takes); the chunk as in `ssd_scan_triton`."""
    bp, bn = max(16, triton.next_power_of_2(p)), max(16, triton.next_power_of_2(n))
    if bp * bn > MAX_STATE_TILE:
        raise ValueError(
            f"the Triton ssd_scan holds a head's (p, n) = ({p}, {n}) state in one tile, padded to ({bp}, {bn}); "
            f"p·n may be at most {MAX_STATE_TILE} after padding (use backend='chunked')"
        )
    small = INTERPRET or bp * bn > 4096
    return {"BLOCK_T": 16 if small else min(32, max(16, triton.next_power_of_2(chunk_size))), "BP": bp, "BN": bn}


def _sizes(x: Tensor, B: Tensor) -> tuple[int, ...]:
    """length, heads, groups, p, n, heads per group."""
    _, length, heads, p = x.shape
    return length, heads, B.shape[2], p, B.shape[3], heads // B.shape[2]
