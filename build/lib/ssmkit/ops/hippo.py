"""HiPPO matrices (Gu et al., 2020, "HiPPO: Recurrent Memory with Optimal Polynomial Projections") and the
normal-plus-low-rank form of HiPPO-LegS used by S4, S5 and DSS.

`hippo(measure, N)` returns the real (A, B) of  x'(t) = A x(t) + B u(t)  whose state holds the coefficients of
the input history projected on an orthonormal basis:

    legs   scaled Legendre on [0, t] (exact with the time-varying system A/t, B/t; LTI in S4 and LSSL)
           A[n, k] = -sqrt(2n+1) sqrt(2k+1)  (n > k),   -(n+1)  (n = k),   0  (n < k);     B[n] = sqrt(2n+1)
    legt   translated Legendre on the window [t-1, t] (basis signs flipped so that B > 0)
           A[n, k] = -sqrt(2n+1) sqrt(2k+1) * (1 if n >= k else (-1)^(n-k));                B[n] = sqrt(2n+1)
    fout   translated Fourier on [t-1, t], basis (1, sqrt2 cos 2πjs, sqrt2 sin 2πjs, ...):
           A = R - B B^T with R the rotations  c_j' = 2πj s_j,  s_j' = -2πj c_j;   B = (1, sqrt2, 0, sqrt2, 0, ...)

`hippo_dplr(N)` writes HiPPO-LegS as  A = V (Λ - P P*) V*  with V unitary (S4's NPLR, Theorem 1): A + p p^T with
p[n] = sqrt(n + 1/2) is -1/2 I plus a skew-symmetric matrix, so it is diagonalised by a unitary V. Eigenvalues come in
conjugate pairs; only the N/2 with positive imaginary part are returned (the others are their conjugates).
"""

from __future__ import annotations

import math

import torch

Tensor = torch.Tensor
MEASURES = ("legs", "legt", "fout")


def hippo(measure: str, N: int, dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
    """(A: (N, N), B: (N,)) of the HiPPO `measure` ('legs', 'legt' or 'fout'); see the module docstring."""
    if N < 1:
        raise ValueError(f"N must be >= 1, got {N}")
    n = torch.arange(N, dtype=torch.float64)
    r = torch.sqrt(2 * n + 1)
    if measure == "legs":
        A = -torch.tril(r[:, None] * r[None, :], -1) - torch.diag(n + 1)
        B = r
    elif measure == "legt":
        sign = torch.where(n[:, None] >= n[None, :], 1.0, (-1.0) ** (n[:, None] - n[None, :]))
        A = -(r[:, None] * r[None, :]) * sign
        B = r
    elif measure == "fout":
        A, B = _fout(N)
    else:
        raise ValueError(f"measure must be one of {MEASURES}, got {measure!r}")
    return A.to(dtype), B.to(dtype)


def _fout(N: int) -> tuple[Tensor, Tensor]:
    """Index 0 is the constant, 2j-1 and 2j the cosine and sine of frequency j."""
    B = torch.zeros(N, dtype=torch.float64)
    B[0] = 1.0
    B[1::2] = math.sqrt(2.0)
    R = torch.zeros(N, N, dtype=torch.float64)
    for j in range(1, (N - 1) // 2 + 1):
        c, s = 2 * j - 1, 2 * j
        R[c, s], R[s, c] = 2 * math.pi * j, -2 * math.pi * j
    return R - B[:, None] * B[None, :], B


def hippo_dplr(N: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """HiPPO-LegS in diagonal-plus-low-rank form, for even N:

    Lambda (N/2,) complex eigenvalues (real part -1/2), P = V* p and B = V* B (N/2,) complex, V (N, N/2) complex,
    such that with the conjugates appended (Λ_f = [Λ, conj Λ], V_f = [V, conj V], ...)  A = V_f (Λ_f - P_f P_f*) V_f*.
    """
    if N < 2 or N % 2:
        raise ValueError(f"N must be even and >= 2 (eigenvalues come in conjugate pairs), got {N}")
    A, B = hippo("legs", N)
    p = torch.sqrt(torch.arange(N, dtype=torch.float64) + 0.5)
    normal = A + p[:, None] * p[None, :]  # -1/2 I + skew-symmetric
    skew = normal + 0.5 * torch.eye(N, dtype=torch.float64)
    imag, V = torch.linalg.eigh(-1j * skew.to(torch.complex128))  # skew = V diag(i * imag) V*
    keep = torch.argsort(imag, descending=True)[: N // 2]
    V = V[:, keep]
    Lambda = torch.complex(torch.full((N // 2,), -0.5, dtype=torch.float64), imag[keep])
    Vh = V.conj().T
    return Lambda, Vh @ p.to(V.dtype), Vh @ B.to(V.dtype), V
