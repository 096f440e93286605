import pytest
import torch

from ssmkit.ops import bilinear_discretise, krylov_kernel
from ssmkit.ops.hippo import hippo


def test_bilinear_is_second_order_accurate():
    """A_bar approximates exp(Δ A) with error O(Δ^3) per step: halving Δ divides it by ~8."""
    A, B = hippo("legt", 4)
    errs = []
    for dt in (1e-2, 5e-3):
        A_bar, _ = bilinear_discretise(A, B, torch.tensor([dt], dtype=torch.float64).log())
        errs.append((A_bar[0] - torch.linalg.matrix_exp(dt * A)).abs().max().item())
    assert 7.0 < errs[0] / errs[1] < 9.0


def test_krylov_kernel_is_the_impulse_response_in_complex_too():
    g = torch.Generator().manual_seed(0)
    A_bar = 0.3 * torch.randn(2, 5, 5, dtype=torch.complex128, generator=g)
    B_bar, C = (torch.randn(2, 5, dtype=torch.complex128, generator=g) for _ in range(2))
    K = krylov_kernel(A_bar, B_bar, C, 6)
    for k in range(6):
        torch.testing.assert_close(K[:, k], torch.einsum("hn,hnm,hm->h", C, torch.linalg.matrix_power(A_bar, k), B_bar))


def test_errors():
    A_bar = torch.randn(2, 3, 3)
    with pytest.raises(ValueError, match=r"B_bar must have shape \(H, N\) with H=2, N=3"):
        krylov_kernel(A_bar, torch.randn(2, 4), torch.randn(2, 3), 5)
    with pytest.raises(ValueError, match=r"A_bar must have shape \(H, N, N\) with H=2, N=3"):
        krylov_kernel(torch.randn(2, 3, 4), torch.randn(2, 3), torch.randn(2, 3), 5)
