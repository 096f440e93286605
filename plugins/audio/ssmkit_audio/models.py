"""The pieces of the audio classifiers, each taking `lengths` so that right padding never reaches a valid output:
a clip in a padded batch gives the logits it gives alone (tests/plugins/audio prove it).

- `LogMel`: waveforms -> log-mel frames, mean-normalised per clip and mel band over its own frames (CMN).
- `StagedSSM`: `SequenceBackbone` stages over a sequence (raw samples or frames), average-pooled in time by
  `pools[i]` between stage i and i + 1 (SaShiMi's / S4's down-pooling, here for the CPU budget).
- `LogMelCNN`: the baseline, 3x3 convolutions with ReLU and 2x2 max-pooling over (mel, frame), averaged over mel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import torch
import torch.nn.functional as F
import torchaudio
from torch import nn

from ssmkit.layers.mixer import padding_mask
from ssmkit.models import BackboneConfig, SequenceBackbone

Tensor = torch.Tensor


def mask_time(x: Tensor, lengths: Tensor, dim: int = 1) -> Tensor:
    """x with every position at or beyond `lengths[b]` along `dim` (x: (B, ..., L, ...)) set to zero."""
    mask = padding_mask(lengths, x.shape[dim])
    shape = [x.shape[0]] + [1] * (x.dim() - 1)
    shape[dim] = x.shape[dim]
    return x * mask.reshape(shape).to(x.dtype)


def pool_time(x: Tensor, lengths: Tensor, factor: int) -> tuple[Tensor, Tensor]:
    """Average-pool x (B, L, D) by `factor` in time -> (B, ceil(L / factor), D), lengths ceil(lengths / factor).
    Padding is zeroed first and the last window of a clip averages its samples with zeros, as it would alone."""
    b, length, d = x.shape
    x = F.pad(mask_time(x, lengths), (0, 0, 0, -length % factor))
    return x.reshape(b, -1, factor, d).mean(2), (lengths + factor - 1) // factor


class LogMel(nn.Module):
    """waveforms (B, L), lengths (B,) -> log-mel frames (B, T, n_mels), frame lengths (B,): `window_ms` Hann windows
    every `hop_ms` (T = L // hop + 1), zero-padded at the ends (so a clip's frames do not depend on the batch)."""

    def __init__(self, sample_rate: int, n_mels: int = 40, window_ms: float = 32.0, hop_ms: float = 10.0) -> None:
        super().__init__()
        n_fft = round(sample_rate * window_ms / 1000)
        self.hop = round(sample_rate * hop_ms / 1000)
        self.n_mels = n_mels
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate, n_fft=n_fft, hop_length=self.hop, n_mels=n_mels, pad_mode="constant"
        )

    def forward(self, waveforms: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        frames = torch.log(self.mel(mask_time(waveforms, lengths)) + 1e-6).transpose(1, 2)
        lengths = lengths // self.hop + 1
        valid = mask_time(torch.ones_like(frames[..., :1]), lengths)
        mean = (frames * valid).sum(1, keepdim=True) / lengths[:, None, None]
        return (frames - mean) * valid, lengths


class StagedSSM(nn.Module):
    """(B, L, d_input), lengths -> (B, L', d_output), lengths': len(pools) + 1 backbones of `config`, average-pooled
    by pools[i] between stage i and i + 1 (L' = L / prod(pools), rounded up). Stage i is `expand`**i times as wide
    as `config.d_model` (SaShiMi's widening as the sequence shrinks: the full-rate stage stays cheap); its first
    layer projects the previous width (or `d_input` features per step, 1 for raw samples) to its own. `l_max`, the
    longest input, shrinks with the pooling for each stage's kernels."""

    def __init__(
        self, config: BackboneConfig | None, d_input: int, pools: Sequence[int], l_max: int, expand: int = 1
    ) -> None:
        super().__init__()
        config = BackboneConfig.of(config)
        if any(p < 1 for p in pools) or expand < 1:
            raise ValueError(f"pools and expand must be >= 1, got {list(pools)} and {expand}")
        self.pools = list(pools)
        widths = [config.d_model * expand**i for i in range(len(pools) + 1)]
        lengths = [l_max] + [math.ceil(l_max / math.prod(pools[: i + 1])) for i in range(len(pools))]
        self.stages = nn.ModuleList(
            SequenceBackbone(replace(config, d_model=width).with_l_max(n), d_input=d)
            for width, n, d in zip(widths, lengths, [d_input, *widths[:-1]], strict=True)
        )
        self.d_model = widths[-1]

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        for i, stage in enumerate(self.stages):
            if i:
                x, lengths = pool_time(x, lengths, self.pools[i - 1])
            x = stage(x, lengths=lengths)
        return x, lengths


class LogMelCNN(nn.Module):
    """log-mel frames (B, T, n_mels), lengths -> (B, T', channels[-1]), lengths' with T' = T / 2^len(channels)
    (rounded up): per block a 3x3 convolution, ReLU, padding zeroed, 2x2 max-pooling; then the mean over mel."""

    def __init__(self, channels: Sequence[int] = (16, 32, 64)) -> None:
        super().__init__()
        widths = [1, *channels]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.d_model = widths[-1]

    def forward(self, frames: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        h = frames.transpose(1, 2)[:, None]  # (B, 1, n_mels, T)
        for conv in self.convs:
            # after ReLU every value is >= 0, so the zeroed padding never wins a max-pool window of a valid frame
            h = F.max_pool2d(mask_time(F.relu(conv(h)), lengths, dim=3), 2, ceil_mode=True)
            lengths = (lengths + 1) // 2
        return h.mean(2).transpose(1, 2), lengths
