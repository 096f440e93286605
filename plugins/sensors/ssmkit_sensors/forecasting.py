"""Long-horizon forecasters: `x: (B, L, C)` past -> `(B, H, C)` future.

- `SSMForecaster`: reversible instance normalisation (RevIN, Kim et al., 2022) and channel independence
  (each channel a separate univariate series, shared weights, as PatchTST and S-Mamba do). Each series
  is cut into overlapping patches, embedded, read by a registry-mixer backbone, and the flattened hidden
  states are mapped to the horizon. With `fourier` set, a `FourierHead` gives a predictive distribution
  per future step (in RevIN units; the point forecast is its mean) and the loss is its NLL.
- `DLinear` (Zeng et al., 2023): moving-average trend + remainder, one linear map L -> H for each,
  shared over channels. The yardstick.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ssmkit.models.backbone import BackboneConfig, SequenceBackbone
from ssmkit.models.heads import FourierHead

Tensor = torch.Tensor
FORECASTERS = ("ssm", "dlinear")


class RevIN(nn.Module):
    """Per-series, per-channel standardisation over the input window, undone on the output."""

    def __init__(self, n_channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n_channels))
        self.bias = nn.Parameter(torch.zeros(n_channels))

    def stats(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x: (B, L, C) -> mean, std (B, 1, C)."""
        return x.mean(1, keepdim=True), (x.var(1, keepdim=True, unbiased=False) + self.eps).sqrt()

    def normalise(self, x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
        return (x - mean) / std * self.weight + self.bias

    def denormalise(self, y: Tensor, mean: Tensor, std: Tensor) -> Tensor:
        return (y - self.bias) / (self.weight + self.eps) * std + mean


class SSMForecaster(nn.Module):
    def __init__(
        self,
        n_channels: int,
        seq_len: int,
        horizon: int,
        backbone: BackboneConfig | None,
        patch_len: int = 16,
        stride: int = 8,
        head_dropout: float = 0.0,
        fourier: dict[str, Any] | None = None,
    ) -> None:
        """backbone: the settings of the backbone over the patches; fourier: `FourierHead` kwargs (n_bins,
        n_freqs, low, high) plus `d_head`, the width per future step it reads; None for a point forecast."""
        super().__init__()
        if patch_len > seq_len:
            raise ValueError(f"patch_len {patch_len} is longer than seq_len {seq_len}")
        self.patch_len, self.stride, self.horizon = patch_len, stride, horizon
        n_patches = (seq_len - patch_len) // stride + 1
        self.revin = RevIN(n_channels)
        self.backbone = SequenceBackbone(backbone, d_input=patch_len)
        self.dropout = nn.Dropout(head_dropout)
        fourier = dict(fourier or {})
        d_head = fourier.pop("d_head", 16) if fourier else 1
        self.proj = nn.Linear(n_patches * self.backbone.d_model, horizon * d_head)
        self.fourier = FourierHead(d_head, **fourier) if fourier else None

    def features(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x: (B, L, C) -> per-step head inputs (B, C, H, d_head) and the RevIN mean, std (B, 1, C)."""
        mean, std = self.revin.stats(x)
        z = self.revin.normalise(x, mean, std).transpose(1, 2)  # (B, C, L)
        b, c, _ = z.shape
        patches = z.unfold(-1, self.patch_len, self.stride).reshape(b * c, -1, self.patch_len)
        h = self.backbone(patches).flatten(1)  # (B*C, N*D)
        return self.proj(self.dropout(h)).reshape(b, c, self.horizon, -1), mean, std

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, L, C) -> point forecast (B, H, C) (the Fourier head's mean when there is one)."""
        h, mean, std = self.features(x)
        z = h[..., 0] if self.fourier is None else self.fourier.mean(self.fourier(h))
        return self.revin.denormalise(z.transpose(1, 2), mean, std)

    def loss(self, x: Tensor, y: Tensor) -> Tensor:
        """MSE of the point forecast, or the Fourier head's NLL of y (B, H, C) in RevIN units."""
        if self.fourier is None:
            return F.mse_loss(self(x), y)
        h, mean, std = self.features(x)
        target = self.revin.normalise(y, mean, std).transpose(1, 2)  # (B, C, H)
        return self.fourier.nll(self.fourier(h), target)

    def sample(self, x: Tensor, n: int) -> Tensor:
        """x: (B, L, C) -> n draws from the predictive distribution (n, B, H, C); needs the Fourier head."""
        if self.fourier is None:
            raise ValueError("sampling needs the Fourier head (set model.fourier)")
        h, mean, std = self.features(x)
        logits = self.fourier(h)
        draws = [self.revin.denormalise(self.fourier.sample(logits).transpose(1, 2), mean, std) for _ in range(n)]
        return torch.stack(draws)


class DLinear(nn.Module):
    def __init__(self, seq_len: int, horizon: int, kernel_size: int = 25) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"DLinear's moving-average kernel_size must be odd, got {kernel_size}")
        self.kernel_size = kernel_size
        self.trend = nn.Linear(seq_len, horizon)
        self.seasonal = nn.Linear(seq_len, horizon)

    def decompose(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x: (B, L, C) -> trend, remainder (B, C, L); the average repeats the end values as padding."""
        z = x.transpose(1, 2)
        pad = (self.kernel_size - 1) // 2
        padded = torch.cat([z[..., :1].expand(-1, -1, pad), z, z[..., -1:].expand(-1, -1, pad)], -1)
        trend = F.avg_pool1d(padded, self.kernel_size, stride=1)
        return trend, z - trend

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, L, C) -> (B, H, C)."""
        trend, seasonal = self.decompose(x)
        return (self.trend(trend) + self.seasonal(seasonal)).transpose(1, 2)

    def loss(self, x: Tensor, y: Tensor) -> Tensor:
        return F.mse_loss(self(x), y)
