"""First-order linear recurrence with optional resets (the scan under S5 and LRU):

    h_t = a_t * h_{t-1} + b_t,      h_{-1} = h0 (zeros by default)

and where `resets[:, t]` is true the state restarts before step t: h_t = b_t (as in S5 for in-context
RL, where an episode boundary clears the memory). a and b may be real or complex.
Shapes: a, b (B, L, D); h0 (B, D); resets (B, L) bool. Returns h (B, L, D) [, h_last (B, D)].

Backends: `reference` is the loop over time (the spec); `numba` (CPU) is the fused loop of
`ssmkit_kernels.cpu.linear_scan` with a hand-written backward, the CPU default when numba is installed.
"""

from __future__ import annotations

import importlib.util

import torch

from ssmkit.ops.dispatch import REFERENCE, TRITON_UNAVAILABLE, Backend, register_backend, resolve, triton_on_cuda
from ssmkit.shapes import check_shape

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
    if resets is not None and (resets.shape != (batch, length) or resets.dtype != torch.bool):
        raise ValueError(
            f"resets must be a bool tensor of shape (B, L) = ({batch}, {length}), "
            f"got {resets.dtype} {tuple(resets.shape)}"
        )
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


register_backend("linear_scan", Backend(REFERENCE, linear_scan_ref))


def _linear_scan_numba(*args):
    """The fused numba CPU scan of `ssmkit_kernels.cpu`, imported on first use so `import ssmkit.ops` stays cheap."""
    from ssmkit_kernels.cpu.linear_scan import linear_scan_numba

    return linear_scan_numba(*args)


register_backend(
    "linear_scan",
    Backend(
        "numba",
        _linear_scan_numba,
        devices=("cpu",),
        priority=10,
        available=lambda: importlib.util.find_spec("numba") is not None,
        why_unavailable="numba is not installed (pip install numba)",
    ),
)


def _linear_scan_triton(*args):
    """The Triton GPU scan of `ssmkit_kernels.triton`, imported on first use like the numba backend."""
    from ssmkit_kernels.triton.linear_scan import linear_scan_triton

    return linear_scan_triton(*args)


register_backend(
    "linear_scan", Backend("triton", _linear_scan_triton, ("cuda",), 20, triton_on_cuda, TRITON_UNAVAILABLE)
)
