import pytest
import torch

from ssmkit.ops import s4d_kernel, zoh_discretise


def test_kernel_is_impulse_response_of_zoh_recurrence():
    H, N, L = 3, 4, 50
    A = torch.complex(-torch.rand(H, N, dtype=torch.float64) - 0.1, torch.randn(H, N, dtype=torch.float64) * 3)
    C = torch.randn(H, N, dtype=torch.cdouble)
    B = torch.randn(H, N, dtype=torch.cdouble)
    log_dt = torch.log(torch.rand(H, dtype=torch.float64) * 0.1 + 0.01)
    K = s4d_kernel(log_dt, A, C, L, B)
    A_bar, B_bar = zoh_discretise(log_dt, A, B)
    h = B_bar  # impulse at t = 0
    for t in range(L):
        torch.testing.assert_close(K[:, t], 2 * (C * h).sum(-1).real)
        h = A_bar * h


def test_zoh_matches_matrix_exponential():
    """For one real mode, B_bar = A^{-1}(exp(dt A) - 1) B is the exact ZOH integral."""
    A = torch.tensor([[-0.7 + 0j]], dtype=torch.cdouble)
    log_dt = torch.tensor([0.3], dtype=torch.float64).log()
    A_bar, B_bar = zoh_discretise(log_dt, A)
    s = torch.linspace(0, 0.3, 20001, dtype=torch.float64)
    integral = torch.trapezoid(torch.exp(-0.7 * s), s)
    assert abs(A_bar.real.item() - torch.exp(torch.tensor(-0.21)).item()) < 1e-6
    assert abs(B_bar.real.item() - integral.item()) < 1e-8


def test_gradients_and_errors():
    A = torch.complex(-torch.rand(2, 3), torch.randn(2, 3)).requires_grad_()
    C = torch.randn(2, 3, dtype=torch.cfloat, requires_grad=True)
    log_dt = torch.zeros(2, requires_grad=True)
    s4d_kernel(log_dt, A, C, 8).sum().backward()
    assert all(t.grad is not None for t in (A, C, log_dt))
    with pytest.raises(ValueError, match="complex"):
        s4d_kernel(log_dt, A.real.detach(), C, 8)
    with pytest.raises(ValueError, match=r"C must have shape \(H, N\) with H=2, N=3"):
        s4d_kernel(log_dt, A, torch.randn(2, 4, dtype=torch.cfloat), 8)
