"""DSS-softmax convolution kernel (Gupta, Gu & Berant, 2022, "Diagonal State Spaces are as Effective as Structured
State Spaces", Proposition 1(b)):

    K[h, k] = Re( sum_n W[h, n] / Λ_n · softmax_k(P)[h, n, k] ),     P[h, n, k] = Λ_n Δ_h k,     k = 0 .. L-1

The row softmax over k runs over a fixed horizon l_max (the paper normalises over the sequence length; a fixed
horizon makes the layer one causal LTI system, so a prefix and the recurrent step agree with the whole sequence),
and the kernel can be read at any L. Its normaliser is a geometric sum,
Z = sum_{k < l_max} exp(Λ Δ k) = expm1(Λ Δ l_max) / expm1(Λ Δ). DSS-softmax allows Re(Λ) > 0: those exponents are
shifted by their largest value, Λ Δ (l_max - 1), before exponentiating, as in the paper's code.
Shapes: log_dt (H,), Lambda (N,) complex, W (H, N) complex; returns K (H, L) real.
"""

from __future__ import annotations

import torch

from ssmkit.ops.dispatch import example_inputs, resolve
from ssmkit.ops.s4d_kernel import random_diagonal_ssm
from ssmkit.shapes import check_shape

Tensor = torch.Tensor


def dss_kernel(log_dt: Tensor, Lambda: Tensor, W: Tensor, L: int, l_max: int, *, backend: str | None = None) -> Tensor:
    """Kernel `K: (H, L)` of the DSS-softmax SSM normalised over `l_max` steps."""
    check_shape("log_dt", log_dt, "(H,)", None)
    check_shape("Lambda", Lambda, "(N,)", None)
    check_shape("W", W, "(H, N)", log_dt.shape[0], Lambda.shape[0])
    if not (Lambda.is_complex() and W.is_complex()):
        raise ValueError(f"Lambda and W must be complex tensors, got {Lambda.dtype} and {W.dtype}")
    if L < 1 or l_max < 1:
        raise ValueError(f"L and l_max must be >= 1, got L={L}, l_max={l_max}")
    return resolve("dss_kernel", log_dt.device.type, backend)(log_dt, Lambda, W, L, l_max)


def dss_kernel_ref(log_dt: Tensor, Lambda: Tensor, W: Tensor, L: int, l_max: int) -> Tensor:
    """The spec: the (H, N, L) softmax rows, materialised."""
    dtL = Lambda * torch.exp(log_dt)[:, None]  # (H, N)
    shift, Z = _softmax_normaliser(dtL, l_max)
    S = torch.exp(dtL[..., None] * torch.arange(L, device=dtL.device) - shift[..., None]) / Z[..., None]
    return torch.einsum("hn,hnl->hl", W / Lambda, S).real


def dss_recurrence(log_dt: Tensor, Lambda: Tensor, W: Tensor, l_max: int) -> tuple[Tensor, Tensor]:
    """(A_bar, C), each (H, N), with K[h, k] = Re(sum_n C[h, n] A_bar[h, n]^k): the recurrent view of the kernel,
    h_k = A_bar h_{k-1} + u_k,  y_k = Re(C h_k)."""
    dtL = Lambda * torch.exp(log_dt)[:, None]
    shift, Z = _softmax_normaliser(dtL, l_max)
    return torch.exp(dtL), W / Lambda * torch.exp(-shift) / Z


def _softmax_normaliser(dtL: Tensor, l_max: int) -> tuple[Tensor, Tensor]:
    """(shift, Z) with softmax_k(P) = exp(dtL k - shift) / Z for k < l_max; the geometric sum Z is counted from the
    largest term, so its ratio has non-positive real part."""
    grows = dtL.real > 0
    shift = torch.where(grows, dtL * (l_max - 1), torch.zeros_like(dtL))
    ratio = torch.where(grows, -dtL, dtL)
    return shift, torch.expm1(ratio * l_max) / torch.expm1(ratio)


@example_inputs("dss_kernel")
def dss_kernel_examples(g: torch.Generator, dtype: torch.dtype) -> list[tuple]:
    """H=3, N=4 with one growing mode (Re(Λ) > 0), read at L=20 with the softmax over l_max=16."""
    log_dt, A, W = random_diagonal_ssm(g, dtype, 3, 4)
    Lambda = A[0].clone()
    Lambda.real[0] = 0.3
    return [(log_dt.requires_grad_(), Lambda.requires_grad_(), W.requires_grad_(), 20, 16)]
