"""State-space duality (SSD) scan, the core of Mamba-2 (Dao & Gu, 2024, "Transformers are SSMs").

Per head h, with a scalar decay (A is scalar-times-identity) and B, C shared by the heads of a group:

    dt_t = softplus(dt_t + dt_bias)                        (if dt_softplus)
    H_t  = exp(dt_t * A_h) * H_{t-1} + dt_t * x_t B_t^T     H: (P, N) per head
    y_t  = H_t C_t + D_h * x_t,      then  y_t *= silu(z_t) if z is given

Argument order and shapes follow mamba_ssm's `mamba_chunk_scan_combined`:
    x, z (b, l, h, p)   dt (b, l, h)   A (h,)   B, C (b, l, g, n)   D (h, p) or (h,)   dt_bias (h,)
    initial_states (b, h, p, n);  resets (b, l) bool;  returns y (b, l, h, p) [, final_states (b, h, p, n)]

`resets` (ssmkit's name for what mamba_ssm passes as `seq_idx`): where set, the state restarts before step t (the
decay exp(dt_t A) is replaced by 0), so sequences packed end to end in one row never see each other.

Backends: `reference` is the sequential loop (the spec); `chunked` is the SSD algorithm: within chunks of
`chunk_size` positions a masked quadratic (attention-like) form, between chunks a recurrence on the states
(`linear_scan`, so its fast backend runs it). With resets, every decay that reaches back past a reset is masked to 0:
within a chunk between positions of different segments, into a chunk after its first reset, out of a chunk from
before its last reset, and across a chunk that holds one.
Computation is in float32 (float64 stays float64); y is cast back to x's dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ssmkit.ops.dispatch import example_inputs, resolve
from ssmkit.ops.linear_scan import linear_scan
from ssmkit.shapes import check_resets, check_shape
from ssmkit_kernels.scan_api import skip_and_gate, ssd_scan_backend, step_size, working_dtype

Tensor = torch.Tensor


def ssd_scan(
    x: Tensor,
    dt: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    chunk_size: int = 64,
    D: Tensor | None = None,
    z: Tensor | None = None,
    dt_bias: Tensor | None = None,
    initial_states: Tensor | None = None,
    dt_softplus: bool = False,
    return_final_states: bool = False,
    resets: Tensor | None = None,
    *,
    backend: str | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    """The SSD scan over `l`; see the module docstring for shapes. `backend` forces an implementation."""
    _check_args(x, dt, A, B, C, chunk_size, D, z, dt_bias, initial_states, resets)
    fn = resolve("ssd_scan", x.device.type, backend)
    return fn(x, dt, A, B, C, chunk_size, D, z, dt_bias, initial_states, dt_softplus, return_final_states, resets)


def ssd_scan_ref(
    x: Tensor,
    dt: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    chunk_size: int = 64,
    D: Tensor | None = None,
    z: Tensor | None = None,
    dt_bias: Tensor | None = None,
    initial_states: Tensor | None = None,
    dt_softplus: bool = False,
    return_final_states: bool = False,
    resets: Tensor | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    """The spec: a loop over time (chunk_size is unused)."""
    dtype_out, work = x.dtype if z is None else z.dtype, working_dtype(x.dtype)
    x, dt = x.to(work), step_size(dt, dt_bias, dt_softplus, work)
    b, _, h, p = x.shape
    B, C = (M.to(work).repeat_interleave(h // M.shape[2], dim=2) for M in (B, C))  # (b, l, h, n)
    state = _initial(initial_states, b, h, p, B.shape[-1], x)
    keep = (~resets if resets is not None else torch.ones(b, x.shape[1], dtype=torch.bool)).to(work).unbind(1)
    ys = []
    for t, (x_t, dt_t, B_t, C_t) in enumerate(zip(x.unbind(1), dt.unbind(1), B.unbind(1), C.unbind(1), strict=True)):
        decay = torch.exp(dt_t * A.to(work)) * keep[t][:, None]  # (b, h)
        state = decay[..., None, None] * state + (dt_t[..., None] * x_t)[..., None] * B_t[:, :, None, :]
        ys.append((state * C_t[:, :, None, :]).sum(-1))  # (b, h, p)
    y = skip_and_gate(torch.stack(ys, dim=1), x, D, z, channel_dim=2, dtype=dtype_out)
    return (y, state) if return_final_states else y


@ssd_scan_backend
def ssd_scan_chunked(x, dt, A, B, C, chunk_size, initial_states, resets):
    """The chunked SSD algorithm: memory O(b·l·h·(p + T) + b·(l/T)·h·p·n), time O(l·T) per head and channel.

    Heads are split as (g groups, k heads per group) so C B^T is computed once per group, not once per head.
    Signature and dtypes of `ssd_scan_ref` (`ssd_scan_backend` adds dt_bias / softplus, D and z around it).
    """
    work = dt.dtype
    x, B, C = x.to(work), B.to(work), C.to(work)
    b, length, h, p = x.shape
    g, n = B.shape[2:]
    T = min(chunk_size, length)
    pad = -length % T
    # Padding with dt = 0 means decay 1 and no input: the padded steps change nothing.
    xs, dts, Bs, Cs = (F.pad(t, (0, 0) * (t.dim() - 2) + (0, pad)) for t in (x * dt[..., None], dt, B, C))
    c = (length + pad) // T
    xs = xs.reshape(b, c, T, g, h // g, p)  # (b, c, T, g, k, p)
    Bs, Cs = (t.reshape(b, c, T, g, n) for t in (Bs, Cs))
    cs = torch.cumsum((dts * A).reshape(b, c, T, g, h // g), dim=2).permute(0, 1, 3, 4, 2)  # (b,c,g,k,T)

    # within each chunk: y_t = sum_{s <= t} exp(cs_t - cs_s) (C_t . B_s) dt_s x_s
    causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
    within, into, out_of, across = _segment_masks(resets, pad, c, T, causal)
    decay = torch.exp((cs[..., :, None] - cs[..., None, :]).masked_fill(~causal, float("-inf")))  # (b,c,g,k,T,T)
    scores = torch.einsum("bctgn,bcsgn->bcgts", Cs, Bs)[:, :, :, None] * decay * within
    y = torch.einsum("bcgkts,bcsgkp->bctgkp", scores, xs)

    # the state each chunk adds, then the recurrence between chunks
    to_end = (torch.exp(cs[..., -1:] - cs) * out_of).permute(0, 1, 4, 2, 3)  # (b, c, T, g, k)
    chunk_states = torch.einsum("bctgkp,bctgn->bcgkpn", xs * to_end[..., None], Bs).reshape(b, c, h, p, n)
    # between chunks: the linear scan state_k = exp(cs_end_k) state_{k-1} + chunk_states_k over (h, p, n) channels
    chunk_decays = (torch.exp(cs[..., -1]) * across).reshape(b, c, h, 1).expand(b, c, h, p * n)
    state0 = _initial(initial_states, b, h, p, n, dt).reshape(b, h * p * n)
    states = linear_scan(chunk_decays.reshape(b, c, h * p * n), chunk_states.reshape(b, c, h * p * n), state0)
    state = states[:, -1].reshape(b, h, p, n)
    entering = torch.cat([state0[:, None], states[:, :-1]], dim=1).reshape(b, c, g, h // g, p, n)
    from_start = (torch.exp(cs) * into).permute(0, 1, 4, 2, 3)[..., None]  # (b, c, T, g, k, 1)
    y = y + torch.einsum("bctgn,bcgkpn->bctgkp", Cs, entering) * from_start
    return y.reshape(b, c * T, h, p)[:, :length], state


def _segment_masks(
    resets: Tensor | None, pad: int, chunks: int, T: int, causal: Tensor
) -> tuple[Tensor | bool, Tensor | bool, Tensor | bool, Tensor | bool]:
    """Where a decay of the chunked form survives the resets (b, l) (True without resets), bool, shaped to broadcast
    against its term: within a chunk from s to t (b, c, 1, 1, T, T); into a chunk, from its start to t (b, c, 1, 1, T);
    out of a chunk, from s to its end (b, c, 1, 1, T); across a whole chunk (b, c, 1, 1). A decay survives when no reset
    lies after its first step and at or before its last."""
    if resets is None:
        return True, True, True, True
    b = resets.shape[0]
    seg = F.pad(resets, (0, pad)).reshape(b, chunks, T).cumsum(-1)  # (b, c, T): resets in the chunk up to t
    last = seg[..., -1:]
    within = (seg[..., :, None] == seg[..., None, :]) & causal  # (b, c, T, T)
    return (
        within[:, :, None, None],
        (seg == 0)[:, :, None, None],
        (seg == last)[:, :, None, None],
        (last == 0)[..., None],
    )


def _initial(initial_states: Tensor | None, b: int, h: int, p: int, n: int, like: Tensor) -> Tensor:
    """The state before the first step, in `like`'s dtype and on its device: zeros unless given."""
    return like.new_zeros(b, h, p, n) if initial_states is None else initial_states.to(like.dtype)


