"""LRU: the linear recurrent unit (Orvieto et al., 2023, "Resurrecting Recurrent Neural Networks for Long
Sequences").

A complex diagonal recurrence with an exponential parameterisation that keeps it stable (|λ| < 1 always):

    λ = exp(-exp(ν_log) + i exp(θ_log)),   γ = exp(γ_log)   (initialised to sqrt(1 - |λ|^2))
    h_k = λ ⊙ h_{k-1} + γ ⊙ (B u_k),       y_k = Re(C h_k) + D ⊙ u_k                      (B, L, H)

computed by `linear_scan`, then `GatedOutput` (minimal-LRU's GELU + GLU). Ring initialisation: |λ| uniform on the
ring r_min <= |λ| <= r_max (uniform in area), phase uniform in [0, max_phase]. B ~ CN(0, 1/(2H)) (N, H),
C ~ CN(0, 1/N) (H, N), D ~ N(0, 1). ν_log, θ_log, γ_log and B are dynamics parameters (no weight decay).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ssmkit.layers.linear_recurrence import DiagonalRecurrence
from ssmkit.layers.mixer import no_weight_decay
from ssmkit.registry import register_mixer

Tensor = torch.Tensor


@register_mixer("lru")
class LRU(DiagonalRecurrence):
    tiny_kwargs = {"d_state": 8}

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        r_min: float = 0.9,
        r_max: float = 0.999,
        max_phase: float = 2 * math.pi,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(d_model, dropout)
        if not 0.0 <= r_min < r_max < 1.0:
            raise ValueError(f"need 0 <= r_min < r_max < 1 for a stable ring, got r_min={r_min}, r_max={r_max}")
        u1, u2 = torch.rand(d_state), torch.rand(d_state)
        nu_log = torch.log(-0.5 * torch.log(u1 * (r_max**2 - r_min**2) + r_min**2))
        self.nu_log = nn.Parameter(nu_log)
        self.theta_log = nn.Parameter(torch.log(max_phase * u2))
        self.gamma_log = nn.Parameter(0.5 * torch.log1p(-torch.exp(-2.0 * torch.exp(nu_log))))
        self.B = nn.Parameter(
            torch.view_as_real(torch.randn(d_state, d_model, dtype=torch.cfloat) / math.sqrt(d_model))
        )
        self.C = nn.Parameter(
            torch.view_as_real(torch.randn(d_model, d_state, dtype=torch.cfloat) / math.sqrt(d_state))
        )
        no_weight_decay(self.nu_log, self.theta_log, self.gamma_log, self.B)

    def _dynamics(self) -> tuple[Tensor, Tensor, Tensor]:
        lam = torch.exp(torch.complex(-torch.exp(self.nu_log), torch.exp(self.theta_log)))
        B = torch.exp(self.gamma_log)[:, None] * torch.view_as_complex(self.B)
        return lam, B, torch.view_as_complex(self.C)
