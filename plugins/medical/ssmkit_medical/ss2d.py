"""SS2D, the 2D selective scan of VMamba (Liu et al., 2024) as MedMamba and VM-UNet use it.

    x, z = in_proj(u)                                   (B, H, W, E) each, E = expand * d_model
    x    = silu(depthwise_conv2d(x))                    (B, E, H, W)
    xs   = cross_scan(x)                                (B, 4, E, H*W): row-major, column-major, both reversed
    ys   = selective_scan(xs), each direction with its own x_proj / dt_proj / A / D
    y    = cross_merge(ys)                              (B, E, H, W): the four put back in place and summed
    out  = out_proj(LayerNorm(y) * silu(z))             (B, H, W, d_model)

The four directions run as one call of core's `ssmkit.ops.selective_scan` over 4 * E channels, with B and C
grouped by direction (`(b, g=4, n, l)`), as VMamba's `forward_corev0` calls mamba_ssm's kernel.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ssmkit.layers.dt_init import dt_bias_init
from ssmkit.layers.mixer import no_weight_decay
from ssmkit.ops import selective_scan

Tensor = torch.Tensor
DIRECTIONS = 4


def cross_scan(x: Tensor) -> Tensor:
    """x (B, D, H, W) -> (B, 4, D, H*W): the grid read row-major, column-major, and each reversed."""
    pair = torch.stack([x.flatten(2), x.transpose(2, 3).flatten(2)], dim=1)
    return torch.cat([pair, pair.flip(-1)], dim=1)


def cross_merge(ys: Tensor, height: int, width: int) -> Tensor:
    """ys (B, 4, D, H*W) in `cross_scan`'s orders -> (B, D, H, W): every direction back in place, summed.
    `cross_merge(cross_scan(x), H, W) == 4 * x`."""
    batch, _, dim, _ = ys.shape
    forward = ys[:, :2] + ys[:, 2:].flip(-1)  # (B, 2, D, L), both in their forward order
    rows = forward[:, 0].reshape(batch, dim, height, width)
    cols = forward[:, 1].reshape(batch, dim, width, height).transpose(2, 3)
    return rows + cols


class SS2D(nn.Module):
    """Channel-last 2D selective scan: (B, H, W, d_model) -> (B, H, W, d_model)."""

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 3,
        expand: int = 2,
        dt_rank: int | None = None,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        dt_init_floor: float = 1e-4,
        dropout: float = 0.0,
        conv_bias: bool = True,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.d_state, self.d_inner = d_state, expand * d_model
        self.dt_rank = dt_rank or math.ceil(d_model / 16)
        inner, rank = self.d_inner, self.dt_rank
        self.in_proj = nn.Linear(d_model, 2 * inner, bias=bias)
        self.conv2d = nn.Conv2d(inner, inner, d_conv, padding=(d_conv - 1) // 2, groups=inner, bias=conv_bias)
        # per direction: x -> (dt, B, C), dt -> per-channel steps (nn.Linear's and mamba_ssm's initialisations)
        self.x_proj_weight = nn.Parameter(_uniform((DIRECTIONS, rank + 2 * d_state, inner), inner**-0.5))
        self.dt_projs_weight = nn.Parameter(_uniform((DIRECTIONS, inner, rank), rank**-0.5))
        self.dt_projs_bias = nn.Parameter(dt_bias_init(DIRECTIONS * inner, dt_min, dt_max, dt_init_floor))
        A = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(DIRECTIONS * inner, 1)
        self.A_logs = nn.Parameter(torch.log(A))  # (4E, N), S4D-Real
        self.Ds = nn.Parameter(torch.ones(DIRECTIONS * inner))
        no_weight_decay(self.A_logs, self.Ds, self.dt_projs_bias)
        self.out_norm = nn.LayerNorm(inner)
        self.out_proj = nn.Linear(inner, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, u: Tensor) -> Tensor:
        """u (B, H, W, d_model) -> (B, H, W, d_model)."""
        _, height, width, _ = u.shape
        x, z = self.in_proj(u).chunk(2, dim=-1)  # (B, H, W, E) each
        x = F.silu(self.conv2d(x.permute(0, 3, 1, 2)))  # (B, E, H, W)
        y = cross_merge(self.scan(cross_scan(x)), height, width)  # (B, E, H, W)
        y = self.out_norm(y.permute(0, 2, 3, 1)) * F.silu(z)
        return self.dropout(self.out_proj(y))

    def scan(self, xs: Tensor) -> Tensor:
        """xs (B, 4, E, L) -> (B, 4, E, L): each direction through its own selective scan (one batched call)."""
        batch, k, inner, length = xs.shape
        x_dbl = torch.einsum("bkdl,kcd->bkcl", xs, self.x_proj_weight)
        dts, B, C = x_dbl.split([self.dt_rank, self.d_state, self.d_state], dim=2)  # B, C: (B, 4, N, L)
        dts = torch.einsum("bkrl,kdr->bkdl", dts, self.dt_projs_weight)
        y = selective_scan(
            xs.reshape(batch, k * inner, length),
            dts.reshape(batch, k * inner, length),
            -torch.exp(self.A_logs),
            B.contiguous(),
            C.contiguous(),
            self.Ds,
            delta_bias=self.dt_projs_bias,
            delta_softplus=True,
        )
        return y.view(batch, k, inner, length)


def _uniform(shape: tuple[int, ...], bound: float) -> Tensor:
    return torch.empty(shape).uniform_(-bound, bound)
