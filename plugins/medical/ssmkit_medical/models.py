"""MedMamba (Yue & Li, 2024) in timm's registry: a hierarchical classifier of SS-Conv-SSM blocks.

    x = LayerNorm(Conv2d(k = s = patch)(images))             (B, H/p, W/p, dims[0])   channel-last
    per stage i: depths[i] x SSConvSSM(dims[i]), then PatchMerging2D (not after the last)
    logits = head(mean over H, W)                             (B, num_classes)

SSConvSSM: the channels split in half; the left half through a conv branch (BN, 3x3 conv, BN, ReLU, 3x3 conv, BN,
ReLU, 1x1 conv, ReLU), the right half through LayerNorm, `SS2D` (four-direction selective scan) and drop-path;
the halves concatenated, shuffled (`channel_shuffle`, 2 groups) and added to the input.

Sizes: `medmamba_tiny_patch4_224`, the released MedMamba.py defaults (depths 2-2-4-2, dims 96-768, state 16,
drop-path 0.1); `medmamba_test_patch2_28`, the CPU variant for 28 px MedMNIST images (depths 1-1-2, dims 32-128,
state 8). Deviations: an odd feature map is zero-padded before patch merging (Swin's rule; the release fails on
odd sizes); weights initialised as the release's VSSM does. No weights are published: `pretrained=True` needs a
local file (`pretrained_cfg_overlay=dict(file=...)`). Importing this module registers the models:

    import ssmkit_medical.models  # noqa: F401
    timm.create_model("medmamba_test_patch2_28", num_classes=2, in_chans=1)
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from timm.layers import DropPath, trunc_normal_
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from ssmkit_medical.ss2d import SS2D

Tensor = torch.Tensor


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """x (B, H, W, C) -> (B, H, W, C) with the channels of the `groups` interleaved (ShuffleNet's shuffle)."""
    *lead, channels = x.shape
    return x.reshape(*lead, groups, channels // groups).transpose(-1, -2).reshape(*lead, channels)


class SSConvSSM(nn.Module):
    """MedMamba's block: (B, H, W, dim) -> (B, H, W, dim); dim must be even."""

    def __init__(self, dim: int, d_state: int = 16, drop_path: float = 0.0, **ss2d_kwargs: Any) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"SSConvSSM splits the channels in half; dim must be even, got {dim}")
        half = dim // 2
        self.norm = nn.LayerNorm(half, eps=1e-6)
        self.ss2d = SS2D(half, d_state=d_state, **ss2d_kwargs)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.conv = nn.Sequential(
            nn.BatchNorm2d(half),
            nn.Conv2d(half, half, 3, padding=1),
            nn.BatchNorm2d(half),
            nn.ReLU(),
            nn.Conv2d(half, half, 3, padding=1),
            nn.BatchNorm2d(half),
            nn.ReLU(),
            nn.Conv2d(half, half, 1),
            nn.ReLU(),
        )

    def forward(self, x: Tensor) -> Tensor:
        left, right = x.chunk(2, dim=-1)
        right = self.drop_path(self.ss2d(self.norm(right)))
        left = self.conv(left.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return channel_shuffle(torch.cat([left, right], dim=-1), groups=2) + x


class PatchMerging2D(nn.Module):
    """(B, H, W, C) -> (B, ceil(H/2), ceil(W/2), 2C): each 2x2 neighbourhood concatenated, LayerNorm, Linear."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        x = F.pad(x, (0, 0, 0, x.shape[2] % 2, 0, x.shape[1] % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x))


class MedMamba(nn.Module):
    """images (B, in_chans, H, W) -> logits (B, num_classes); any H, W of at least `patch_size`."""

    def __init__(
        self,
        patch_size: int = 4,
        in_chans: int = 3,
        num_classes: int = 1000,
        depths: tuple[int, ...] = (2, 2, 4, 2),
        dims: tuple[int, ...] = (96, 192, 384, 768),
        d_state: int = 16,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        ss2d_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if len(depths) != len(dims) or any(b != 2 * a for a, b in zip(dims, dims[1:], strict=False)):
            raise ValueError(f"dims must double from stage to stage, one per depth; got depths {depths}, dims {dims}")
        self.num_classes, self.in_chans = num_classes, in_chans
        self.num_features = dims[-1]
        self.patch_embed = nn.Conv2d(in_chans, dims[0], patch_size, stride=patch_size)
        self.patch_norm = nn.LayerNorm(dims[0])
        self.pos_drop = nn.Dropout(drop_rate)
        rates = iter(torch.linspace(0, drop_path_rate, sum(depths)).tolist())
        self.stages = nn.ModuleList(
            nn.Sequential(
                *(SSConvSSM(dim, d_state, next(rates), **(ss2d_kwargs or {})) for _ in range(depth)),
                *([PatchMerging2D(dim)] if i < len(dims) - 1 else []),
            )
            for i, (depth, dim) in enumerate(zip(depths, dims, strict=True))
        )
        self.head = nn.Linear(dims[-1], num_classes) if num_classes > 0 else nn.Identity()
        self.apply(_init_weights)

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: Tensor) -> Tensor:
        """images (B, C, H, W) -> features (B, h, w, dims[-1]), channel-last."""
        if x.dim() != 4 or x.shape[1] != self.in_chans:
            raise ValueError(
                f"{type(self).__name__} takes images (B, {self.in_chans}, H, W) ({_channels(self.in_chans)}), got "
                f"{tuple(x.shape)}: build the model with in_chans={x.shape[1] if x.dim() == 4 else '?'}"
                " or convert the images"
            )
        x = self.patch_norm(self.patch_embed(x).permute(0, 2, 3, 1))
        x = self.pos_drop(x)
        for stage in self.stages:
            x = stage(x)
        return x

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """features (B, h, w, D) -> logits (B, num_classes), or the pooled features (B, D) with `pre_logits`."""
        pooled = x.mean(dim=(1, 2))
        return pooled if pre_logits else self.head(pooled)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


def _channels(n: int) -> str:
    return {1: "single-channel", 3: "RGB"}.get(n, f"{n} channels")


def _init_weights(module: nn.Module) -> None:
    """The release's: truncated normal Linear weights (std 0.02), zero biases; Kaiming convolutions."""
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv2d):
        nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")


VARIANTS: dict[str, dict[str, Any]] = {
    "medmamba_tiny_patch4_224": {"patch_size": 4, "depths": (2, 2, 4, 2), "dims": (96, 192, 384, 768)},
    "medmamba_test_patch2_28": {
        "patch_size": 2,
        "depths": (1, 1, 2),
        "dims": (32, 64, 128),
        "d_state": 8,
        "drop_path_rate": 0.0,
    },
}


def _create(variant: str, pretrained: bool, **kwargs: Any) -> MedMamba:
    return build_model_with_cfg(MedMamba, variant, pretrained, **{**VARIANTS[variant], **kwargs})


def _cfg(**kwargs: Any) -> dict[str, Any]:
    return {
        "url": "",
        "num_classes": 1000,
        "input_size": (3, 224, 224),
        "pool_size": None,
        "crop_pct": 1.0,
        "interpolation": "bicubic",
        "mean": (0.5, 0.5, 0.5),
        "std": (0.5, 0.5, 0.5),
        "first_conv": "patch_embed",
        "classifier": "head",
        "license": "apache-2.0",
        "paper_ids": "arXiv:2403.03849",
        **kwargs,
    }


default_cfgs = generate_default_cfgs(
    {
        "medmamba_tiny_patch4_224": _cfg(),
        "medmamba_test_patch2_28": _cfg(num_classes=2, input_size=(1, 28, 28), mean=(0.5,), std=(0.5,)),
    }
)


@register_model
def medmamba_tiny_patch4_224(pretrained: bool = False, **kwargs: Any) -> MedMamba:
    """MedMamba-T as released: depths 2-2-4-2, dims 96-192-384-768, SS2D state 16, patch 4."""
    return _create("medmamba_tiny_patch4_224", pretrained, **kwargs)


@register_model
def medmamba_test_patch2_28(pretrained: bool = False, **kwargs: Any) -> MedMamba:
    """CPU MedMamba for 28 px MedMNIST: depths 1-1-2, dims 32-64-128, state 8, patch 2 (14x14 tokens)."""
    return _create("medmamba_test_patch2_28", pretrained, **kwargs)
