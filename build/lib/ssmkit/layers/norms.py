"""Normalisation layers. Statistics are computed in float32 whatever the input dtype."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

Tensor = torch.Tensor


def rms_normalise(x: Tensor, eps: float) -> Tensor:
    """x / sqrt(mean(x^2) + eps) over the last dimension, in float32."""
    xf = x.to(torch.promote_types(x.dtype, torch.float32))
    return xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)


class RMSNorm(nn.Module):
    """y = x / sqrt(mean(x^2) + eps) * weight (x: (..., D))."""

    def __init__(self, d_model: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x: Tensor) -> Tensor:
        return rms_normalise(x, self.eps).to(x.dtype) * self.weight


class GatedRMSNorm(nn.Module):
    """Mamba-2's output norm: RMSNorm(x * silu(z)) over groups of `group_size` channels (x, z: (..., D))."""

    def __init__(self, d_model: int, group_size: int | None = None, eps: float = 1e-5) -> None:
        super().__init__()
        self.group_size = group_size or d_model
        if d_model % self.group_size:
            raise ValueError(f"group_size={self.group_size} must divide d_model={d_model}")
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        work = torch.promote_types(x.dtype, torch.float32)
        gated = (x.to(work) * F.silu(z.to(work))).unflatten(-1, (-1, self.group_size))
        return rms_normalise(gated, self.eps).flatten(-2).to(x.dtype) * self.weight
