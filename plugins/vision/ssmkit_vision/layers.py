"""The blocks of the image models: the mixer factory and the residual block. Vim's bidirectional Mamba mixer
("bimamba v2", `BiMambaV2`) is ssmkit's registered mixer `bimamba_v2` (`ssmkit.layers.bimamba`)."""

from __future__ import annotations

import torch
from timm.layers import DropPath, Mlp
from torch import nn

from ssmkit.layers.bimamba import BiMambaV2
from ssmkit.layers.mixer import Mixer
from ssmkit.layers.norms import RMSNorm
from ssmkit.registry import create_mixer, mixer_class

Tensor = torch.Tensor

__all__ = ["BiMambaV2", "VisionBlock", "make_mixer"]


def make_mixer(name: str, d_model: int, **kwargs) -> Mixer:
    """A mixer of ssmkit's registry ("bimamba_v2", "hydra", "attention", ...) that sees the whole image: a causal
    family that can be bidirectional by itself gets its `noncausal_kwargs` (attention: a ViT's)."""
    return create_mixer(name, d_model, **{**(mixer_class(name).noncausal_kwargs or {}), **kwargs})


class VisionBlock(nn.Module):
    """Pre-norm residual block with the residual stream kept in float32 (Vim's `residual_in_fp32`):

        x = x + drop_path(mixer(norm(x)));   x = x + drop_path(mlp(mlp_norm(x)))     (MLP only if mlp_ratio > 0)

    x: (B, L, D) float32 -> (B, L, D) float32.
    """

    def __init__(
        self, mixer: Mixer, d_model: int, mlp_ratio: float = 0.0, drop_path: float = 0.0, norm_eps: float = 1e-5
    ) -> None:
        super().__init__()
        self.norm = RMSNorm(d_model, eps=norm_eps)
        self.mixer = mixer
        self.mlp_norm = RMSNorm(d_model, eps=norm_eps) if mlp_ratio > 0 else None
        self.mlp = Mlp(d_model, int(mlp_ratio * d_model)) if mlp_ratio > 0 else None
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.mixer(self.norm(x))).float()
        if self.mlp is not None:
            x = x + self.drop_path(self.mlp(self.mlp_norm(x))).float()
        return x
