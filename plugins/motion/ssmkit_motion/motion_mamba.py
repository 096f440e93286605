"""Motion Mamba's denoiser (Zhang et al., ECCV 2024, "Motion Mamba: Efficient and Long Sequence Motion Generation").

The paper released no code; this follows its description, with the choices written down here and in the README:

- **HTM** (hierarchical temporal Mamba), `HTM(d_model, n_scans)`: an ensemble of `n_scans` isolated scans along
  time. The input (B, L, D) is projected to n_scans separate streams (B, L, n_scans, D); stream i is scanned by its
  own core `mamba` mixer (`ssmkit.registry.create_mixer("mamba", ...)`; the scan is the core's), forward in time
  for even i and backward (flip, scan, flip) for odd i, so that an ensemble sees both directions; the outputs are
  concatenated and projected back. Each scan sees only its own stream (a test checks it).
- **BSM** (bidirectional spatial Mamba), `BSM(d_model, d_spatial)`: within each frame, the D latent channels are a
  sequence: channel c becomes a d_spatial-wide step (its value times a learned vector, plus a learned embedding of
  c); one `mamba` scans channels 0..D-1 and another D-1..0, their sum (`forward + flip(backward(flip(u)))`, a test
  checks it) is mapped back to one value per channel.
- **Block**: x + HTM(norm(x + cond)), then x + BSM(norm(x)); `cond` (B, D) = the timestep embedding plus the label
  embedding (a learned "no label" row for classifier-free guidance), projected per block.
- **U-Net**: levels with 2N-1, 2N-3, ..., 3 scans on the way down, 1 at the bottleneck, and 3, ..., 2N-1 on the way
  up, each up block taking the matching down block's output through a long skip (concatenation and a linear map),
  as MLD's skip-connected Transformer does; the time axis is not resampled (the latent is short already).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ssmkit.layers.norms import RMSNorm
from ssmkit.registry import create_mixer

Tensor = torch.Tensor


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """Sinusoidal embedding of diffusion steps t: (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-torch.log(torch.tensor(max_period)) * torch.arange(half, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None]
    out = torch.cat([angles.cos(), angles.sin()], -1)
    return torch.nn.functional.pad(out, (0, dim % 2))


class Conditioning(nn.Module):
    """(t (B,), labels (B,), n_classes meaning "no label") -> (B, d_model)."""

    def __init__(self, n_classes: int, d_model: int) -> None:
        super().__init__()
        self.d_model = d_model
        self.time = nn.Sequential(nn.Linear(d_model, d_model), nn.SiLU(), nn.Linear(d_model, d_model))
        self.label = nn.Embedding(n_classes + 1, d_model)

    def forward(self, t: Tensor, labels: Tensor) -> Tensor:
        return self.time(timestep_embedding(t, self.d_model)) + self.label(labels)


class HTM(nn.Module):
    """Hierarchical temporal Mamba: (B, L, D) -> (B, L, D) by `n_scans` isolated scans (see the module doc)."""

    def __init__(self, d_model: int, n_scans: int, mamba_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.d_model, self.n_scans = d_model, n_scans
        self.in_proj = nn.Linear(d_model, n_scans * d_model)
        self.scans = nn.ModuleList(create_mixer("mamba", d_model, **(mamba_kwargs or {})) for _ in range(n_scans))
        self.out_proj = nn.Linear(n_scans * d_model, d_model)

    def scan(self, streams: Tensor) -> Tensor:
        """streams: (B, L, n_scans, D) -> (B, L, n_scans, D); stream i only through scan i."""
        outputs = []
        for i, mixer in enumerate(self.scans):
            u = streams[:, :, i]
            outputs.append(mixer(u) if i % 2 == 0 else mixer(u.flip(1)).flip(1))
        return torch.stack(outputs, 2)

    def forward(self, x: Tensor) -> Tensor:
        streams = self.in_proj(x).unflatten(-1, (self.n_scans, self.d_model))
        return self.out_proj(self.scan(streams).flatten(2))


class BSM(nn.Module):
    """Bidirectional spatial Mamba: (B, L, D) -> (B, L, D), scanning the D channels of each frame both ways."""

    def __init__(self, d_model: int, d_spatial: int = 8, mamba_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.value = nn.Parameter(torch.randn(d_spatial) / d_spatial**0.5)
        self.channel = nn.Parameter(torch.zeros(d_model, d_spatial))
        self.forward_scan = create_mixer("mamba", d_spatial, **(mamba_kwargs or {}))
        self.backward_scan = create_mixer("mamba", d_spatial, **(mamba_kwargs or {}))
        self.out_proj = nn.Linear(d_spatial, 1)

    def steps(self, x: Tensor) -> Tensor:
        """(B, L, D) -> channel sequences (B * L, D, d_spatial)."""
        return x.flatten(0, 1)[..., None] * self.value + self.channel

    def scan(self, u: Tensor) -> Tensor:
        """u: (N, D, d_spatial) -> forward scan + flip(backward scan of flip(u))."""
        return self.forward_scan(u) + self.backward_scan(u.flip(1)).flip(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.out_proj(self.scan(self.steps(x)))[..., 0].view_as(x)


class MotionMambaBlock(nn.Module):
    """x (B, L, D), cond (B, D) -> (B, L, D): x + HTM(norm(x + cond)), then x + BSM(norm(x))."""

    def __init__(self, d_model: int, n_scans: int, d_spatial: int, mamba_kwargs: dict[str, Any] | None) -> None:
        super().__init__()
        self.cond = nn.Linear(d_model, d_model)
        self.norm_t, self.norm_s = RMSNorm(d_model), RMSNorm(d_model)
        self.htm = HTM(d_model, n_scans, mamba_kwargs)
        self.bsm = BSM(d_model, d_spatial, mamba_kwargs)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        x = x + self.htm(self.norm_t(x + self.cond(cond)[:, None]))
        return x + self.bsm(self.norm_s(x))


class MotionMambaDenoiser(nn.Module):
    """Noise prediction: z (B, N, d_latent), t (B,), labels (B,) -> (B, N, d_latent); the U-Net of the module doc."""

    def __init__(
        self,
        d_latent: int,
        n_classes: int,
        d_model: int = 64,
        n_levels: int = 3,
        d_spatial: int = 8,
        mamba_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        scans = [2 * (n_levels - i) - 1 for i in range(n_levels)]  # 2N-1, ..., 3, 1

        def block(k: int) -> MotionMambaBlock:
            return MotionMambaBlock(d_model, k, d_spatial, mamba_kwargs)

        self.scans_per_level = scans
        self.conditioning = Conditioning(n_classes, d_model)
        self.in_proj = nn.Linear(d_latent, d_model)
        self.down = nn.ModuleList(block(k) for k in scans[:-1])
        self.mid = block(scans[-1])
        self.up = nn.ModuleList(block(k) for k in reversed(scans[:-1]))
        self.skips = nn.ModuleList(nn.Linear(2 * d_model, d_model) for _ in scans[:-1])
        self.norm = RMSNorm(d_model)
        self.out_proj = nn.Linear(d_model, d_latent)
        nn.init.zeros_(self.out_proj.weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, z: Tensor, t: Tensor, labels: Tensor) -> Tensor:
        cond = self.conditioning(t, labels)
        x = self.in_proj(z)
        skipped = []
        for block in self.down:
            x = block(x, cond)
            skipped.append(x)
        x = self.mid(x, cond)
        for block, skip in zip(self.up, self.skips, strict=True):
            x = block(skip(torch.cat([x, skipped.pop()], -1)), cond)
        return self.out_proj(self.norm(x))
