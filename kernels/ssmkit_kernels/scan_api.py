"""The scans' calling conventions, written once for the references in `ssmkit.ops` and for every backend here.

- `working_dtype`: the precision a scan computes in.
- `step_size` and `skip_and_gate`: the stages around the recurrence of the gated scans (Mamba's selective scan,
  Mamba-2's SSD): dt = softplus(dt + dt_bias) before it, y = (y + D x) * silu(z), cast back, after it.
- `zoh_discretise`: S4D's zero-order hold, (A_bar, B_bar) of a diagonal SSM.
- `selective_scan_backend`, `selective_state_update_backend`, `ssd_scan_backend`, `linear_scan_backend`,
  `s4d_kernel_backend`: decorators
  that turn a backend's core into a function with its op's public signature (mamba_ssm's argument names, order and
  defaults, as `ssmkit.ops` declares them for the dispatcher and the reference) and do what every backend of that op
  does around its core. The result keeps the core's name, module and docstring.

Depends on torch only and never imports ssmkit; `ssmkit.ops` imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
import torch.nn.functional as F

Tensor = torch.Tensor
Entry = TypeVar("Entry", bound=Callable)


def working_dtype(dtype: torch.dtype) -> torch.dtype:
    """The precision a scan computes in: float64 and complex128 stay double; every other dtype computes in float32
    (complex64 if complex)."""
    double = dtype in (torch.float64, torch.complex128)
    if dtype.is_complex:
        return torch.complex128 if double else torch.complex64
    return torch.float64 if double else torch.float32


def step_size(dt: Tensor, bias: Tensor | None, softplus: bool, work: torch.dtype, channel_dim: int = -1) -> Tensor:
    """dt in `work`, plus `bias` (one value per channel; channels along `channel_dim` of dt), then through softplus
    (torch's: linear above 20) if `softplus`."""
    dt = dt.to(work)
    if bias is not None:
        dt = dt + _per_channel(bias.to(work), dt.dim(), channel_dim)
    return F.softplus(dt) if softplus else dt


def skip_and_gate(
    y: Tensor, x: Tensor, D: Tensor | None, z: Tensor | None, channel_dim: int, dtype: torch.dtype
) -> Tensor:
    """(y + D x) * silu(z), in y's (working) dtype, cast to `dtype`; the D term only if D is given, the gate only if z
    is. D holds a value per channel (channels along `channel_dim` of y and x), or per channel and each of the dims
    after it that D has (SSD's (h, p))."""
    work = y.dtype
    if D is not None:
        y = y + _per_channel(D.to(work), y.dim(), channel_dim) * x.to(work)
    if z is not None:
        y = y * F.silu(z.to(work))
    return y.to(dtype)


def _per_channel(p: Tensor, ndim: int, channel_dim: int) -> Tensor:
    """p, whose dims start at `channel_dim` of an `ndim`-dim tensor, with the trailing 1s that broadcast it there."""
    return p.reshape(p.shape + (1,) * (ndim - channel_dim % ndim - p.dim()))


def selective_scan_backend(scan: Callable[..., tuple[Tensor, Tensor]]):
    """A `selective_scan` backend from `scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus, initial_state,
    resets) -> (y, last_state)` (every argument given; A in the working dtype, initial_state too or None, resets
    (b, l) bool or None): the signature of `ssmkit.ops.selective_scan_ref`, y alone unless `return_last_state`."""

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
    ) -> Tensor | tuple[Tensor, Tensor]:
        work = working_dtype(u.dtype)
        h0 = None if initial_state is None else initial_state.to(work)
        y, last = scan(u, delta, A.to(work), B, C, D, z, delta_bias, delta_softplus, h0, resets)
        return (y, last) if return_last_state else y

    return _named_as(scan, selective_scan)


def selective_state_update_backend(step: Callable[..., Tensor]):
    """A `selective_state_update` backend from `step(state, x, dt, A, B, C, D, z, dt_bias, dt_softplus) -> y` (every
    argument given; updates `state` in place): the signature and defaults of `ssmkit.ops.selective_state_update_ref`.
    """

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
    ) -> Tensor:
        return step(state, x, dt, A, B, C, D, z, dt_bias, dt_softplus)

    return _named_as(step, selective_state_update)


