"""Selective scan (Mamba-1's S6) and its one-step recurrent update.

Signatures and semantics follow mamba_ssm's `selective_scan_ref` / `selective_state_update_ref`:

    h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t        (per channel d, state n)
    y_t = <C_t, h_t> + D * u_t,          then  y_t *= silu(z_t) if z is given

with delta_t = softplus(delta_t + delta_bias) when `delta_softplus`. Computation is in float32 (float64
stays float64) and the output is cast back to `u.dtype`. Only real A is supported.

Shapes (b batch, d channels, l length, n state, g groups):
    u, delta, z: (b, d, l)   A: (d, n)   B, C: (d, n) time-invariant, (b, n, l) or (b, g, n, l)
    D, delta_bias: (d,)      initial_state: (b, d, n)      returns y (b, d, l) [, last_state (b, d, n)]

`initial_state` (ssmkit's addition; mamba_ssm's selective scan has none) is h_{-1}, zeros when None: a sequence
read in pieces (chunked prefill, a sequence split across ranks) continues from the state the previous piece left,
and gradients flow to it.

`resets: (b, l)` bool (ssmkit's addition, as `linear_scan`'s): where set, the state restarts before step t,
h_t = delta_t * B_t * u_t (the decay exp(delta_t A) is replaced by 0). Several sequences packed end to end in one row
are scanned in one pass with a reset at each start (mamba_ssm's Mamba-1 has no such input).
"""

from __future__ import annotations

import torch

from ssmkit.ops.dispatch import example_inputs, resolve
from ssmkit.shapes import check_resets, check_shape
from ssmkit_kernels.scan_api import skip_and_gate, step_size, working_dtype

Tensor = torch.Tensor


