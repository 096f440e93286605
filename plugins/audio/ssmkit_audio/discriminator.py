"""The optional GAN term of `audio.restore`: Apollo's multi-frequency discriminator and its losses.

    x (B, L) --scaled to unit power--> per STFT size n (hop n / 2, Hann window):
      [Re X, Im X, log(|X| + 1e-5)] (B, 3, F, T) --`depth` 3x3 conv2d + LeakyReLU(0.2), spectral norm, channels
      doubling from `channels`, stride 2 over (freq, time) every second layer--> 3x3 conv2d to 1 channel
      -> a score map (B, 1, F', T') and the hidden maps (the features)

As in Apollo (Li et al., 2024, `MultiFrequencyDiscriminator`): one small 2-D convolution stack per STFT resolution over
the complex spectrum of the power-normalised waveform, with spectral normalisation. Deviations: a log-magnitude
channel beside Re / Im (the band above the codec's cut-off sits 40-60 dB below the rest, where Re / Im alone are
near zero), fewer and narrower layers (`depth` 4 from 8 channels vs Apollo's 6 up to 256), and the hinge loss as an
option beside Apollo's least-squares one.

Losses, each averaged over the resolutions:
- the discriminator's: least squares `(D(real) - 1)^2 + D(fake)^2` (Apollo, LSGAN) or hinge
  `relu(1 - D(real)) + relu(1 + D(fake))`;
- the generator's adversarial term: `(D(fake) - 1)^2` or `-D(fake)`;
- feature matching: per hidden map, `mean |f(fake) - f(real)| / mean |f(real)|` (Apollo's relative L1), averaged
  over the maps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

Tensor = torch.Tensor
GAN_LOSSES = ("lsgan", "hinge")
LOG_EPS = 1e-5
POWER_EPS = 1e-8


class SpectrogramDiscriminator(nn.Module):
    """One resolution: x (B, L) -> (score map (B, 1, F', T'), hidden maps [(B, C_i, F_i, T_i)])."""

    def __init__(self, n_fft: int, channels: int = 8, depth: int = 4) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        widths = [3] + [channels * 2**i for i in range(depth)]
        self.layers = nn.ModuleList(
            nn.utils.parametrizations.spectral_norm(nn.Conv2d(c_in, c_out, 3, stride=1 + i % 2, padding=1))
            for i, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:], strict=True))
        )
        self.out = nn.Conv2d(widths[-1], 1, 3, padding=1)

    def spectrum(self, x: Tensor) -> Tensor:
        """x (B, L) -> [Re X, Im X, log(|X| + eps)] (B, 3, F, T), F = n_fft // 2 + 1."""
        spec = torch.stft(x, self.n_fft, self.n_fft // 2, window=self.window.to(x.dtype), return_complex=True)
        return torch.stack([spec.real, spec.imag, (spec.abs() + LOG_EPS).log()], 1)

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        h, features = self.spectrum(x), []
        for layer in self.layers:
            h = F.leaky_relu(layer(h), 0.2)
            features.append(h)
        return self.out(h), features


class MultiFrequencyDiscriminator(nn.Module):
    """One `SpectrogramDiscriminator` per STFT size: x (B, L) -> ([score map per size], [hidden maps per size])."""

    def __init__(self, sizes: tuple[int, ...] = (256, 512, 1024), channels: int = 8, depth: int = 4) -> None:
        super().__init__()
        self.resolutions = nn.ModuleList(SpectrogramDiscriminator(n, channels, depth) for n in sizes)

    def forward(self, x: Tensor) -> tuple[list[Tensor], list[list[Tensor]]]:
        x = x / (x.square().mean(-1, keepdim=True) + POWER_EPS).sqrt()  # unit power: the level is not a cue
        scores, features = [], []
        for resolution in self.resolutions:
            score, hidden = resolution(x)
            scores.append(score)
            features.append(hidden)
        return scores, features


def discriminator_loss(real: list[Tensor], fake: list[Tensor], kind: str = "lsgan") -> Tensor:
    """Score maps of clean and restored clips per resolution -> the discriminator's loss (a scalar)."""
    if kind == "hinge":
        terms = [F.relu(1 - r).mean() + F.relu(1 + f).mean() for r, f in zip(real, fake, strict=True)]
    else:
        terms = [(r - 1).square().mean() + f.square().mean() for r, f in zip(real, fake, strict=True)]
    return torch.stack(terms).mean()


def generator_loss(fake: list[Tensor], kind: str = "lsgan") -> Tensor:
    """Score maps of restored clips per resolution -> the generator's adversarial loss (a scalar)."""
    terms = [-f.mean() if kind == "hinge" else (f - 1).square().mean() for f in fake]
    return torch.stack(terms).mean()


def feature_matching_loss(fake: list[list[Tensor]], real: list[list[Tensor]]) -> Tensor:
    """Hidden maps of restored and clean clips per resolution -> the mean relative L1 distance (a scalar); the
    clean clips' maps are targets (no gradient)."""
    terms = [
        (f - r.detach()).abs().mean() / (r.detach().abs().mean() + POWER_EPS)
        for fs, rs in zip(fake, real, strict=True)
        for f, r in zip(fs, rs, strict=True)
    ]
    return torch.stack(terms).mean()
