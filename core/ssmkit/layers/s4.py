"""S4: the structured state space sequence layer (Gu, Goel & Ré, 2022, "Efficiently Modeling Long Sequences with
Structured State Spaces").

Per channel h, a state of size N (N/2 stored complex modes and their implied conjugates):

    A = Λ - P P*      normal plus low rank (NPLR/DPLR), initialised to HiPPO-LegS in its eigenbasis (`hippo_dplr`)
    Λ = -exp(log_A_real) + i A_imag,   Δ = exp(log_dt)
    A_bar = (I - Δ/2 A)^{-1}(I + Δ/2 A),  B_bar = (I - Δ/2 A)^{-1} Δ B          bilinear discretisation
    K = C A_bar^l B_bar  (l < l_kernel): Cauchy kernels + Woodbury at the roots of unity, then an inverse FFT
                                                          (`dplr_kernel`, with C̃ = C (I - A_bar^l_kernel))
    y = K * u + D ⊙ u;   out = GLU(W gelu(y))                                 (`fft_conv`, `GatedOutput`)

As in S4, the trained output vector is C̃, tied to the kernel length `l_kernel` (a buffer, initially l_max), and the
kernel is truncated to the input length. An input longer than l_kernel doubles it (C̃ <- C̃ (I + A_bar^l_kernel),
which keeps the implied C, hence the layer's function, unchanged) instead of truncating.
`step` runs the discretised recurrence h = A_bar h + B_bar u, y = Re(C h) + D u on the full (conjugate-paired) state
with C = C̃ (I - A_bar^l_kernel)^{-1}; those dense matrices are cached while gradients are off (generation).
`bidirectional=True` adds a second C̃ whose kernel runs anti-causally (y_t also sees u_{t+1+m}); it has no step.
log_dt, log_A_real, A_imag, P and B are dynamics parameters (no weight decay).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssmkit.layers.dt_init import log_dt_init
from ssmkit.layers.gated_output import GatedOutput
from ssmkit.layers.mixer import Mixer, State, no_weight_decay
from ssmkit.layers.param_cache import ParameterCache
from ssmkit.ops import bilinear_discretise, dplr_kernel, fft_conv
from ssmkit.ops.hippo import hippo_dplr
from ssmkit.registry import register_mixer

Tensor = torch.Tensor


@register_mixer("s4")
class S4(Mixer):
    # AOTAutograd's trace of the DPLR kernel's irfft backward guards on a data-dependent size (torch 2.14)
    compiles_fullgraph = False
    tiny_kwargs = {"d_state": 8, "l_max": 16}
    computes_in_float32 = True  # the complex Cauchy kernel and FFT convolutions
    takes_l_max = True

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        l_max: int = 1024,
        bidirectional: bool = False,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(d_model)
        self.causal = not bidirectional
        h, n = d_model, d_state // 2
        Lambda, P, B, _ = (t.to(torch.cfloat) for t in hippo_dplr(d_state))
        self.log_dt = nn.Parameter(log_dt_init(h, dt_min, dt_max))
        self.log_A_real = nn.Parameter(torch.log(-Lambda.real).repeat(h, 1))
        self.A_imag = nn.Parameter(Lambda.imag.repeat(h, 1))
        self.P = nn.Parameter(torch.view_as_real(P.repeat(h, 1)))
        self.B = nn.Parameter(torch.view_as_real(B.repeat(h, 1)))
        self.C = nn.Parameter(torch.view_as_real(torch.randn(2 if bidirectional else 1, h, n, dtype=torch.cfloat)))
        self.D = nn.Parameter(torch.randn(h))
        self.register_buffer("l_kernel", torch.tensor(l_max))
        self.output = GatedOutput(d_model, dropout)
        no_weight_decay(self.log_dt, self.log_A_real, self.A_imag, self.P, self.B)
        self._step_cache = ParameterCache()

    def _dplr(self) -> tuple[Tensor, Tensor, Tensor]:
        """(Λ, P, B), each (H, N/2) complex."""
        Lambda = torch.complex(-torch.exp(self.log_A_real), self.A_imag)
        return Lambda, torch.view_as_complex(self.P), torch.view_as_complex(self.B)

    def kernel(self, length: int, direction: int = 0) -> Tensor:
        """The convolution kernel (H, length); direction 1 is the anti-causal one of a bidirectional layer."""
        self._extend_kernel(length)
        C = torch.view_as_complex(self.C)[direction]
        return dplr_kernel(self.log_dt, *self._dplr(), C, int(self.l_kernel))[:, :length]

    def _forward(self, x: Tensor, lengths: Tensor | None) -> Tensor:
        length, u = x.shape[1], x.transpose(1, 2)
        y = fft_conv(u, self.kernel(length), self.D)
        if not self.causal:
            y = y + fft_conv(u.flip(-1), F.pad(self.kernel(length, 1), (1, 0))[:, :length]).flip(-1)
        return self.output(y.transpose(1, 2))

    def discrete_poles(self) -> Tensor:
        """The eigenvalues of A_bar, (H, N) complex: inside the unit circle exactly when A = Λ - P P* is Hurwitz, which
        Re(Λ) = -exp(log_A_real) < 0 guarantees (A + A* = 2 Re(Λ) - 2 P P* is negative definite: SaShiMi's fix)."""
        return torch.linalg.eigvals(self._dense()[0])

    def _dense(self) -> tuple[Tensor, Tensor, Tensor]:
        """The full discretised system (A_bar (H, N, N), B_bar (H, N), C̃ (2 or 1, H, N)), conjugates included."""
        Lambda, P, B = _with_conjugates(*self._dplr())
        A = torch.diag_embed(Lambda) - P[..., :, None] * P.conj()[..., None, :]
        A_bar, B_bar = bilinear_discretise(A, B, self.log_dt)
        return A_bar, B_bar, _with_conjugates(torch.view_as_complex(self.C))[0]

    @torch.no_grad()
    def _extend_kernel(self, length: int) -> None:
        """Double l_kernel until it covers `length`, keeping the implied C = C̃ (I - A_bar^l_kernel)^{-1}."""
        while int(self.l_kernel) < length:
            A_bar, _, C = self._dense()
            C = C + torch.einsum("chm,hmn->chn", C, torch.linalg.matrix_power(A_bar, int(self.l_kernel)))
            self.C.copy_(torch.view_as_real(C[..., : self.C.shape[-2]]))
            self.l_kernel.mul_(2)

    def _step_system(self) -> tuple[Tensor, Tensor, Tensor]:
        """(A_bar, B_bar, C) of the recurrence, C = C̃ (I - A_bar^l_kernel)^{-1}."""
        A_bar, B_bar, C = self._dense()
        eye = torch.eye(A_bar.shape[-1], dtype=A_bar.dtype, device=A_bar.device)
        M = eye - torch.linalg.matrix_power(A_bar, int(self.l_kernel))
        return A_bar, B_bar, torch.linalg.solve(M.mT, C[0][..., None])[..., 0]

    def allocate_state(
        self, batch_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> State:
        f = self._factory(device, dtype)
        complex_dtype = torch.promote_types(f["dtype"], torch.complex64)
        shape = (batch_size, self.d_model, 2 * self.A_imag.shape[1])
        return {"h": torch.zeros(shape, device=f["device"], dtype=complex_dtype)}

    def _step(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        A_bar, B_bar, C = self._step_cache.get(self, self._step_system)
        h = torch.einsum("hnm,bhm->bhn", A_bar, state["h"]) + B_bar * x_t[..., None]
        state["h"] = h
        y = (C * h).sum(-1).real.to(x_t.dtype) + self.D * x_t
        return self.output(y), state


def _with_conjugates(*xs: Tensor) -> tuple[Tensor, ...]:
    """(..., N/2) -> (..., N): the stored modes, then their conjugates."""
    return tuple(torch.cat([x, x.conj()], dim=-1) for x in xs)
