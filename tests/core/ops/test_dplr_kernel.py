import pytest
import torch

from ssmkit.ops import bilinear_discretise, dplr_kernel, krylov_kernel
from ssmkit.ops.hippo import hippo_dplr


def _with_conjugates(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, x.conj()], -1)


def _naive(log_dt, Lambda, P, B, C_true, L):
    """Power the bilinear-discretised dense matrix of the full system A = Λ - P P* (conjugates included)."""
    P_f = _with_conjugates(P)
    A = torch.diag_embed(_with_conjugates(Lambda)) - P_f[..., :, None] * P_f.conj()[..., None, :]
    A_bar, B_bar = bilinear_discretise(A, _with_conjugates(B), log_dt)
    K = krylov_kernel(A_bar, B_bar, C_true, L)
    assert K.imag.abs().max() < 1e-12  # the conjugate-paired system is real
    eye = torch.eye(A.shape[-1], dtype=A.dtype)
    C_tilde = torch.einsum("hm,hmn->hn", C_true, eye - torch.linalg.matrix_power(A_bar, L))
    return K.real, C_tilde[..., : Lambda.shape[-1]]


def test_cauchy_woodbury_equals_naive_powering_of_the_discretised_matrix():
    """The issue's check: float64, L = 256, N = 64 (HiPPO-LegS), relative error < 1e-6 (measured ~1e-14)."""
    torch.manual_seed(0)
    H, N, L = 3, 64, 256
    Lambda, P, B = (t.repeat(H, 1) for t in hippo_dplr(N)[:3])
    log_dt = torch.log(torch.tensor([1e-3, 1e-2, 1e-1], dtype=torch.float64))
    C_true = _with_conjugates(torch.randn(H, N // 2, dtype=torch.complex128))
    K_naive, C_tilde = _naive(log_dt, Lambda, P, B, C_true, L)
    K = dplr_kernel(log_dt, Lambda, P, B, C_tilde, L)
    rel = ((K - K_naive).norm() / K_naive.norm()).item()
    assert rel < 1e-6, rel


@pytest.mark.parametrize("L", [1, 2, 7, 64])
def test_random_dplr_systems_any_length(L):
    """Odd and even L (ω = -1 is a root of unity for even L), random Λ, P, B."""
    g = torch.Generator().manual_seed(L)
    H, n = 2, 5
    Lambda = torch.complex(
        -torch.rand(H, n, dtype=torch.float64, generator=g) - 0.1,
        5 * torch.randn(H, n, generator=g, dtype=torch.float64),
    )
    P, B = (torch.randn(H, n, dtype=torch.complex128, generator=g) for _ in range(2))
    log_dt = torch.log(torch.tensor([0.05, 0.5], dtype=torch.float64))
    C_true = _with_conjugates(torch.randn(H, n, dtype=torch.complex128, generator=g))
    K_naive, C_tilde = _naive(log_dt, Lambda, P, B, C_true, L)
    torch.testing.assert_close(dplr_kernel(log_dt, Lambda, P, B, C_tilde, L), K_naive, rtol=1e-10, atol=1e-12)


def test_gradients_and_errors():
    Lambda, P, B = (t.to(torch.complex64).repeat(2, 1).requires_grad_() for t in hippo_dplr(4)[:3])
    C = torch.randn(2, 2, dtype=torch.complex64, requires_grad=True)
    log_dt = torch.zeros(2, requires_grad=True)
    K = dplr_kernel(log_dt, Lambda, P, B, C, 16)
    assert K.dtype == torch.float32
    K.square().sum().backward()
    assert all(t.grad is not None and bool(torch.isfinite(t.grad).all()) for t in (Lambda, P, B, C, log_dt))
    with pytest.raises(ValueError, match=r"P must have shape \(H, N\) with H=2, N=2"):
        dplr_kernel(log_dt, Lambda, P[:, :1], B, C, 8)
    with pytest.raises(ValueError, match="complex"):
        dplr_kernel(log_dt, Lambda, P, B, C.real, 8)
