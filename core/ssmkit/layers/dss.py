"""DSS: diagonal state spaces with the softmax-normalised kernel (Gupta, Gu & Berant, 2022, "Diagonal State Spaces
are as Effective as Structured State Spaces").

Per channel h (H channels), N/2 stored complex modes shared by all channels:

    Λ = Λ_re + i Λ_im,   Δ_h = exp(log_dt_h)
    K[h, k] = Re( sum_n W[h, n] / Λ_n · softmax_k(Λ_n Δ_h k) )          `dss_kernel`, softmax over k < l_max
    y = K * u + D ⊙ u;   out = GLU(W_o gelu(y))                           `fft_conv`, `GatedOutput`

Step mode runs the same system as a recurrence: h_k = exp(Λ Δ) h_{k-1} + u_k, y_k = Re(C h_k) + D u_k
(`dss_recurrence`). Λ is initialised with the eigenvalues of the normal part of HiPPO-LegS (real part -1/2), W
complex normal, log_dt uniform in [log dt_min, log dt_max]. Λ_re is unconstrained, as in DSS-softmax.
Λ and log_dt are dynamics parameters (no weight decay). `DSSCore` is the SSM alone (reused by GSS).
"""

from __future__ import annotations

import torch
from torch import nn

from ssmkit.layers.dt_init import log_dt_init
from ssmkit.layers.gated_output import GatedOutput
from ssmkit.layers.mixer import Mixer, State, no_weight_decay
from ssmkit.ops import dss_kernel, dss_recurrence, fft_conv
from ssmkit.ops.hippo import hippo_dplr
from ssmkit.registry import register_mixer

Tensor = torch.Tensor


class DSSCore(nn.Module):
    """The DSS-softmax SSM on H channels: `forward(u: (B, L, H)) -> (B, L, H)` and `step(u_t: (B, H), h)`."""

    def __init__(self, d: int, d_state: int, l_max: int, dt_min: float = 1e-3, dt_max: float = 1e-1) -> None:
        super().__init__()
        if d_state % 2:
            raise ValueError(f"d_state must be even (modes come in conjugate pairs), got {d_state}")
        self.l_max = l_max
        Lambda = hippo_dplr(d_state)[0].to(torch.cfloat)
        self.Lambda_re = nn.Parameter(Lambda.real.clone())
        self.Lambda_im = nn.Parameter(Lambda.imag.clone())
        self.log_dt = nn.Parameter(log_dt_init(d, dt_min, dt_max))
        self.W = nn.Parameter(torch.view_as_real(torch.randn(d, d_state // 2, dtype=torch.cfloat) * 0.5**0.5))
        self.D = nn.Parameter(torch.randn(d))
        no_weight_decay(self.Lambda_re, self.Lambda_im, self.log_dt)

    def _Lambda_W(self) -> tuple[Tensor, Tensor]:
        return torch.complex(self.Lambda_re, self.Lambda_im), torch.view_as_complex(self.W)

    def forward(self, u: Tensor) -> Tensor:
        K = dss_kernel(self.log_dt, *self._Lambda_W(), u.shape[1], self.l_max)
        return fft_conv(u.transpose(1, 2), K, self.D).transpose(1, 2)

    def allocate(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        complex_dtype = torch.promote_types(dtype, torch.complex64)
        return torch.zeros(batch_size, *self.W.shape[:2], device=device, dtype=complex_dtype)

    def step(self, u_t: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        A_bar, C = dss_recurrence(self.log_dt, *self._Lambda_W(), self.l_max)
        h = A_bar * h + u_t[..., None]
        return (h * C).sum(-1).real.to(u_t.dtype) + self.D * u_t, h


@register_mixer("dss")
class DSS(Mixer):
    tiny_kwargs = {"d_state": 8, "l_max": 32}
    computes_in_float32 = True  # complex kernel
    takes_l_max = True

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        l_max: int = 1024,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(d_model)
        self.ssm = DSSCore(d_model, d_state, l_max, dt_min, dt_max)
        self.output = GatedOutput(d_model, dropout)

    def _forward(self, x: Tensor, lengths: Tensor | None) -> Tensor:
        return self.output(self.ssm(x))

    def allocate_state(
        self, batch_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> State:
        return {"h": self.ssm.allocate(batch_size, **self._factory(device, dtype))}

    def _step(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        y, state["h"] = self.ssm.step(x_t, state["h"])
        return self.output(y), state