def _check_args(x, dt, A, B, C, chunk_size, D, z, dt_bias, initial_states, resets) -> None:
    check_shape("x", x, "(b, l, h, p)", None, None, None, None)
    b, length, h, p = x.shape
    check_shape("dt", dt, "(b, l, h)", b, length, h)
    check_shape("A", A, "(h,)", h)
    check_shape("B", B, "(b, l, g, n)", b, length, None, None)
    g, n = B.shape[2:]
    check_shape("C", C, "(b, l, g, n)", b, length, g, n)
    if h % g:
        raise ValueError(f"B and C have {g} groups, which must divide the number of heads h={h}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if D is not None:
        check_shape("D", D, "(h,)" if D.dim() == 1 else "(h, p)", *((h,) if D.dim() == 1 else (h, p)))
    if z is not None:
        check_shape("z", z, "(b, l, h, p)", b, length, h, p)
    if dt_bias is not None:
        check_shape("dt_bias", dt_bias, "(h,)", h)
    if initial_states is not None:
        check_shape("initial_states", initial_states, "(b, h, p, n)", b, h, p, n)
    check_resets(resets, b, length)


@example_inputs("ssd_scan")
def ssd_scan_examples(g: torch.Generator, dtype: torch.dtype) -> list[tuple]:
    """Several chunks, the last partial, two heads per group, every optional input (D per head and channel),
    softplus and the final states; then the same with resets (at step 0 of row 0, so it drops its initial state; at
    a chunk's first and last steps; two in one chunk); then one group and nothing optional (dt > 0, no softplus) in
    one partial chunk, in chunks of one step, and for one step."""
    b, length, h, p, n = 2, 37, 4, 3, 5
    x, z = (torch.randn(b, length, h, p, generator=g, dtype=dtype) for _ in range(2))
    dt, A = torch.randn(b, length, h, generator=g, dtype=dtype), -2 * torch.rand(h, generator=g, dtype=dtype)
    B, C = (torch.randn(b, length, 2, n, generator=g, dtype=dtype) for _ in range(2))
    D, bias = torch.randn(h, p, generator=g, dtype=dtype), torch.randn(h, generator=g, dtype=dtype)
    s0 = torch.randn(b, h, p, n, generator=g, dtype=dtype)
    full = [t.requires_grad_() for t in (x, dt, A, B, C, D, z, bias, s0)]
    resets = torch.zeros(b, length, dtype=torch.bool)
    resets[0, [0, 16, 20, 27]], resets[1, [15, 36]] = True, True
    cases = [(*full[:5], 16, *full[5:], True, True), (*full[:5], 16, *full[5:], True, True, resets)]
    for length, chunk in ((9, 16), (9, 1), (1, 4)):
        shapes = ((1, length, 2, 2), (1, length, 2), (2,), (1, length, 1, 3), (1, length, 1, 3))
        x, dt, A, B, C = (torch.randn(shape, generator=g, dtype=dtype) for shape in shapes)
        plain = [t.requires_grad_() for t in (x, dt.abs(), -A.abs(), B, C)]
        cases.append((*plain, chunk, None, None, None, None, False, False))
    return cases
