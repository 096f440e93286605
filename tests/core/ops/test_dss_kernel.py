import pytest
import torch

from ssmkit.ops import dss_kernel, dss_recurrence


def _params(H: int = 3, N: int = 4) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    re = torch.tensor([-0.5, -0.1, 0.2, 0.05], dtype=torch.float64)[:N]  # two growing modes, allowed by DSS-softmax
    Lambda = torch.complex(re, torch.randn(N, dtype=torch.float64, generator=g) * 3)
    W = torch.randn(H, N, dtype=torch.complex128, generator=g)
    log_dt = torch.log(torch.rand(H, dtype=torch.float64, generator=g) * 0.5 + 0.05)
    return log_dt, Lambda, W


def test_kernel_is_the_row_softmax_of_the_paper():
    log_dt, Lambda, W = _params()
    l_max, L = 40, 25
    P = (Lambda * torch.exp(log_dt)[:, None])[..., None] * torch.arange(l_max)  # (H, N, l_max)
    softmax = torch.exp(P) / torch.exp(P).sum(-1, keepdim=True)
    expected = torch.einsum("hn,hnl->hl", W / Lambda, softmax).real
    torch.testing.assert_close(dss_kernel(log_dt, Lambda, W, L, l_max), expected[:, :L], rtol=1e-10, atol=1e-12)
    # read past the horizon, it is still the same system (no renormalisation)
    long = dss_kernel(log_dt, Lambda, W, 60, l_max)
    torch.testing.assert_close(long[:, :l_max], expected, rtol=1e-10, atol=1e-12)


def test_recurrence_is_the_kernel():
    log_dt, Lambda, W = _params()
    A_bar, C = dss_recurrence(log_dt, Lambda, W, 30)
    K = dss_kernel(log_dt, Lambda, W, 30, 30)
    h = torch.ones_like(A_bar)  # impulse at k = 0
    for k in range(30):
        torch.testing.assert_close(K[:, k], (C * h).sum(-1).real, rtol=1e-10, atol=1e-12)
        h = A_bar * h


def test_large_growing_exponents_stay_finite_in_float32():
    log_dt, Lambda, W = (t.to(torch.complex64) if t.is_complex() else t.float() for t in _params())
    K = dss_kernel(log_dt + 4.0, Lambda * 10, W, 512, 512)  # Re(Λ Δ) l_max in the thousands
    assert bool(torch.isfinite(K).all())


def test_errors_name_the_argument():
    log_dt, Lambda, W = _params()
    with pytest.raises(ValueError, match=r"W must have shape \(H, N\) with H=3, N=4"):
        dss_kernel(log_dt, Lambda, W[:, :3], 8, 8)
    with pytest.raises(ValueError, match="complex"):
        dss_kernel(log_dt, Lambda.real, W, 8, 8)
