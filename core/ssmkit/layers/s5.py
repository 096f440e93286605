"""S5: the simplified state space layer (Smith, Warrington & Linderman, 2023, "Simplified State Space Layers for
Sequence Modeling").

One multi-input multi-output SSM over all H channels, diagonalised: P complex modes, kept in conjugate pairs (only
P/2 stored, the output doubles the real part). Per mode p, with its own timescale Δ_p = exp(log_step_p):

    Λ = Λ_re + i Λ_im  (Λ_re clipped to <= -1e-4),   Λ̄ = exp(Λ Δ),   B̄ = (Λ̄ - 1) / Λ · B̃        ZOH
    x_k = Λ̄ ⊙ x_{k-1} + B̄ u_k,   y_k = 2 Re(C̃ x_k) + D ⊙ u_k                                  (B, L, H)

computed by the parallel linear scan (`linear_scan`), then `GatedOutput` (S5's "full_glu"). Initialisation:
Λ the eigenvalues of HiPPO-N (the normal part of HiPPO-LegS) in `blocks` diagonal blocks, B̃ = V* B with B
LeCun-normal (P, H), C̃ = C V with C complex normal (H, P), log_step uniform in [log dt_min, log dt_max].
`resets (B, L)` restarts the state inside a sequence (see `DiagonalRecurrence`). `bidirectional=True` (the
paper's option) adds a second scan over each sequence reversed within its length, sharing Λ and B̃ and read
out through its own C̃; the layer is then non-causal (no step, no resets). Λ, log_step and B̃ are dynamics
parameters (no weight decay).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ssmkit.layers.dt_init import log_dt_init
from ssmkit.layers.linear_recurrence import DiagonalRecurrence, project
from ssmkit.layers.mixer import no_weight_decay, reverse_valid
from ssmkit.ops import linear_scan
from ssmkit.ops.hippo import hippo_dplr
from ssmkit.registry import register_mixer

Tensor = torch.Tensor


@register_mixer("s5")
class S5(DiagonalRecurrence):
    tiny_kwargs = {"d_state": 8, "blocks": 2}

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        blocks: int = 1,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ) -> None:
        super().__init__(d_model, dropout)
        self.causal = not bidirectional
        if d_state % (2 * blocks):
            raise ValueError(f"d_state must be a multiple of 2 * blocks = {2 * blocks}, got {d_state}")
        Lambda, _, _, V = hippo_dplr(d_state // blocks)
        Lambda, V = Lambda.repeat(blocks), torch.block_diag(*[V] * blocks)  # (P/2,), (P, P/2)
        B = torch.randn(d_state, d_model, dtype=torch.float64) / math.sqrt(d_model)
        C = torch.randn(d_model, d_state, dtype=torch.complex128) * 0.5**0.5
        log_step = log_dt_init(d_state // 2, dt_min, dt_max)
        self.Lambda_re = nn.Parameter(Lambda.real.float())
        self.Lambda_im = nn.Parameter(Lambda.imag.float())
        self.log_step = nn.Parameter(log_step)
        self.B = nn.Parameter(torch.view_as_real(V.conj().T @ B.to(V.dtype)).float())  # (P/2, H, 2)
        self.C = nn.Parameter(torch.view_as_real(C @ V).float())  # (H, P/2, 2)
        if bidirectional:  # the backward pass shares Λ and B̃ and reads out through its own C̃
            C_backward = torch.randn(d_model, d_state, dtype=torch.complex128) * 0.5**0.5
            self.C_backward = nn.Parameter(torch.view_as_real(C_backward @ V).float())
        no_weight_decay(self.Lambda_re, self.Lambda_im, self.log_step, self.B)

    def _dynamics(self) -> tuple[Tensor, Tensor, Tensor]:
        Lambda = torch.complex(self.Lambda_re.clamp(max=-1e-4), self.Lambda_im)
        lam = torch.exp(Lambda * torch.exp(self.log_step))
        B = ((lam - 1.0) / Lambda)[:, None] * torch.view_as_complex(self.B)
        return lam, B, 2.0 * torch.view_as_complex(self.C)

    def _forward(self, x: Tensor, lengths: Tensor | None, resets: Tensor | None = None) -> Tensor:
        if self.causal:
            return super()._forward(x, lengths, resets)
        if resets is not None:
            raise ValueError("resets restart a causal recurrence; a bidirectional S5 takes none")
        lam, B, C = self._dynamics()
        bu = torch.einsum("blh,ph->blp", x.to(B.dtype), B)
        h_forward = linear_scan(lam.expand_as(bu), bu)
        h_backward = reverse_valid(linear_scan(lam.expand_as(bu), reverse_valid(bu, lengths)), lengths)
        C_backward = 2.0 * torch.view_as_complex(self.C_backward)
        y = project(h_forward, C, x.dtype) + project(h_backward, C_backward, x.dtype) + self.D * x
        return self.output(y)