def ssd_scan_backend(scan: Callable[..., tuple[Tensor, Tensor]]):
    """An `ssd_scan` backend from the SSD recurrence alone, `scan(x, dt, A, B, C, chunk_size, initial_states, resets)
    -> (y, final_states)`: dt after dt_bias and softplus, dt and A in the working dtype, initial_states too (or None),
    x, B, C and resets (b, l) bool or None as given; y in the working dtype, without D or z. Gives it the signature
    of `ssmkit.ops.ssd_scan_ref`, and the D skip and silu(z) gate after it; y comes back in x's dtype (z's when z is
    given)."""

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
    ) -> Tensor | tuple[Tensor, Tensor]:
        work = working_dtype(x.dtype)
        initial_states = None if initial_states is None else initial_states.to(work)
        dt = step_size(dt, dt_bias, dt_softplus, work)
        y, final = scan(x, dt, A.to(work), B, C, chunk_size, initial_states, resets)
        y = skip_and_gate(y, x, D, z, channel_dim=2, dtype=x.dtype if z is None else z.dtype)
        return (y, final) if return_final_states else y

    return _named_as(scan, ssd_scan)


def linear_scan_backend(scan: Callable[..., tuple[Tensor, Tensor]]):
    """A `linear_scan` backend from `scan(a, b, h0, resets) -> (h, h_last)` on a, b and h0 (or None) contiguous in the
    working dtype of a's and b's promotion: the signature of `ssmkit.ops.linear_scan_ref`. As there, h0 is cast to b's
    dtype first and h comes back in the promotion of a's and b's dtypes."""

    def linear_scan(
        a: Tensor,
        b: Tensor,
        h0: Tensor | None = None,
        resets: Tensor | None = None,
        return_last_state: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        out_dtype = torch.promote_types(a.dtype, b.dtype)
        work = working_dtype(out_dtype)
        h0 = None if h0 is None else h0.to(b.dtype).to(work).contiguous()
        h, last = scan(a.to(work).contiguous(), b.to(work).contiguous(), h0, resets)
        return (h.to(out_dtype), last.to(out_dtype)) if return_last_state else h.to(out_dtype)

    return _named_as(scan, linear_scan)


def zoh_discretise(log_dt: Tensor, A: Tensor, B: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """(A_bar, B_bar) = (exp(dt A), (exp(dt A) - 1) / A * B) of the ZOH discretisation with dt = exp(log_dt): (H, N)
    each, from log_dt (H,), A and B (H, N) complex (B = 1 when None)."""
    A_bar = torch.exp(A * torch.exp(log_dt)[:, None])
    return A_bar, (A_bar - 1.0) / A * (1.0 if B is None else B)


def s4d_kernel_backend(vandermonde: Callable[..., Tensor]):
    """An `s4d_kernel` backend from `vandermonde(W, dtA, L) -> K (H, L)` = 2 Re(sum_n W z^l) over l = 0 .. L-1 with
    z = exp(dtA), W and dtA (H, N) complex: forms dtA = exp(log_dt) A and W = C B_bar (`zoh_discretise`) in torch,
    which differentiates them; the signature of `ssmkit.ops.s4d_kernel_ref`."""

    def s4d_kernel(log_dt: Tensor, A: Tensor, C: Tensor, L: int, B: Tensor | None = None) -> Tensor:
        dtA = A * torch.exp(log_dt)[:, None]
        return vandermonde(C * zoh_discretise(log_dt, A, B)[1], dtA, L)

    return _named_as(vandermonde, s4d_kernel)


def _named_as(core: Callable, entry: Entry) -> Entry:
    """`entry` under `core`'s module, name and docstring, keeping its own signature (no `__wrapped__`)."""
    for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
        setattr(entry, attr, getattr(core, attr))
    return entry
