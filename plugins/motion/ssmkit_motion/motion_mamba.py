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
- **One scan call per HTM / BSM** (`grouped_mamba`): the k mixers of an HTM (or BSM's two) have separate weights,
  so they run as one mamba of k times the channels, reading the mixers' own parameters: each projection as one
  matrix product with the block-diagonal of the k weights, the depthwise convolution over the concatenated
  channels, and a single core `selective_scan` whose B and C are grouped per mixer (its (b, g, n, l) layout);
  backward streams are flipped in time on the way in and out. Every step is per channel or per stream, so this is
  what k separate `mixer(u)` calls compute (to float rounding; a test compares both, values and gradients), with
  one scan call instead of k (a forward of n_levels 2: 6 instead of 13). Parameters and checkpoints are unchanged;
  `MotionMambaDenoiser.group_scans(False)` switches back to one call per scan (`separate_mamba`).
- **U-Net**: levels with 2N-1, 2N-3, ..., 3 scans on the way down, 1 at the bottleneck, and 3, ..., 2N-1 on the way
  up, each up block taking the matching down block's output through a long skip (concatenation and a linear map),
  as MLD's skip-connected Transformer does; the time axis is not resampled (the latent is short already).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ssmkit.layers.mamba import Mamba
from ssmkit.layers.norms import RMSNorm
from ssmkit.ops import selective_scan
from ssmkit.registry import create_mixer

Tensor = torch.Tensor


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """Sinusoidal embedding of diffusion steps t: (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-torch.log(torch.tensor(max_period)) * torch.arange(half, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None]
    out = torch.cat([angles.cos(), angles.sin()], -1)
    return torch.nn.functional.pad(out, (0, dim % 2))


def _block_diagonal(linears: Sequence[nn.Linear], sizes: Sequence[int]) -> tuple[Tensor, Tensor | None]:
    """One linear map for k maps of one shape applied to k concatenated inputs: weight (k out, k in), bias (k out,)
    or None. The outputs come in parts of `sizes` (summing to out), each part concatenated over the k maps (part 0
    of every map, then part 1 ...), so that a split by k x size gives each part for all maps at once."""
    weights = [lin.weight.split(list(sizes)) for lin in linears]
    weight = torch.cat([torch.block_diag(*(w[part] for w in weights)) for part in range(len(sizes))])
    if linears[0].bias is None:
        return weight, None
    biases = [lin.bias.split(list(sizes)) for lin in linears]
    return weight, torch.cat([b[part] for part in range(len(sizes)) for b in biases])


def _flip_streams(u: Tensor, reverse: Sequence[bool]) -> Tensor:
    """u (B, L, k, d): the streams i with reverse[i] reversed in time (L); the others as they are."""
    if not any(reverse):
        return u
    return torch.stack([s.flip(1) if r else s for s, r in zip(u.unbind(2), reverse, strict=True)], 2)


def separate_mamba(mixers: Sequence[Mamba], u: Tensor, reverse: Sequence[bool]) -> Tensor:
    """u (B, L, k, d) -> (B, L, k, d): stream i is `mixers[i](u[:, :, i])`, or `mixers[i](u[:, :, i].flip(1)).flip(1)`
    if `reverse[i]`; one mixer call per stream."""
    streams = zip(mixers, u.unbind(2), reverse, strict=True)
    return torch.stack([m(s.flip(1)).flip(1) if r else m(s) for m, s, r in streams], 2)


def grouped_mamba(mixers: Sequence[Mamba], u: Tensor, reverse: Sequence[bool]) -> Tensor:
    """`separate_mamba` as one call: k core `mamba` mixers of one configuration run as one mixer of k times the
    channels (see the module doc). u (B, L, k, d) -> (B, L, k, d)."""
    m, k = mixers[0], len(mixers)
    if k == 1:  # nothing to group
        return separate_mamba(mixers, u, reverse)
    width, n = k * m.d_inner, m.d_state  # channels of the one scan: k E
    w_in, b_in = _block_diagonal([mx.in_proj for mx in mixers], [m.d_inner, m.d_inner])
    x, z = F.linear(_flip_streams(u, reverse).flatten(2), w_in, b_in).split(width, -1)  # (B, L, k E) each
    conv_b = None if m.conv1d.bias is None else torch.cat([mx.conv1d.bias for mx in mixers])
    x = F.pad(x.transpose(1, 2), (m.d_conv - 1, 0))
    x = F.silu(F.conv1d(x, torch.cat([mx.conv1d.weight for mx in mixers]), conv_b, groups=width))  # (B, k E, L)
    w_x, _ = _block_diagonal([mx.x_proj for mx in mixers], [m.dt_rank, n, n])
    x_t = x.transpose(1, 2).contiguous()  # (B, L, k E): contiguous, so the projections are single matrix products
    dt, B, C = F.linear(x_t, w_x).split([k * m.dt_rank, k * n, k * n], -1)  # (B, L, k R | k N | k N)
    w_dt, _ = _block_diagonal([mx.dt_proj for mx in mixers], [m.d_inner])
    y = selective_scan(
        x,
        F.linear(dt, w_dt).transpose(1, 2),
        -torch.exp(torch.cat([mx.A_log for mx in mixers])),
        B.unflatten(-1, (k, n)).permute(0, 2, 3, 1),  # (B, k, N, L): one group of channels per mixer
        C.unflatten(-1, (k, n)).permute(0, 2, 3, 1),
        torch.cat([mx.D for mx in mixers]),
        z=z.transpose(1, 2),
        delta_bias=torch.cat([mx.dt_proj.bias for mx in mixers]),
        delta_softplus=True,
    )  # (B, k E, L)
    w_out, b_out = _block_diagonal([mx.out_proj for mx in mixers], [m.d_model])
    out = F.linear(y.transpose(1, 2).contiguous(), w_out, b_out)  # (B, L, k d)
    return _flip_streams(out.unflatten(-1, (k, m.d_model)), reverse)


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
        self.grouped = True  # see MotionMambaDenoiser.group_scans
        self.in_proj = nn.Linear(d_model, n_scans * d_model)
        self.scans = nn.ModuleList(create_mixer("mamba", d_model, **(mamba_kwargs or {})) for _ in range(n_scans))
        self.out_proj = nn.Linear(n_scans * d_model, d_model)

    def scan(self, streams: Tensor) -> Tensor:
        """streams: (B, L, n_scans, D) -> (B, L, n_scans, D); stream i only through scan i (odd i backward in time),
        in one call (`grouped_mamba`) or, with `grouped` off, one call per scan (`separate_mamba`)."""
        run = grouped_mamba if self.grouped else separate_mamba
        return run(self.scans, streams, [i % 2 == 1 for i in range(self.n_scans)])

    def forward(self, x: Tensor) -> Tensor:
        streams = self.in_proj(x).unflatten(-1, (self.n_scans, self.d_model))
        return self.out_proj(self.scan(streams).flatten(2))


class BSM(nn.Module):
    """Bidirectional spatial Mamba: (B, L, D) -> (B, L, D), scanning the D channels of each frame both ways."""

    def __init__(self, d_model: int, d_spatial: int = 8, mamba_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.grouped = True  # see MotionMambaDenoiser.group_scans
        self.value = nn.Parameter(torch.randn(d_spatial) / d_spatial**0.5)
        self.channel = nn.Parameter(torch.zeros(d_model, d_spatial))
        self.forward_scan = create_mixer("mamba", d_spatial, **(mamba_kwargs or {}))
        self.backward_scan = create_mixer("mamba", d_spatial, **(mamba_kwargs or {}))
        self.out_proj = nn.Linear(d_spatial, 1)

    def steps(self, x: Tensor) -> Tensor:
        """(B, L, D) -> channel sequences (B * L, D, d_spatial)."""
        return x.flatten(0, 1)[..., None] * self.value + self.channel

    def scan(self, u: Tensor) -> Tensor:
        """u: (N, D, d_spatial) -> forward scan + flip(backward scan of flip(u)): in one call (`grouped_mamba`) or,
        with `grouped` off, as written."""
        if not self.grouped:
            return self.forward_scan(u) + self.backward_scan(u.flip(1)).flip(1)
        both = u[:, :, None].expand(-1, -1, 2, -1)  # (N, D, 2, d_spatial)
        return grouped_mamba([self.forward_scan, self.backward_scan], both, [False, True]).sum(2)

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

    def group_scans(self, enabled: bool = True) -> MotionMambaDenoiser:
        """Every HTM's and BSM's scans in one call each (`grouped_mamba`, the default) or one call per scan; the same
        outputs either way (to float rounding), only the speed differs (README: on a CPU the separate calls can be
        faster). Returns self."""
        for module in self.modules():
            if isinstance(module, HTM | BSM):
                module.grouped = enabled
        return self

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
