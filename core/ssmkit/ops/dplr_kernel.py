"""S4's convolution kernel for a diagonal-plus-low-rank state matrix (Gu, Goel & Ré, 2022, "Efficiently Modeling
Long Sequences with Structured State Spaces", Algorithm 1 and Appendix C.3).

Per channel h, state matrix A = Λ - P P* (rank 1, the normal-plus-low-rank form of HiPPO-LegS in its eigenbasis),
input B, output C̃, step Δ. N stored modes; each has its conjugate (not stored) so the full system is real. With
the bilinear discretisation A_bar = (I - Δ/2 A)^{-1}(I + Δ/2 A), B_bar = (I - Δ/2 A)^{-1} Δ B, the kernel
K[l] = C A_bar^l B_bar (l < L) has the truncated generating function, at the roots of unity ω_k = exp(-2πik/L),

    K̂(ω) = C̃ (I - A_bar ω)^{-1} B_bar = 2/(1+ω) · C̃ (g - A)^{-1} B,     g = 2/Δ · (1-ω)/(1+ω),   C̃ = C (I - A_bar^L)

and by the Woodbury identity, with the Cauchy kernels k_uv(ω) = sum_n u_n v_n / (g - λ_n) (over all 2N modes),

    K̂(ω) = 2/(1+ω) · [k_C̃B - k_C̃P · k_P̄B / (1 + k_P̄P)].

The factors 1/(1+ω) are multiplied through (Cauchy terms in the form 1/(2/Δ (1-ω) - λ (1+ω))), so ω = -1 needs no
special case. K = irfft(K̂) over the L//2 + 1 non-negative frequencies. C̃ is the parameter, as in S4: the kernel is
exact for lengths up to L. Shapes: log_dt (H,), Lambda, P, B, C (H, N) complex; returns K (H, L) real.
"""

from __future__ import annotations

import math

import torch

from ssmkit.ops.dispatch import example_inputs, resolve
from ssmkit.ops.s4d_kernel import random_diagonal_ssm
from ssmkit.shapes import check_shape

Tensor = torch.Tensor


def dplr_kernel(
    log_dt: Tensor, Lambda: Tensor, P: Tensor, B: Tensor, C: Tensor, L: int, *, backend: str | None = None
) -> Tensor:
    """Kernel `K: (H, L)` of the bilinear-discretised DPLR SSM (Λ - P P*, B, C̃) through Cauchy + Woodbury."""
    check_shape("log_dt", log_dt, "(H,)", None)
    h = log_dt.shape[0]
    check_shape("Lambda", Lambda, "(H, N)", h, None)
    n = Lambda.shape[1]
    for name, t in (("P", P), ("B", B), ("C", C)):
        check_shape(name, t, "(H, N)", h, n)
    if not all(t.is_complex() for t in (Lambda, P, B, C)):
        raise ValueError("Lambda, P, B and C must be complex tensors")
    if L < 1:
        raise ValueError(f"L must be >= 1, got {L}")
    return resolve("dplr_kernel", log_dt.device.type, backend)(log_dt, Lambda, P, B, C, L)


def dplr_kernel_ref(log_dt: Tensor, Lambda: Tensor, P: Tensor, B: Tensor, C: Tensor, L: int) -> Tensor:
    """The spec: the (H, 2N, L//2 + 1) Cauchy matrix, materialised."""
    angle = -2 * math.pi / L * torch.arange(L // 2 + 1, device=Lambda.device, dtype=Lambda.real.dtype)
    omega = torch.polar(torch.ones_like(angle), angle)  # (F,) roots of unity
    dt = torch.exp(log_dt).to(Lambda.dtype)[:, None, None]
    s = 1 + omega
    lam = _with_conjugates(Lambda)[..., None]  # (H, 2N, 1)
    cauchy = 1.0 / (2.0 / dt * (1 - omega) - lam * s)  # (H, 2N, F)

    def k_(u: Tensor, v: Tensor) -> Tensor:
        return torch.einsum("hn,hnf->hf", _with_conjugates(u * v), cauchy)

    k00, k01, k10, k11 = k_(C, B), k_(C, P), k_(P.conj(), B), k_(P.conj(), P)
    K_hat = 2.0 * (k00 - s * k01 * k10 / (1 + s * k11))
    return torch.fft.irfft(K_hat, n=L)


def _with_conjugates(x: Tensor) -> Tensor:
    """(..., N) -> (..., 2N): the stored modes, then their conjugates."""
    return torch.cat([x, x.conj()], dim=-1)


@example_inputs("dplr_kernel")
def dplr_kernel_examples(g: torch.Generator, dtype: torch.dtype) -> list[tuple]:
    """H=3 channels of N=4 stable modes with a rank-1 correction, at an even and an odd length."""
    log_dt, Lambda, C = random_diagonal_ssm(g, dtype, 3, 4)
    P, B = (0.3 * torch.randn(3, 4, generator=g, dtype=C.dtype) for _ in "PB")
    leaves = [t.requires_grad_() for t in (log_dt, Lambda, P, B, C)]
    return [(*leaves, 16), (*leaves, 11)]
