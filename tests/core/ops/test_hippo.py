import numpy as np
import pytest
import torch
from numpy.polynomial import legendre

import ssmkit
from ssmkit.ops import bilinear_discretise
from ssmkit.ops.hippo import hippo, hippo_dplr


def _legs_coefficients_of_a_step(N: int, a: float) -> torch.Tensor:
    """Coefficients of u(x) = 1[x >= a] on [-1, 1] against sqrt(2n+1) P_n, under the uniform measure dx / 2:
    c_n = sqrt(2n+1)/2 ∫_a^1 P_n,  with ∫_a^1 P_n = (P_{n-1}(a) - P_{n+1}(a)) / (2n+1) for n >= 1."""

    def P(n: int) -> float:
        return float(legendre.legval(a, np.eye(n + 1)[n]))

    c = [(1 - a) / 2] + [(P(n - 1) - P(n + 1)) / (2 * np.sqrt(2 * n + 1)) for n in range(1, N)]
    return torch.tensor(c, dtype=torch.float64)


def test_legs_projection_of_a_step_input():
    """The HiPPO property, on an LSSL layer's frozen HiPPO-LegS (A, B): run with the LegS timescale Δ_k = 1/k, the
    state after L steps holds the Legendre coefficients of the whole input history (here a step at 0.4 L).
    Tolerance 1e-3 (measured 3.5e-4 at L = 1000, N = 16; the error is the O(1/L) discretisation error)."""
    N, L, k0 = 16, 1000, 400
    lssl = ssmkit.create_mixer("lssl", 1, d_state=N).double()
    x = torch.zeros(N, dtype=torch.float64)
    for k in range(1, L + 1):
        A_bar, B_bar = bilinear_discretise(lssl.A, lssl.B, torch.tensor([-np.log(k)], dtype=torch.float64))
        x = A_bar[0] @ x + B_bar[0] * float(k > k0)
    expected = _legs_coefficients_of_a_step(N, 2 * k0 / L - 1)
    assert (x - expected).abs().max() < 1e-3
    assert expected[1:].abs().max() > 0.1  # the check sees more than the mean


@pytest.mark.parametrize("N", [4, 16, 64])
def test_dplr_form_reconstructs_legs(N):
    Lambda, P, B, V = hippo_dplr(N)
    V_f = torch.cat([V, V.conj()], 1)
    Lambda_f, P_f, B_f = (torch.cat([t, t.conj()]) for t in (Lambda, P, B))
    A, B_legs = hippo("legs", N)
    torch.testing.assert_close(V_f.conj().T @ V_f, torch.eye(N, dtype=V.dtype), atol=1e-12, rtol=0)  # unitary
    A_rec = V_f @ (torch.diag(Lambda_f) - P_f[:, None] * P_f.conj()[None, :]) @ V_f.conj().T
    torch.testing.assert_close(A_rec, A.to(A_rec.dtype), atol=1e-11, rtol=0)
    torch.testing.assert_close(V_f @ B_f, B_legs.to(V.dtype), atol=1e-11, rtol=0)
    assert bool((Lambda.real == -0.5).all()) and bool((Lambda.imag > 0).all())


@pytest.mark.parametrize("measure", ["legs", "legt", "fout"])
def test_measures_are_stable_and_remember_a_constant(measure):
    A, B = hippo(measure, 9)
    assert torch.linalg.eigvals(A).real.max() < 1e-9
    e0 = torch.zeros(9, dtype=torch.float64)
    e0[0] = 1.0
    # a constant input u = 1 has coefficients e0 (its mean), a fixed point: A e0 + B = 0 (fout: the window's
    # constant term integrates u(t) - u(t-1), so every constant is a fixed point there)
    torch.testing.assert_close(A @ e0 + B, torch.zeros(9, dtype=torch.float64), atol=1e-12, rtol=0)


def test_errors():
    with pytest.raises(ValueError, match="measure must be one of"):
        hippo("lagt", 4)
    with pytest.raises(ValueError, match="N must be even"):
        hippo_dplr(5)
