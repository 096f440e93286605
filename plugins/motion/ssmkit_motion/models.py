"""Sequence encoders of motion windows and the motion VAE.

- `GRUEncoder`: the recurrent baseline of `motion.classify` (bidirectional GRU, d_model wide in total).
- `MotionVAE` (MLD's first stage, Chen et al. 2023): encoder = a `SequenceBackbone` over the frames, average-pooled
  by `downsample` in time, then a linear map to the posterior mean and log-variance of a latent of
  (window / downsample, d_latent); decoder = the latent mapped to d_model, repeated `downsample` times in time plus a
  learned embedding of the position inside each repeat, another `SequenceBackbone`, a linear map to the features.
  MLD's latent is one or two tokens of 256; here it keeps a short time axis (window / downsample tokens), so that
  the denoiser's temporal scans (Motion Mamba's HTM) have a sequence to scan.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ssmkit.models import BackboneConfig, SequenceBackbone

Tensor = torch.Tensor


class GRUEncoder(nn.Module):
    """x: (B, L, n_features) -> (B, L, d_model): a bidirectional GRU of d_model // 2 per direction."""

    def __init__(self, n_features: int, d_model: int, n_layers: int) -> None:
        super().__init__()
        if d_model % 2:
            raise ValueError(f"the bidirectional GRU needs an even d_model, got {d_model}")
        self.d_model = d_model
        self.gru = nn.GRU(n_features, d_model // 2, n_layers, batch_first=True, bidirectional=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.gru(x)[0]


class MotionVAE(nn.Module):
    """Window (B, window, n_features) <-> latent (B, window // downsample, d_latent); see the module doc."""

    def __init__(
        self,
        n_features: int,
        window: int,
        backbone: BackboneConfig | dict[str, Any] | None = None,
        d_latent: int = 8,
        downsample: int = 4,
    ) -> None:
        super().__init__()
        if window % downsample:
            raise ValueError(f"window {window} must be a multiple of downsample {downsample}")
        config = BackboneConfig.of(backbone).with_l_max(window)
        self.downsample, self.d_latent, self.n_tokens = downsample, d_latent, window // downsample
        self.encoder = SequenceBackbone(config, d_input=n_features)
        d_model = self.encoder.d_model
        self.to_posterior = nn.Linear(d_model, 2 * d_latent)
        self.from_latent = nn.Linear(d_latent, d_model)
        self.within = nn.Parameter(torch.zeros(downsample, d_model))  # position inside each repeat
        self.decoder = SequenceBackbone(config)
        self.to_features = nn.Linear(d_model, n_features)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x: (B, L, n_features) -> (mean, log-variance), each (B, L // downsample, d_latent)."""
        h = self.encoder(x)
        h = h.unflatten(1, (-1, self.downsample)).mean(2)
        mean, log_var = self.to_posterior(h).chunk(2, -1)
        return mean, log_var.clamp(-10, 10)

    def decode(self, z: Tensor) -> Tensor:
        """z: (B, N, d_latent) -> (B, N * downsample, n_features)."""
        h = self.from_latent(z).repeat_interleave(self.downsample, 1)
        h = h + self.within.repeat(z.shape[1], 1)
        return self.to_features(self.decoder(h))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x -> (reconstruction, mean, log-variance); z drawn from the posterior in training, its mean otherwise."""
        mean, log_var = self.encode(x)
        z = mean + torch.randn_like(mean) * (0.5 * log_var).exp() if self.training else mean
        return self.decode(z), mean, log_var


def kl_divergence(mean: Tensor, log_var: Tensor) -> Tensor:
    """KL(N(mean, exp(log_var)) || N(0, 1)), averaged over every latent element."""
    return 0.5 * (mean.pow(2) + log_var.exp() - 1 - log_var).mean()


def n_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
