"""State-space duality (SSD) scan, the core of Mamba-2 (Dao & Gu, 2024, "Transformers are SSMs").

Per head h, with a scalar decay (A is scalar-times-identity) and B, C shared by the heads of a group:

    dt_t = softplus(dt_t + dt_bias)                        (if dt_softplus)
    H_t  = exp(dt_t * A_h) * H_{t-1} + dt_t * x_t B_t^T     H: (P, N) per head
    y_t  = H_t C_t + D_h * x_t,      then  y_t *= silu(z_t) if z is given

Argument order and shapes follow mamba_ssm's `mamba_chunk_scan_combined`:
    x, z (b, l, h, p)   dt (b, l, h)   A (h,)   B, C (b, l, g, n)   D (h, p) or (h,)   dt_bias (h,)
    initial_states (b, h, p, n);  returns y (b, l, h, p) [, final_states (b, h, p, n)]

Backends: `reference` is the sequential loop (the spec); `chunked` is the SSD algorithm: within chunks of
`chunk_size` positions a masked quadratic (attention-like) form, between chunks a recurrence on the states
(`linear_scan`, so its fast backend runs it).
Computation is in float32 (float64 stays float64); y is cast back to x's dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ssmkit.ops.dispatch import example_inputs, resolve
from ssmkit.ops.linear_scan import linear_scan
from ssmkit.shapes import check_shape
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
    *,
    backend: str | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    """The SSD scan over `l`; see the module docstring for shapes. `backend` forces an implementation."""
    _check_args(x, dt, A, B, C, chunk_size, D, z, dt_bias, initial_states)
    fn = resolve("ssd_scan", x.device.type, backend)
    return fn(x, dt, A, B, C, chunk_size, D, z, dt_bias, initial_states, dt_softplus, return_final_states)


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
) -> Tensor | tuple[Tensor, Tensor]:
    """The spec: a loop over time (chunk_size is unused)."""
    dtype_out, work = x.dtype if z is None else z.dtype, working_dtype(x.dtype)
    x, dt = x.to(work), step_size(dt, dt_bias, dt_softplus, work)
    b, _, h, p = x.shape
    B, C = (M.to(work).repeat_interleave(h // M.shape[2], dim=2) for M in (B, C))  # (b, l, h, n)
    state = _initial(initial_states, b, h, p, B.shape[-1], x)
    ys = []
    for x_t, dt_t, B_t, C_t in zip(x.unbind(1), dt.unbind(1), B.unbind(1), C.unbind(1), strict=True):
        decay = torch.exp(dt_t * A.to(work))  # (b, h)
        state = decay[..., None, None] * state + (dt_t[..., None] * x_t)[..., None] * B_t[:, :, None, :]
        ys.append((state * C_t[:, :, None, :]).sum(-1))  # (b, h, p)
    y = skip_and_gate(torch.stack(ys, dim=1), x, D, z, channel_dim=2, dtype=dtype_out)
    return (y, state) if return_final_states else y


@ssd_scan_backend
def ssd_scan_chunked(x, dt, A, B, C, chunk_size, initial_states):
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
    decay = torch.exp((cs[..., :, None] - cs[..., None, :]).masked_fill(~causal, float("-inf")))  # (b,c,g,k,T,T)
    scores = torch.einsum("bctgn,bcsgn->bcgts", Cs, Bs)[:, :, :, None] * decay
    y = torch.einsum("bcgkts,bcsgkp->bctgkp", scores, xs)

    # the state each chunk adds, then the recurrence between chunks
    to_end = torch.exp(cs[..., -1:] - cs).permute(0, 1, 4, 2, 3)  # (b, c, T, g, k)
    chunk_states = torch.einsum("bctgkp,bctgn->bcgkpn", xs * to_end[..., None], Bs).reshape(b, c, h, p, n)
    # between chunks: the linear scan state_k = exp(cs_end_k) state_{k-1} + chunk_states_k over (h, p, n) channels
    chunk_decays = torch.exp(cs[..., -1]).reshape(b, c, h, 1).expand(b, c, h, p * n).reshape(b, c, h * p * n)
    state0 = _initial(initial_states, b, h, p, n, dt).reshape(b, h * p * n)
    states = linear_scan(chunk_decays, chunk_states.reshape(b, c, h * p * n), state0)  # (b, c, h*p*n)
    state = states[:, -1].reshape(b, h, p, n)
    entering = torch.cat([state0[:, None], states[:, :-1]], dim=1).reshape(b, c, g, h // g, p, n)
    from_start = torch.exp(cs).permute(0, 1, 4, 2, 3)[..., None]  # (b, c, T, g, k, 1)
    y = y + torch.einsum("bctgn,bcgkpn->bctgkp", Cs, entering) * from_start
    return y.reshape(b, c * T, h, p)[:, :length], state


def _initial(initial_states: Tensor | None, b: int, h: int, p: int, n: int, like: Tensor) -> Tensor:
    """The state before the first step, in `like`'s dtype and on its device: zeros unless given."""
    return like.new_zeros(b, h, p, n) if initial_states is None else initial_states.to(like.dtype)


def _check_args(x, dt, A, B, C, chunk_size, D, z, dt_bias, initial_states) -> None:
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


@example_inputs("ssd_scan")
def ssd_scan_examples(g: torch.Generator, dtype: torch.dtype) -> list[tuple]:
    """Several chunks, the last partial, two heads per group, every optional input (D per head and channel),
    softplus and the final states; then one group and nothing optional (dt > 0, no softplus) in one partial chunk,
    in chunks of one step, and for one step."""
    b, length, h, p, n = 2, 37, 4, 3, 5
    x, z = (torch.randn(b, length, h, p, generator=g, dtype=dtype) for _ in range(2))
    dt, A = torch.randn(b, length, h, generator=g, dtype=dtype), -2 * torch.rand(h, generator=g, dtype=dtype)
    B, C = (torch.randn(b, length, 2, n, generator=g, dtype=dtype) for _ in range(2))
    D, bias = torch.randn(h, p, generator=g, dtype=dtype), torch.randn(h, generator=g, dtype=dtype)
    s0 = torch.randn(b, h, p, n, generator=g, dtype=dtype)
    full = [t.requires_grad_() for t in (x, dt, A, B, C, D, z, bias, s0)]
    cases = [(*full[:5], 16, *full[5:], True, True)]
    for length, chunk in ((9, 16), (9, 1), (1, 4)):
        shapes = ((1, length, 2, 2), (1, length, 2), (2,), (1, length, 1, 3), (1, length, 1, 3))
        x, dt, A, B, C = (torch.randn(shape, generator=g, dtype=dtype) for shape in shapes)
        plain = [t.requires_grad_() for t in (x, dt.abs(), -A.abs(), B, C)]
        cases.append((*plain, chunk, None, None, None, None, False, False))
    return cases
