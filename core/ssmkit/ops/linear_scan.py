"""First-order linear recurrence with optional resets (the scan under S5 and LRU):

    h_t = a_t * h_{t-1} + b_t,      h_{-1} = h0 (zeros by default)

and where `resets[:, t]` is true the state restarts before step t: h_t = b_t (as in S5 for in-context
RL, where an episode boundary clears the memory). a and b may be real or complex.
Shapes: a, b (B, L, D); h0 (B, D); resets (B, L) bool. Returns h (B, L, D) [, h_last (B, D)].

Backends (`ssmkit.ops.dispatch.BACKENDS`): `reference` is the loop over time (the spec); `numba` (CPU) is the fused
loop of `ssmkit_kernels.cpu.linear_scan` with a hand-written backward, the CPU default when numba is installed;
`triton` the GPU kernel of `ssmkit_kernels.triton.linear_scan`.
"""

from __future__ import annotations

import torch

from ssmkit.ops.dispatch import example_inputs, resolve
from ssmkit.shapes import check_resets, check_shape

Tensor = torch.Tensor


def linear_scan(
    a: Tensor,
    b: Tensor,
    h0: Tensor | None = None,
    resets: Tensor | None = None,
    return_last_state: bool = False,
    *,
    backend: str | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    """h_t = a_t * h_{t-1} + b_t over `L`, restarting where `resets` is set; see the module docstring."""
    check_shape("b", b, "(B, L, D)", None, None, None)
    batch, length, dim = b.shape
    check_shape("a", a, "(B, L, D)", batch, length, dim)
    if h0 is not None:
        check_shape("h0", h0, "(B, D)", batch, dim)
    check_resets(resets, batch, length)
    return resolve("linear_scan", b.device.type, backend)(a, b, h0, resets, return_last_state)


def linear_scan_ref(
    a: Tensor,
    b: Tensor,
    h0: Tensor | None = None,
    resets: Tensor | None = None,
    return_last_state: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """The spec: a loop over time."""
    h = torch.zeros_like(b[:, 0]) if h0 is None else h0.to(b.dtype)
    keep = None if resets is None else (~resets).to(b.real.dtype)
    hs = []
    for t, (a_t, b_t) in enumerate(zip(a.unbind(1), b.unbind(1), strict=True)):
        carried = h if keep is None else h * keep[:, t, None]
        h = a_t * carried + b_t
        hs.append(h)
    out = torch.stack(hs, dim=1)
    return (out, h) if return_last_state else out


@example_inputs("linear_scan")
def linear_scan_examples(g: torch.Generator, dtype: torch.dtype) -> list[tuple]:
    """|a| < 1 (a stable recurrence, as in S5 / LRU), with h0, random resets and one at step 0: complex with the
    last state, and real over 70 channels (a block of 64 and a partial one); then real without h0 or resets."""
    cdtype = torch.promote_types(dtype, torch.complex64)
    cases = []
    for (batch, length, dim), kind, last in (((2, 19, 5), cdtype, True), ((1, 9, 70), dtype, False)):
        a, b, h0 = (
            torch.randn(shape, generator=g, dtype=kind) for shape in ((batch, length, dim),) * 2 + ((batch, dim),)
        )
        resets = torch.rand(batch, length, generator=g) < 0.2
        resets[0, 0] = True
        cases.append((*(t.requires_grad_() for t in (0.6 * a, b, h0)), resets, last))
    a, b = torch.rand(2, 6, 3, generator=g, dtype=dtype), torch.randn(2, 6, 3, generator=g, dtype=dtype)
    return [*cases, (a.requires_grad_(), b.requires_grad_(), None, None, True)]
