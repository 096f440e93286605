"""Image models on one ViT-style trunk, registered in timm's registry: Vim, Hydra and a matched ViT.

    tokens = patch_embed(image)                              (B, N, D)   N = (H / patch) * (W / patch)
    tokens = insert(tokens, cls, at cls_index) + pos_embed   (B, N + 1, D)   (no class token: mean pooling)
    tokens = blocks(tokens)                                  residual stream in float32
    logits = head(norm(tokens)[:, cls_index])                (B, num_classes)

- Vim (Zhu et al., 2024, "Vision Mamba"): `bimamba_v2` mixer, no MLP, depth 24, class token in the middle.
- Hydra (Hwang et al., 2024): the same trunk with ssmkit's `hydra` mixer.
- ViT baseline (`vit_matched_*`): the same trunk with non-causal attention (no rotary: the absolute position
  embedding alone, as in ViT) and a GELU MLP, depth 12 and class token first, as DeiT-Ti/S/B beside Vim-Ti/S/B.

Sizes: tiny/small/base of the Vim paper (D = 192/384/768) at 224 px with patch 16, and `*_test_patch4_28`
CPU variants (D = 64, MNIST-sized: 1 channel, 28 px, 10 classes). No weights are published here: every
`pretrained_cfg` has no url, so `pretrained=True` needs a local file,
`timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file="weights.pth"))`
(timm loads it with `weights_only=True`). Weights trained at another image size load into a model built with
`img_size=...`: the position embedding's patch grid is resampled (`resample_pos_embed`), the class token's
entry lifted out of the middle of the sequence first and put back in the middle of the new one.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import PatchEmbed, resample_abs_pos_embed, trunc_normal_
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from ssmkit.layers.mixer import no_weight_decay
from ssmkit.layers.norms import RMSNorm
from ssmkit_vision.layers import VisionBlock, make_mixer

Tensor = torch.Tensor

CLS_POSITIONS = ("middle", "first", "none")


class SequenceImageModel(nn.Module):
    """Patch tokens through a stack of sequence-mixer blocks: images (B, C, H, W) -> logits (B, num_classes)."""

    def __init__(
        self,
        img_size: int | tuple[int, int] = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        num_classes: int = 1000,
        embed_dim: int = 192,
        depth: int = 24,
        mixer: str = "bimamba_v2",
        mixer_kwargs: dict[str, Any] | None = None,
        mlp_ratio: float = 0.0,
        cls_position: str = "middle",
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        if any(s % patch_size for s in img_size):
            raise ValueError(
                f"img_size {img_size} is not divisible by patch_size {patch_size}; resize or pad the images "
                f"(the classify data module's `fit: resize|pad`) or pick another img_size"
            )
        if cls_position not in CLS_POSITIONS:
            raise ValueError(f"cls_position must be one of {CLS_POSITIONS}, got {cls_position!r}")
        self.num_classes, self.in_chans, self.img_size = num_classes, in_chans, img_size
        self.embed_dim = self.num_features = embed_dim
        self.cls_position = cls_position
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        n_patches = self.patch_embed.num_patches
        self.num_prefix_tokens = 0 if cls_position == "none" else 1
        self.cls_index = cls_index(cls_position, n_patches)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if self.num_prefix_tokens else None
        self.pos_embed = nn.Parameter(torch.zeros(1, n_patches + self.num_prefix_tokens, embed_dim))
        rates = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.ModuleList(
            VisionBlock(make_mixer(mixer, embed_dim, **(mixer_kwargs or {})), embed_dim, mlp_ratio, rate, norm_eps)
            for rate in rates
        )
        self.norm = RMSNorm(embed_dim, eps=norm_eps)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self._init_weights(depth)

    def _init_weights(self, depth: int) -> None:
        """Vim's: truncated normal (std 0.02) position embedding, class token and head; each mixer's out_proj
        scaled by 1 / sqrt(depth) (mamba_ssm's prenorm-residual rescaling); the mixers' own SSM inits kept."""
        trunc_normal_(self.pos_embed, std=0.02)
        if self.cls_token is not None:
            trunc_normal_(self.cls_token, std=0.02)
        if isinstance(self.head, nn.Linear):
            trunc_normal_(self.head.weight, std=0.02)
            nn.init.zeros_(self.head.bias)
        with torch.no_grad():
            for block in self.blocks:
                block.mixer.out_proj.weight /= math.sqrt(depth)
        no_weight_decay(*[p for p in (self.pos_embed, self.cls_token) if p is not None])

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        """timm's optimiser factory reads this (ssmkit's reads the `_optim` tags)."""
        return {"pos_embed", "cls_token"}

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.head = nn.Linear(self.embed_dim, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: Tensor) -> Tensor:
        """images (B, C, H, W) -> normalised tokens (B, N + prefix, D), the class token at `cls_index`."""
        self._check_input(x)
        tokens = self.patch_embed(x)
        if self.cls_token is not None:
            cls = self.cls_token.expand(tokens.shape[0], -1, -1)
            tokens = insert_token(tokens, cls, self.cls_index)
        h = (tokens + self.pos_embed).float()
        for block in self.blocks:
            h = block(h)
        return self.norm(h)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """tokens (B, L, D) -> logits (B, num_classes), or the pooled features (B, D) with `pre_logits`."""
        pooled = x.mean(1) if self.cls_index is None else x[:, self.cls_index]
        pooled = self.head_drop(pooled)
        return pooled if pre_logits else self.head(pooled)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))

    def _check_input(self, x: Tensor) -> None:
        expected = (self.in_chans, *self.img_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"expected images of shape (B, {', '.join(map(str, expected))}), got {tuple(x.shape)}; "
                "resize or pad them to the model's img_size (the classify data module's `fit: resize|pad`)"
            )


def cls_index(cls_position: str, n_patches: int) -> int | None:
    """Where the class token sits among `n_patches` patch tokens (None: no class token)."""
    return {"middle": n_patches // 2, "first": 0, "none": None}[cls_position]


def insert_token(tokens: Tensor, token: Tensor, index: int) -> Tensor:
    """tokens (B, N, D), token (B, 1, D) -> (B, N + 1, D) with `token` at position `index`."""
    return torch.cat([tokens[:, :index], token, tokens[:, index:]], dim=1)


def resample_pos_embed(pos_embed: Tensor, model: SequenceImageModel) -> Tensor:
    """A checkpoint's position embedding (1, N_old + prefix, D), from a square patch grid with the class token
    where `model.cls_position` puts it for that grid -> `model`'s shape (1, N + prefix, D).

    The patch entries are resampled as a grid (timm's `resample_abs_pos_embed`, bicubic); the class token's
    entry is taken out at its old index (the middle of the old sequence for Vim) and inserted at the model's.
    """
    prefix, n_old = model.num_prefix_tokens, pos_embed.shape[1] - model.num_prefix_tokens
    side = math.isqrt(n_old)
    if side * side != n_old or pos_embed.shape[-1] != model.embed_dim:
        raise ValueError(
            f"cannot resample a position embedding of shape {tuple(pos_embed.shape)} to "
            f"{tuple(model.pos_embed.shape)}: expected {model.embed_dim} channels and a square grid of patches "
            f"plus {prefix} class token(s)"
        )
    index = cls_index(model.cls_position, n_old)
    patches = pos_embed if index is None else torch.cat([pos_embed[:, :index], pos_embed[:, index + 1 :]], dim=1)
    patches = resample_abs_pos_embed(patches, list(model.patch_embed.grid_size), [side, side], num_prefix_tokens=0)
    return patches if index is None else insert_token(patches, pos_embed[:, index : index + 1], model.cls_index)


def checkpoint_filter_fn(state_dict: dict[str, Tensor], model: SequenceImageModel) -> dict[str, Tensor]:
    """timm's `pretrained_filter_fn`: adapts a checkpoint of another image size to `model` (position embedding)."""
    pos_embed = state_dict.get("pos_embed")
    if pos_embed is None or pos_embed.shape == model.pos_embed.shape:
        return state_dict
    return {**state_dict, "pos_embed": resample_pos_embed(pos_embed, model)}


ARCHS: dict[str, dict[str, Any]] = {
    "vim": {"mixer": "bimamba_v2", "mixer_kwargs": {"d_state": 16, "d_conv": 4, "expand": 2}, "depth": 24},
    "hydra": {"mixer": "hydra", "mixer_kwargs": {"d_state": 64, "d_conv": 7, "expand": 2, "headdim": 64}, "depth": 24},
    "vit_matched": {"mixer": "attention", "mlp_ratio": 4.0, "depth": 12, "cls_position": "first"},
}
WIDTHS = {"tiny": 192, "small": 384, "base": 768}
# The CPU variants: D = 64, SSM state 8, 4 mixer blocks (ViT: 3 blocks with an MLP, about as many parameters).
TEST_ARCHS: dict[str, dict[str, Any]] = {
    "vim": {"mixer_kwargs": {"d_state": 8, "d_conv": 4, "expand": 2}, "depth": 4},
    "hydra": {"mixer_kwargs": {"d_state": 8, "d_conv": 7, "expand": 2, "headdim": 16}, "depth": 4},
    "vit_matched": {"mixer_kwargs": {"n_heads": 4, "rope": False}, "depth": 3},
}


def _create(variant: str, pretrained: bool, **kwargs: Any) -> SequenceImageModel:
    arch, size = variant.split("_patch")[0].rsplit("_", 1)
    config = {**ARCHS[arch], "embed_dim": 64 if size == "test" else WIDTHS[size]}
    if size == "test":
        config.update(TEST_ARCHS[arch], patch_size=4)
    elif arch == "vit_matched":
        config["mixer_kwargs"] = {"n_heads": WIDTHS[size] // 64, "rope": False}
    return build_model_with_cfg(
        SequenceImageModel, variant, pretrained, pretrained_filter_fn=checkpoint_filter_fn, **{**config, **kwargs}
    )


def _cfg(**kwargs: Any) -> dict[str, Any]:
    return {
        "url": "",
        "num_classes": 1000,
        "input_size": (3, 224, 224),
        "pool_size": None,
        "crop_pct": 0.875,
        "interpolation": "bicubic",
        "fixed_input_size": True,
        "mean": IMAGENET_DEFAULT_MEAN,
        "std": IMAGENET_DEFAULT_STD,
        "first_conv": "patch_embed.proj",
        "classifier": "head",
        "license": "apache-2.0",
        **kwargs,
    }


def _test_cfg() -> dict[str, Any]:
    return _cfg(num_classes=10, input_size=(1, 28, 28), crop_pct=1.0, mean=(0.5,), std=(0.5,))


default_cfgs = generate_default_cfgs(
    {
        **{f"vim_{size}_patch16_224": _cfg(paper_ids="arXiv:2401.09417") for size in WIDTHS},
        **{f"hydra_{size}_patch16_224": _cfg(paper_ids="arXiv:2407.09941") for size in WIDTHS},
        **{f"vit_matched_{size}_patch16_224": _cfg(paper_ids="arXiv:2012.12877") for size in WIDTHS},
        **{f"{arch}_test_patch4_28": _test_cfg() for arch in ARCHS},
    }
)


@register_model
def vim_tiny_patch16_224(pretrained: bool = False, **kwargs: Any) -> SequenceImageModel:
    """Vim-Ti (7M parameters): D = 192, 24 bimamba-v2 blocks, class token in the middle."""
    return _create("vim_tiny_patch16_224", pretrained, **kwargs)


@register_model
def vim_small_patch16_224(pretrained: bool = False, **kwargs: Any) -> SequenceImageModel:
    """Vim-S (26M parameters): D = 384."""
    return _create("vim_small_patch16_224", pretrained, **kwargs)


@register_model
def vim_base_patch16_224(pretrained: bool = False, **kwargs: Any) -> SequenceImageModel:
    """Vim-B (98M parameters): D = 768."""
    return _create("vim_base_patch16_224", pretrained, **kwargs)


@register_model
def vim_test_patch4_28(pretrained: bool = False, **kwargs: Any) -> SequenceImageModel:
    """CPU-sized Vim for 28 px grey images: D = 64, 4 blocks, state 8."""
    return _create("vim_test_patch4_28", pretrained, **kwargs)


@register_model
def hydra_tiny_patch16_224(pretrained: bool = False, **kwargs: Any) -> SequenceImageModel:
    """Hydra on the Vim-Ti trunk: D = 192, 24 Hydra blocks (state 64, head dim 64)."""
    return _create("hydra_tiny_patch16_224", pretrained, **kwargs)


@register_model
def hydra_small_patch16_224(pretrained: bool = False, **kwargs: Any) -> SequenceImageModel:
    return _create("hydra_small_patch16_224", pretrained, **kwargs)


@register_model
def hydra_base_patch16_224(pretrained: bool = False, **kwargs: Any) -> SequenceImageModel:
    return _create("hydra_base_patch16_224", pretrained, **kwargs)


@register_model
def hydra_test_patch4_28(pretrained: bool = False, **kwargs: Any) -> SequenceImageModel:
    """CPU-sized Hydra for 28 px grey images: D = 64, 4 blocks, state 8, head dim 16."""
    return _create("hydra_test_patch4_28", pretrained, **kwargs)


@register_model
def vit_matched_tiny_patch16_224(pretrained: bool = False, **kwargs: Any) -> SequenceImageModel:
    """The ViT baseline beside Vim-Ti (DeiT-Ti shape): D = 192, 12 attention + MLP blocks, 3 heads."""
    return _create("vit_matched_tiny_patch16_224", pretrained, **kwargs)


@register_model
def vit_matched_small_patch16_224(pretrained: bool = False, **kwargs: Any) -> SequenceImageModel:
    return _create("vit_matched_small_patch16_224", pretrained, **kwargs)


@register_model
def vit_matched_base_patch16_224(pretrained: bool = False, **kwargs: Any) -> SequenceImageModel:
    return _create("vit_matched_base_patch16_224", pretrained, **kwargs)


@register_model
def vit_matched_test_patch4_28(pretrained: bool = False, **kwargs: Any) -> SequenceImageModel:
    """CPU-sized ViT baseline: D = 64, 3 attention + MLP blocks, 4 heads."""
    return _create("vit_matched_test_patch4_28", pretrained, **kwargs)