def selective_scan(
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
    initial_state: Tensor | None = None,
    resets: Tensor | None = None,
    *,
    backend: str | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    """Selective scan over `l`; see the module docstring for shapes. `backend` forces an implementation."""
    _check_scan_args(u, delta, A, B, C, D, z, delta_bias, initial_state, resets)
    fn = resolve("selective_scan", u.device.type, backend)
    return fn(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, initial_state, resets)


def selective_state_update(
    state: Tensor,
    x: Tensor,
    dt: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    dt_bias: Tensor | None = None,
    dt_softplus: bool = False,
    *,
    backend: str | None = None,
) -> Tensor:
    """One recurrent step. `state: (b, d, n)` is updated in place; x, dt, z: (b, d); B, C: (b, n).

    Returns y: (b, d).
    """
    b, d, n = state.shape if state.dim() == 3 else (None, None, None)
    check_shape("state", state, "(b, d, n)", None, None, None)
    for name, t in (("x", x), ("dt", dt)) + ((("z", z),) if z is not None else ()):
        check_shape(name, t, "(b, d)", b, d)
    check_shape("A", A, "(d, n)", d, n)
    check_shape("B", B, "(b, n)", b, n)
    check_shape("C", C, "(b, n)", b, n)
    for name, t in (("D", D), ("dt_bias", dt_bias)):
        if t is not None:
            check_shape(name, t, "(d,)", d)
    fn = resolve("selective_state_update", state.device.type, backend)
    return fn(state, x, dt, A, B, C, D, z, dt_bias, dt_softplus)


def selective_scan_ref(
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
    initial_state: Tensor | None = None,
    resets: Tensor | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    """The spec: a plain loop over time. Steps with `unbind` so autograd stays O(l·d·n)."""
    dtype_in, work = u.dtype, working_dtype(u.dtype)
    u, delta, A = u.to(work), step_size(delta, delta_bias, delta_softplus, work, channel_dim=1), A.to(work)
    batch, dim, _ = u.shape
    Bs, Cs = _per_step(B, dim, work), _per_step(C, dim, work)
    h = u.new_zeros(batch, dim, A.shape[1]) if initial_state is None else initial_state.to(work)
    keep = None if resets is None else (~resets).to(work).unbind(-1)  # (b,) per step: 0 where the state restarts
    ys = []
    for t, (u_t, dt_t) in enumerate(zip(u.unbind(-1), delta.unbind(-1), strict=True)):
        decay = torch.exp(dt_t[..., None] * A)
        if keep is not None:
            decay = decay * keep[t][:, None, None]
        h = decay * h + (dt_t * u_t)[..., None] * Bs(t)
        ys.append((h * Cs(t)).sum(-1))
    y = skip_and_gate(torch.stack(ys, dim=-1), u, D, z, channel_dim=1, dtype=dtype_in)
    return (y, h) if return_last_state else y


def selective_state_update_ref(
    state: Tensor,
    x: Tensor,
    dt: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    dt_bias: Tensor | None = None,
    dt_softplus: bool = False,
) -> Tensor:
    """The spec of one step; writes the new state into `state`."""
    dtype_in, work = x.dtype, state.dtype
    x, dt = x.to(work), step_size(dt, dt_bias, dt_softplus, work)
    new_state = torch.exp(dt[..., None] * A.to(work)) * state + (dt * x)[..., None] * B.to(work)[:, None, :]
    state.copy_(new_state)
    y = (new_state * C.to(work)[:, None, :]).sum(-1)
    return skip_and_gate(y, x, D, z, channel_dim=1, dtype=dtype_in)


def _per_step(M: Tensor, dim: int, work: torch.dtype):
    """Returns t -> the (b or 1, d, n) slice of B or C used at step t, for every allowed layout."""
    M = M.to(work)
    if M.dim() == 2:  # (d, n): time-invariant
        return lambda t: M
    if M.dim() == 3:  # (b, n, l): shared by all channels
        steps = M.unbind(-1)
        return lambda t: steps[t][:, None, :]
    groups = M.shape[1]  # (b, g, n, l): channels split into g contiguous groups
    steps = M.repeat_interleave(dim // groups, dim=1).unbind(-1)
    return lambda t: steps[t]


def _check_scan_args(u, delta, A, B, C, D, z, delta_bias, initial_state, resets) -> None:
    check_shape("u", u, "(b, d, l)", None, None, None)
    b, d, length = u.shape
    check_shape("delta", delta, "(b, d, l)", b, d, length)
    if z is not None:
        check_shape("z", z, "(b, d, l)", b, d, length)
    check_shape("A", A, "(d, n)", d, None)
    if A.is_complex():
        raise ValueError("A must be real; complex A is not supported by ssmkit's selective_scan")
    n = A.shape[1]
    for name, M in (("B", B), ("C", C)):
        if M.dim() == 2:
            check_shape(name, M, "(d, n)", d, n)
        elif M.dim() == 3:
            check_shape(name, M, "(b, n, l)", b, n, length)
        else:
            check_shape(name, M, "(b, g, n, l)", b, None, n, length)
            if d % M.shape[1]:
                raise ValueError(f"{name} has {M.shape[1]} groups, which must divide d={d}")
    for name, t in (("D", D), ("delta_bias", delta_bias)):
        if t is not None:
            check_shape(name, t, "(d,)", d)
    if initial_state is not None:
        check_shape("initial_state", initial_state, "(b, d, n)", b, d, n)
    check_resets(resets, b, length)


@example_inputs("selective_scan")
def selective_scan_examples(g: torch.Generator, dtype: torch.dtype) -> list[tuple]:
    """Every optional input (delta_bias past softplus's threshold of 20 on one channel: its linear branch), B per
    step, C grouped, the last state, an initial state, resets (one at step 0, so row 0 drops its initial state);
    then time-invariant B, C per step, nothing optional, no softplus."""
    b, d, length, n = 2, 4, 13, 3
    u, delta, z = (torch.randn(b, d, length, generator=g, dtype=dtype) for _ in range(3))
    A = -2 * torch.rand(d, n, generator=g, dtype=dtype)
    B, C = torch.randn(b, n, length, generator=g, dtype=dtype), torch.randn(b, 2, n, length, generator=g, dtype=dtype)
    D, bias = torch.randn(d, generator=g, dtype=dtype), torch.randn(d, generator=g, dtype=dtype)
    bias[0] = 25.0
    full = [t.requires_grad_() for t in (u, delta.abs(), A, B, C, D, z, bias)]
    h0 = torch.randn(b, d, n, generator=g, dtype=dtype).requires_grad_()
    resets = torch.zeros(b, length, dtype=torch.bool)
    resets[0, [0, 5]], resets[1, [7, 12]] = True, True
    u, delta = torch.randn(1, 3, 9, generator=g, dtype=dtype), torch.rand(1, 3, 9, generator=g, dtype=dtype)
    A, B = -torch.rand(3, n, generator=g, dtype=dtype), torch.randn(3, n, generator=g, dtype=dtype)
    plain = [t.requires_grad_() for t in (u, delta, A, B, torch.randn(1, n, 9, generator=g, dtype=dtype))]
    return [(*full, True, True, h0, resets), (*plain, None, None, None, False, False)]


@example_inputs("selective_state_update")
def selective_state_update_examples(g: torch.Generator, dtype: torch.dtype) -> list[tuple]:
    """One decoding step from a random state (updated in place) with every optional input and softplus."""
    b, d, n = 2, 5, 3
    state = torch.randn(b, d, n, generator=g, dtype=dtype)
    x, dt, z = (torch.randn(b, d, generator=g, dtype=dtype) for _ in range(3))
    A = -torch.rand(d, n, generator=g, dtype=dtype)
    B, C = (torch.randn(b, n, generator=g, dtype=dtype) for _ in range(2))
    D, bias = (torch.randn(d, generator=g, dtype=dtype) for _ in range(2))
    return [(state, x, dt, A, B, C, D, z, bias, True)]
