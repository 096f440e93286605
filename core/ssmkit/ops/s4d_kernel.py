"""Convolution kernel of a diagonal SSM with zero-order-hold discretisation (S4D's Vandermonde kernel).

Continuous system per channel h and (complex) mode n: x' = A x + B u, y = Re(C x) summed over modes.
ZOH with step dt gives  A_bar = exp(dt A),  B_bar = (exp(dt A) - 1) / A * B, and the kernel

    K[h, l] = 2 * Re( sum_n C[h, n] * B_bar[h, n] * A_bar[h, n] ** l ),   l = 0 .. L-1

(the factor 2 accounts for the conjugate modes that are not stored, as in S4D). B defaults to ones.
Shapes: log_dt (H,), A, C, B (H, N) complex; returns K (H, L) real.
"""

from __future__ import annotations

import torch

from ssmkit.ops.dispatch import example_inputs, resolve
from ssmkit.shapes import check_shape
from ssmkit_kernels.scan_api import s4d_kernel_backend

Tensor = torch.Tensor


def s4d_kernel(
    log_dt: Tensor, A: Tensor, C: Tensor, L: int, B: Tensor | None = None, *, backend: str | None = None
) -> Tensor:
    """Kernel `K: (H, L)` of the diagonal SSM (A, B, C) discretised with step exp(log_dt)."""
    check_shape("log_dt", log_dt, "(H,)", None)
    h = log_dt.shape[0]
    check_shape("A", A, "(H, N)", h, None)
    n = A.shape[1]
    check_shape("C", C, "(H, N)", h, n)
    if B is not None:
        check_shape("B", B, "(H, N)", h, n)
    if not (A.is_complex() and C.is_complex()):
        raise ValueError(f"A and C must be complex tensors, got {A.dtype} and {C.dtype}")
    if L < 1:
        raise ValueError(f"L must be >= 1, got {L}")
    return resolve("s4d_kernel", log_dt.device.type, backend)(log_dt, A, C, L, B)


@s4d_kernel_backend
def s4d_kernel_ref(W: Tensor, dtA: Tensor, L: int) -> Tensor:
    """The spec: the (H, N, L) Vandermonde matrix exp(l dtA), materialised."""
    powers = torch.exp(dtA[:, :, None] * torch.arange(L, device=dtA.device))  # (H, N, L)
    return 2.0 * torch.einsum("hn,hnl->hl", W, powers).real


def random_diagonal_ssm(g: torch.Generator, dtype: torch.dtype, channels: int, modes: int) -> tuple[Tensor, ...]:
    """A random stable diagonal SSM for examples and tests: log_dt (H,) with dt in [0.05, 0.55], A (H, N) with
    Re(A) <= -0.1, C (H, N); A and C complex of `dtype`'s precision."""
    cdtype = torch.promote_types(dtype, torch.complex64)
    log_dt = torch.log(torch.rand(channels, generator=g, dtype=dtype) * 0.5 + 0.05)
    decay = -torch.rand(channels, modes, generator=g, dtype=dtype) - 0.1
    A = torch.complex(decay, torch.randn(channels, modes, generator=g, dtype=dtype))
    return log_dt, A, torch.randn(channels, modes, generator=g, dtype=cdtype)


@example_inputs("s4d_kernel")
def s4d_kernel_examples(g: torch.Generator, dtype: torch.dtype) -> list[tuple]:
    """H=3 channels, N=4 modes, L=20 with B, and L=150 without (longer than the numba kernel's 64-step resync)."""
    log_dt, A, C = random_diagonal_ssm(g, dtype, 3, 4)
    leaves = [t.requires_grad_() for t in (log_dt, A, C, torch.randn(3, 4, generator=g, dtype=C.dtype))]
    return [(*leaves[:3], 20, leaves[3]), (*leaves[:3], 150, None)]
