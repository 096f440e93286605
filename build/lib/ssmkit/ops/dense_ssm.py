"""Dense state-space ops (the LSSL view, Gu et al., 2021, "Combining Recurrent, Convolutional, and Continuous-time
Models with Linear State-Space Layers"): per channel h a full N x N state matrix.

    bilinear_discretise:  A_bar = (I - Δ/2 A)^{-1} (I + Δ/2 A),   B_bar = (I - Δ/2 A)^{-1} Δ B        (GBT, α = 1/2)
    krylov_kernel:        K[h, l] = C[h] A_bar[h]^l B_bar[h],   l = 0 .. L-1

The Krylov kernel is the impulse response of h_l = A_bar h_{l-1} + B_bar u_l, y_l = C h_l, so convolving with it
(the convolutional mode) equals running the recurrence (the recurrent mode).
Shapes: A (H, N, N) or (N, N), B (H, N) or (N,), log_dt (H,); A_bar (H, N, N), B_bar (H, N), C (H, N); K (H, L).
Real or complex.
"""

from __future__ import annotations

import torch

from ssmkit.ops.dispatch import example_inputs, resolve
from ssmkit.shapes import check_shape

Tensor = torch.Tensor


def bilinear_discretise(A: Tensor, B: Tensor, log_dt: Tensor) -> tuple[Tensor, Tensor]:
    """(A_bar (H, N, N), B_bar (H, N)) of the bilinear (Tustin) discretisation with step exp(log_dt): (H,)."""
    dt = torch.exp(log_dt).to(A.dtype)[:, None, None]
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    M = eye - dt / 2 * A
    A_bar = torch.linalg.solve(M, eye + dt / 2 * A)
    B_bar = torch.linalg.solve(M, dt[..., 0] * B.to(A.dtype))
    return A_bar, B_bar


def krylov_kernel(A_bar: Tensor, B_bar: Tensor, C: Tensor, L: int, *, backend: str | None = None) -> Tensor:
    """K: (H, L), K[h, l] = C[h] A_bar[h]^l B_bar[h]."""
    check_shape("A_bar", A_bar, "(H, N, N)", None, None, None)
    h, n = A_bar.shape[:2]
    check_shape("A_bar", A_bar, "(H, N, N)", h, n, n)
    check_shape("B_bar", B_bar, "(H, N)", h, n)
    check_shape("C", C, "(H, N)", h, n)
    if L < 1:
        raise ValueError(f"L must be >= 1, got {L}")
    return resolve("krylov_kernel", A_bar.device.type, backend)(A_bar, B_bar, C, L)


def krylov_kernel_ref(A_bar: Tensor, B_bar: Tensor, C: Tensor, L: int) -> Tensor:
    """The spec: power the state matrix one step at a time."""
    x, ks = B_bar, []
    for _ in range(L):
        ks.append((C * x).sum(-1))
        x = torch.einsum("hnm,hm->hn", A_bar, x)
    return torch.stack(ks, -1)


@example_inputs("krylov_kernel")
def krylov_kernel_examples(g: torch.Generator, dtype: torch.dtype) -> list[tuple]:
    """The bilinear discretisation of a random stable dense SSM (H=2, N=3), L=12."""
    A = torch.randn(2, 3, 3, generator=g, dtype=dtype) - 2 * torch.eye(3, dtype=dtype)
    log_dt = torch.log(torch.rand(2, generator=g, dtype=dtype) * 0.2 + 0.05)
    A_bar, B_bar = bilinear_discretise(A, torch.randn(2, 3, generator=g, dtype=dtype), log_dt)
    C = torch.randn(2, 3, generator=g, dtype=dtype)
    return [(A_bar.requires_grad_(), B_bar.requires_grad_(), C.requires_grad_(), 12)]
