"""Segmentation networks: U-Mamba-bot and -enc (Ma et al., 2024) on MONAI's DynUNet, VM-UNet (Ruan et al., 2024,
`ssmkit_medical.vmunet`), and MONAI's U-Nets as baselines.

U-Mamba-bot is MONAI's `DynUNet` with residual blocks (nnU-Net's residual-encoder U-Net: MONAI's `UnetResBlock`
encoder, `UnetUpBlock` decoder, `UnetOutBlock` head) with one `MambaLayer` after the bottleneck block, no residual
around it, as in U-Mamba's `UMambaBot`. U-Mamba-enc has a `MambaLayer` after every encoder stage (the input block,
each downsampling block and the bottleneck), as U-Mamba's `UMambaEnc` after each stage of its residual encoder; the
skips carry the Mamba layers' outputs. The baseline `dynunet` is the same network without the Mamba layers, so
they differ by those layers alone; `unet` is MONAI's `UNet` (residual units).

MambaLayer: the feature map (B, C, *S) flattened to tokens, LayerNorm, core's Mamba, reshaped back; in float32
(U-Mamba turns autocast off there: NaNs under AMP, its issues #8, #37). When the bottleneck has no more spatial
positions than channels (tokens <= channels, from the training patch size) it scans across channels instead
(channel tokens, d_model = the number of positions), as U-Mamba-enc does; that model then needs inputs of the
patch size, which sliding-window inference gives it. Each layer decides for itself, from its own level's size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from monai.networks.nets import DynUNet, UNet
from torch import nn

from ssmkit import create_mixer
from ssmkit_medical.vmunet import VMUNet

Tensor = torch.Tensor
SEGMENTERS = ("umamba_bot", "umamba_enc", "vmunet", "dynunet", "unet")


def to_tokens(x: Tensor, channel_token: bool) -> Tensor:
    """x (B, C, *S) -> tokens: (B, prod(S), C) spatial tokens, or (B, C, prod(S)) with `channel_token`."""
    flat = x.flatten(2)
    return flat if channel_token else flat.transpose(1, 2)


def from_tokens(tokens: Tensor, shape: Sequence[int], channel_token: bool) -> Tensor:
    """The inverse of `to_tokens`: tokens -> (B, C, *S) of `shape`."""
    return (tokens if channel_token else tokens.transpose(1, 2)).reshape(*shape)


class MambaLayer(nn.Module):
    """(B, channels, *S) -> (B, channels, *S) with prod(S) = `tokens`: LayerNorm and Mamba over the tokens."""

    def __init__(self, channels: int, tokens: int, channel_token: bool | None = None, **mamba_kwargs: Any) -> None:
        """channel_token: scan across channels (None: exactly when tokens <= channels)."""
        super().__init__()
        self.channels, self.tokens = channels, tokens
        self.channel_token = tokens <= channels if channel_token is None else channel_token
        d_model = tokens if self.channel_token else channels
        self.norm = nn.LayerNorm(d_model)
        self.mamba = create_mixer("mamba", d_model, **mamba_kwargs)

    def forward(self, x: Tensor) -> Tensor:
        if self.channel_token and math.prod(x.shape[2:]) != self.tokens:
            raise ValueError(
                f"this Mamba layer scans across channels with {self.tokens} positions per channel, got a feature map "
                f"{tuple(x.shape[2:])}: feed inputs of the training patch size (sliding-window inference does)"
            )
        with torch.autocast(device_type=x.device.type, enabled=False):
            tokens = to_tokens(x.float(), self.channel_token)
            out = from_tokens(self.mamba(self.norm(tokens)), x.shape, self.channel_token)
        return out.to(x.dtype)


class UMambaBot(DynUNet):
    """DynUNet (residual blocks) with a MambaLayer after the bottleneck: images (B, C_in, *patch) -> logits."""

    def __init__(
        self,
        *args: Any,
        patch_size: Sequence[int],
        channel_token: bool | None = None,
        mamba_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """args, kwargs: DynUNet's; patch_size: the training input size (sets the bottleneck's token count)."""
        # read by get_bottleneck(), which DynUNet's __init__ calls
        self.patch_size, self.channel_token = tuple(patch_size), channel_token
        self.mamba_kwargs = mamba_kwargs or {}
        super().__init__(*args, **kwargs)

    def mamba_layer(self, level: int) -> MambaLayer:
        """The Mamba layer after encoder level `level` (0: the input block), sized by that level's feature map."""
        scale = [
            math.prod(s if isinstance(s, int) else s[d] for s in self.strides[: level + 1])
            for d in range(len(self.patch_size))
        ]
        if any(p % s for p, s in zip(self.patch_size, scale, strict=True)):
            raise ValueError(f"patch_size {list(self.patch_size)} must be divisible by the total stride {scale}")
        tokens = math.prod(p // s for p, s in zip(self.patch_size, scale, strict=True))
        return MambaLayer(self.filters[level], tokens, self.channel_token, **self.mamba_kwargs)

    def get_bottleneck(self) -> nn.Module:
        return nn.Sequential(super().get_bottleneck(), self.mamba_layer(len(self.filters) - 1))


class UMambaEnc(UMambaBot):
    """DynUNet (residual blocks) with a MambaLayer after every encoder stage: the input block, each downsampling
    block and the bottleneck (UMambaBot's). channel_token None: each layer by its own level's size."""

    def get_input_block(self) -> nn.Module:
        return nn.Sequential(super().get_input_block(), self.mamba_layer(0))

    def get_downsamples(self) -> nn.ModuleList:
        blocks = super().get_downsamples()
        return nn.ModuleList(nn.Sequential(block, self.mamba_layer(i + 1)) for i, block in enumerate(blocks))


def create_segmenter(
    name: str,
    in_channels: int,
    n_classes: int,
    patch_size: Sequence[int],
    filters: Sequence[int] = (16, 32, 64, 128),
    **kwargs: Any,
) -> nn.Module:
    """`name` in SEGMENTERS, 2D or 3D by len(patch_size) (vmunet: 2D only); each level after the first halves the
    size. kwargs go to the network (UMambaBot / UMambaEnc: channel_token, mamba_kwargs; VMUNet: depths,
    decoder_depths, patch, d_state, ..., with `filters` as its stage dims; DynUNet / UNet: their own)."""
    levels, spatial_dims = len(filters), len(patch_size)
    if name == "vmunet":
        if spatial_dims != 2:
            raise ValueError(f"vmunet is 2D; got patch_size {list(patch_size)}")
        network = VMUNet(in_channels, n_classes, dims=filters, **{"depths": (1,) * levels, **kwargs})
        if any(p % network.multiple for p in patch_size):
            raise ValueError(f"vmunet needs a patch_size divisible by {network.multiple}, got {list(patch_size)}")
        return network
    if name == "unet":
        strides = (2,) * (levels - 1)
        return UNet(spatial_dims, in_channels, n_classes, channels=filters, strides=strides, num_res_units=2, **kwargs)
    common = {
        "spatial_dims": spatial_dims,
        "in_channels": in_channels,
        "out_channels": n_classes,
        "kernel_size": [3] * levels,
        "strides": [1] + [2] * (levels - 1),
        "upsample_kernel_size": [2] * (levels - 1),
        "filters": list(filters),
        "res_block": True,
    }
    if name == "dynunet":
        return DynUNet(**common, **kwargs)
    if name in ("umamba_bot", "umamba_enc"):
        network = UMambaBot if name == "umamba_bot" else UMambaEnc
        return network(**common, patch_size=patch_size, **kwargs)
    raise ValueError(f"unknown segmentation model {name!r}; known: {', '.join(SEGMENTERS)}")
