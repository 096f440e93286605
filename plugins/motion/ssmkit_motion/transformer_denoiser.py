"""The baseline denoiser, MLD-style (Chen et al., CVPR 2023, `SkipTransformerEncoder`): the condition (timestep +
label embedding) as one token before the latent tokens, learned position embeddings, pre-norm Transformer encoder
layers in a U-shape with long skips (input blocks, a middle block, output blocks each taking the matching input
block's output by concatenation and a linear map), a final norm and a zero-initialised linear map to the noise.
`matched_width` picks its width so that its parameter count matches another denoiser's."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ssmkit_motion.models import n_parameters
from ssmkit_motion.motion_mamba import Conditioning

Tensor = torch.Tensor


class TransformerDenoiser(nn.Module):
    """z (B, N, d_latent), t (B,), labels (B,) -> noise (B, N, d_latent); n_layers odd (in, middle, out)."""

    def __init__(
        self, d_latent: int, n_classes: int, max_tokens: int, d_model: int = 64, n_layers: int = 5, n_heads: int = 4
    ) -> None:
        super().__init__()
        if n_layers % 2 == 0 or d_model % n_heads:
            raise ValueError(
                f"need odd n_layers and d_model divisible by n_heads; got {n_layers}, {d_model}, {n_heads}"
            )

        def layer() -> nn.TransformerEncoderLayer:
            return nn.TransformerEncoderLayer(d_model, n_heads, 2 * d_model, 0.0, batch_first=True, norm_first=True)

        self.conditioning = Conditioning(n_classes, d_model)
        self.in_proj = nn.Linear(d_latent, d_model)
        self.position = nn.Parameter(torch.randn(max_tokens + 1, d_model) * 0.02)
        self.down = nn.ModuleList(layer() for _ in range(n_layers // 2))
        self.mid = layer()
        self.up = nn.ModuleList(layer() for _ in range(n_layers // 2))
        self.skips = nn.ModuleList(nn.Linear(2 * d_model, d_model) for _ in range(n_layers // 2))
        self.norm = nn.LayerNorm(d_model)
        self.out_proj = nn.Linear(d_model, d_latent)
        nn.init.zeros_(self.out_proj.weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, z: Tensor, t: Tensor, labels: Tensor) -> Tensor:
        x = torch.cat([self.conditioning(t, labels)[:, None], self.in_proj(z)], 1)
        x = x + self.position[: x.shape[1]]
        skipped = []
        for layer in self.down:
            x = layer(x)
            skipped.append(x)
        x = self.mid(x)
        for layer, skip in zip(self.up, self.skips, strict=True):
            x = layer(skip(torch.cat([x, skipped.pop()], -1)))
        return self.out_proj(self.norm(x[:, 1:]))


def matched_width(build: Callable[[int], nn.Module], target: int, step: int, low: int = 8, high: int = 1024) -> int:
    """The multiple of `step` in [low, high] whose `build(width)` has the parameter count closest to `target` (the
    count grows with the width: the search stops at the first width over the target)."""
    best, best_gap = step, float("inf")
    for width in range(max(step, low - low % step), high + 1, step):
        gap = n_parameters(build(width)) - target
        if abs(gap) < best_gap:
            best, best_gap = width, abs(gap)
        if gap > 0:
            break
    return best
