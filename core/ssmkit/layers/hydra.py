"""Hydra (Hwang et al., 2024, "Hydra: Bidirectional State Space Models Through Generalized Matrix Mixers").

A quasiseparable matrix mixer: the sequence-mixing matrix is M = shift(SS_fwd) + flip(shift(SS_bwd)) + diag,
where SS_fwd and SS_bwd are two SSD (Mamba-2) semiseparable matrices with their own dt, B, C (one call of
the scan on the sequence and its reverse) and shift makes each strictly triangular:

    z, xBC, dt   = in_proj(u)                        xBC holds x and the forward and backward B, C
    xBC          = silu(depthwise_conv(xBC))         non-causal, kernel d_conv (odd), centred
    y_f          = ssd_scan(x, dt_f, A, B_f, C_f);   y_b = reverse(ssd_scan(reverse(x), dt_b, A, B_b, C_b))
    y            = shift(y_f) + shift_back(y_b) + x * (fc_D(x) + D)      per head, data-dependent diagonal
    out          = out_proj(GatedRMSNorm(y, z))

shift(y)_t = y_{t-1} (zero at t = 0) removes each scan's diagonal, which the data-dependent diagonal term
replaces. Reversals are within each sequence's valid length, so padding never mixes in. Non-causal: no step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssmkit.layers.mamba2 import ssd_head_parameters, ssd_heads
from ssmkit.layers.mixer import Mixer, reverse_valid
from ssmkit.layers.norms import GatedRMSNorm
from ssmkit.ops import ssd_scan
from ssmkit.registry import register_mixer

Tensor = torch.Tensor


def shift_right(y: Tensor) -> Tensor:
    """y_t <- y_{t-1}, zero at t = 0. y: (B, L, ...)."""
    return torch.cat([torch.zeros_like(y[:, :1]), y[:, :-1]], dim=1)


@register_mixer("hydra")
class Hydra(Mixer):
    causal = False
    tiny_kwargs = {"d_state": 4, "d_conv": 3, "expand": 2, "headdim": 4, "chunk_size": 4}

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        d_conv: int = 7,
        expand: int = 2,
        headdim: int = 64,
        ngroups: int = 1,
        chunk_size: int = 64,
        A_init_range: tuple[float, float] = (1.0, 16.0),
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        bias: bool = False,
    ) -> None:
        super().__init__(d_model)
        if d_conv % 2 == 0:
            raise ValueError(f"d_conv must be odd (a centred, non-causal kernel), got {d_conv}")
        self.d_inner, self.nheads = ssd_heads(d_model, expand, headdim, ngroups)
        self.headdim, self.ngroups, self.d_state, self.chunk_size = headdim, ngroups, d_state, chunk_size
        self.conv_dim = self.d_inner + 4 * ngroups * d_state  # x, then B and C for both directions
        self.in_proj = nn.Linear(d_model, self.d_inner + self.conv_dim + 2 * self.nheads, bias=bias)
        self.conv1d = nn.Conv1d(self.conv_dim, self.conv_dim, d_conv, padding=d_conv // 2, groups=self.conv_dim)
        self.fc_D = nn.Linear(self.d_inner, self.nheads, bias=False)
        self.norm = GatedRMSNorm(self.d_inner, group_size=self.d_inner // ngroups)
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias)

        self.dt_bias, self.A_log, self.D = ssd_head_parameters(self.nheads, A_init_range, dt_min, dt_max)

    def _forward(self, u: Tensor, lengths: Tensor | None) -> Tensor:
        b, length, _ = u.shape
        z, xBC, dt = self.in_proj(u).split([self.d_inner, self.conv_dim, 2 * self.nheads], dim=-1)
        xBC = F.silu(self.conv1d(xBC.transpose(1, 2)).transpose(1, 2))
        gn = self.ngroups * self.d_state
        x, B_f, B_b, C_f, C_b = xBC.split([self.d_inner, gn, gn, gn, gn], dim=-1)
        x = x.unflatten(-1, (self.nheads, self.headdim))  # (B, L, H, P)
        dt_f, dt_b = dt.chunk(2, dim=-1)

        def groups(M: Tensor) -> Tensor:
            return M.unflatten(-1, (self.ngroups, self.d_state))

        flip = lambda t: reverse_valid(t, lengths)  # noqa: E731
        # both directions in one scan: the reversed sequences ride as extra batch rows
        y = ssd_scan(
            torch.cat([x, flip(x)]), torch.cat([dt_f, flip(dt_b)]), -torch.exp(self.A_log),
            groups(torch.cat([B_f, flip(B_b)])), groups(torch.cat([C_f, flip(C_b)])),
            min(self.chunk_size, length), dt_bias=self.dt_bias, dt_softplus=True,
        )  # fmt: skip
        y_f, y_b = shift_right(y[:b]), flip(shift_right(y[b:]))
        diag = x * (self.fc_D(x.flatten(-2)) + self.D)[..., None]
        return self.out_proj(self.norm((y_f + y_b + diag).flatten(-2), z))
