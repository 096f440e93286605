"""VM-UNet (Ruan, Li & Xiang, 2024): a U-shaped network of VSS blocks, 2D.

    x = LayerNorm(Conv2d(k = s = patch)(images))              (B, H/p, W/p, dims[0])   channel-last
    encoder stage i: depths[i] VSS blocks, then PatchMerging2D (not after the last)   dims[i] -> dims[i + 1]
    decoder stage j (deepest first): + skip (additive), PatchExpand2D (not in the first), decoder_depths[j] VSS blocks
    logits = Conv2d(1x1)(FinalPatchExpand2D(x))                (B, n_classes, H, W)

VSS block: x + drop_path(SS2D(LayerNorm(x))), with `ssmkit_medical.ss2d.SS2D` (the four-direction cross-scan, each
direction its own selective-scan parameters, merged by summation); no MLP, as in VM-UNet. The skips are the
encoder stages' inputs, added to the decoder stages' inputs as the release's `forward_features_up` does: decoder
stage j > 0 receives x + the input of encoder stage (n - j); the patch embedding's output is not used as a skip
(the release's choice). PatchMerging2D is MedMamba's (`ssmkit_medical.models`, Swin's 2x2 concatenation).

Sizes: the paper's VM-UNet is patch 4, dims 96-192-384-768, depths 2-2-2-2, decoder depths 2-2-2-1, SS2D state
16, drop-path 0.2 (initialised from VMamba-S weights, which this port does not load):
`VMUNet(1, 2, dims=(96, 192, 384, 768), depths=(2, 2, 2, 2), decoder_depths=(2, 2, 2, 1), drop_path_rate=0.2)`.
The defaults here are the CPU test size. Inputs must be divisible by patch * 2 ** (stages - 1) (32 for 4 stages);
the release repeats a grey image to 3 channels, this port takes `in_channels` as given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from timm.layers import DropPath
from torch import nn

from ssmkit_medical.models import PatchMerging2D, _init_weights
from ssmkit_medical.ss2d import SS2D

Tensor = torch.Tensor


class VSSBlock(nn.Module):
    """(B, H, W, dim) -> (B, H, W, dim): x + drop_path(SS2D(LayerNorm(x)))."""

    def __init__(self, dim: int, d_state: int = 16, drop_path: float = 0.0, **ss2d_kwargs: Any) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.ss2d = SS2D(dim, d_state=d_state, **ss2d_kwargs)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return x + self.drop_path(self.ss2d(self.norm(x)))


class PatchExpand2D(nn.Module):
    """(B, H, W, dim) -> (B, scale * H, scale * W, dim * scale / out_ratio): Linear to scale**2 * out channels,
    each pixel's channels spread over a scale x scale neighbourhood, LayerNorm. scale 2, out dim / 2: the decoder's
    patch expanding; scale 4, out dim / 4: the final one."""

    def __init__(self, dim: int, scale: int = 2) -> None:
        super().__init__()
        if dim % scale:
            raise ValueError(f"patch expanding by {scale} needs channels divisible by {scale}, got {dim}")
        self.scale, self.out = scale, dim // scale
        self.expand = nn.Linear(dim, scale * dim, bias=False)
        self.norm = nn.LayerNorm(self.out)

    def forward(self, x: Tensor) -> Tensor:
        batch, height, width, _ = x.shape
        s = self.scale
        x = self.expand(x).reshape(batch, height, width, s, s, self.out)  # (p1 p2 c), as the release's rearrange
        x = x.permute(0, 1, 3, 2, 4, 5).reshape(batch, height * s, width * s, self.out)
        return self.norm(x)


class VMUNet(nn.Module):
    """images (B, in_channels, H, W) -> logits (B, n_classes, H, W); H, W divisible by patch * 2 ** (stages - 1)."""

    def __init__(
        self,
        in_channels: int = 1,
        n_classes: int = 2,
        dims: Sequence[int] = (8, 16, 32),
        depths: Sequence[int] = (1, 1, 1),
        decoder_depths: Sequence[int] | None = None,
        patch: int = 4,
        d_state: int = 4,
        drop_path_rate: float = 0.0,
        ss2d_kwargs: dict[str, Any] | None = None,
    ) -> None:
        """dims, depths: per encoder stage (dims doubling); decoder_depths: per decoder stage, deepest first
        (default: depths reversed)."""
        super().__init__()
        dims, depths = list(dims), list(depths)
        decoder_depths = list(decoder_depths) if decoder_depths is not None else depths[::-1]
        if not len(dims) == len(depths) == len(decoder_depths) or dims[1:] != [2 * d for d in dims[:-1]]:
            raise ValueError(
                f"VM-UNet needs dims doubling from stage to stage and one depth per stage; got dims {dims}, depths "
                f"{depths}, decoder_depths {decoder_depths}"
            )
        self.in_channels, self.patch = in_channels, patch
        self.multiple = patch * 2 ** (len(dims) - 1)
        kwargs = {"d_state": d_state, **(ss2d_kwargs or {})}
        rates = iter(torch.linspace(0, drop_path_rate, sum(depths) + sum(decoder_depths)).tolist())

        def blocks(dim: int, depth: int) -> list[nn.Module]:
            return [VSSBlock(dim, drop_path=next(rates), **kwargs) for _ in range(depth)]

        self.patch_embed = nn.Conv2d(in_channels, dims[0], patch, stride=patch)
        self.patch_norm = nn.LayerNorm(dims[0])
        last = len(dims) - 1
        self.encoder = nn.ModuleList(
            nn.Sequential(*blocks(dim, depth), *([PatchMerging2D(dim)] if i < last else []))
            for i, (dim, depth) in enumerate(zip(dims, depths, strict=True))
        )
        self.decoder = nn.ModuleList(
            nn.Sequential(*([PatchExpand2D(2 * dim)] if j > 0 else []), *blocks(dim, depth))
            for j, (dim, depth) in enumerate(zip(dims[::-1], decoder_depths, strict=True))
        )
        self.final_expand = PatchExpand2D(dims[0], scale=patch)
        self.head = nn.Conv2d(dims[0] // patch, n_classes, 1)
        self.apply(_init_weights)

    def forward(self, images: Tensor) -> Tensor:
        if images.dim() != 4 or images.shape[1] != self.in_channels:
            raise ValueError(f"VMUNet takes images (B, {self.in_channels}, H, W), got {tuple(images.shape)}")
        if any(s % self.multiple for s in images.shape[2:]):
            raise ValueError(
                f"VMUNet needs H and W divisible by {self.multiple} (patch {self.patch} and {len(self.encoder) - 1} "
                f"patch mergings), got {tuple(images.shape[2:])}: choose such a patch_size"
            )
        x = self.patch_norm(self.patch_embed(images).permute(0, 2, 3, 1))
        skips = []
        for stage in self.encoder:
            skips.append(x)
            x = stage(x)
        for j, stage in enumerate(self.decoder):
            x = stage(x if j == 0 else x + skips[-j])
        return self.head(self.final_expand(x).permute(0, 3, 1, 2))
