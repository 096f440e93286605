"""The pieces of the audio classifiers, each taking `lengths` so that right padding never reaches a valid output:
a clip in a padded batch gives the logits it gives alone (tests/plugins/audio prove it).

- `LogMel`: waveforms -> log-mel frames, normalised per clip and mel band over its own frames (CMN or CMVN), with
  SpecAugment-style masking in training.
- `StagedSSM`: `SequenceBackbone` stages over a sequence (raw samples or frames), average-pooled in time by
  `pools[i]` between stage i and i + 1 (SaShiMi's / S4's down-pooling, here for the CPU budget).
- `BandCNN`: 3x3 convolutions with ReLU and max-pooling over (band, frame): the log-mel CNN baseline, and the band
  convolution between the filterbank stem and the SSM stages (pooled along bands only, the frame rate kept).
- `ConvStem`: a learned strided convolution that turns raw samples into frames for the SSM stages.
- `FilterbankStem`: a learnable time-domain filterbank (LEAF-style complex Gabor filters at mel-spaced centres,
  energy, Gaussian low-pass and decimation, log, per-clip normalisation) that also turns raw samples into frames.
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
from ssmkit.ops import linear_scan

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


LOGMEL_NORMS = ("mean", "meanvar")


class LogMel(nn.Module):
    """waveforms (B, L), lengths (B,) -> log-mel frames (B, T, n_mels), frame lengths (B,): `window_ms` Hann windows
    every `hop_ms` (T = L // hop + 1), zero-padded at the ends (so a clip's frames do not depend on the batch).
    Each clip's bands are normalised over its own frames: `norm` "mean" (CMN) or "meanvar" (CMVN: also to unit
    variance). In training, `masks` > 0 applies SpecAugment's masking to each clip: `masks` bands of up to
    `MASK_BANDS` adjacent mel bands and `masks` spans of up to `MASK_FRAMES` frames are set to 0 (the mean)."""

    MASK_BANDS, MASK_FRAMES = 6, 8

    def __init__(
        self,
        sample_rate: int,
        n_mels: int = 40,
        window_ms: float = 32.0,
        hop_ms: float = 10.0,
        norm: str = "mean",
        masks: int = 0,
    ) -> None:
        super().__init__()
        if norm not in LOGMEL_NORMS:
            raise ValueError(f"norm must be one of {LOGMEL_NORMS}, got {norm!r}")
        n_fft = round(sample_rate * window_ms / 1000)
        self.hop = round(sample_rate * hop_ms / 1000)
        self.n_mels, self.norm, self.masks = n_mels, norm, masks
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate, n_fft=n_fft, hop_length=self.hop, n_mels=n_mels, pad_mode="constant"
        )

    def forward(self, waveforms: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        frames = torch.log(self.mel(mask_time(waveforms, lengths)) + 1e-6).transpose(1, 2)
        lengths = lengths // self.hop + 1
        frames = normalise_per_clip(frames, lengths, self.norm)
        if self.training and self.masks:
            frames = self.spec_augment(frames, lengths)
        return frames, lengths

    def spec_augment(self, frames: Tensor, lengths: Tensor) -> Tensor:
        """frames (B, T, n_mels) with `masks` random mel bands and time spans of each clip set to 0."""
        b, t, n = frames.shape
        keep = torch.ones_like(frames, dtype=torch.bool)
        for _ in range(self.masks):
            keep &= span_mask(n, n, self.MASK_BANDS, b, frames.device)[:, None, :]
            keep &= span_mask(t, lengths, self.MASK_FRAMES, b, frames.device)[:, :, None]
        return frames * keep


def normalise_per_clip(frames: Tensor, lengths: Tensor, norm: str) -> Tensor:
    """frames (B, T, C) with each clip's channels normalised over its own valid frames (the first lengths[b]):
    `norm` "mean" subtracts their mean (CMN), "meanvar" also divides by their standard deviation (CMVN). Frames
    from lengths[b] on come out zero, so padding never changes a clip's statistics."""
    valid = mask_time(torch.ones_like(frames[..., :1]), lengths)
    count = lengths[:, None, None].to(frames.dtype)
    frames = (frames - (frames * valid).sum(1, keepdim=True) / count) * valid
    if norm == "meanvar":
        frames = frames / ((frames.square().sum(1, keepdim=True) / count).sqrt() + 1e-3)
    return frames


def span_mask(size: int, extent: Tensor | int, max_width: int, batch: int, device: torch.device) -> Tensor:
    """(batch, size) bool, False on one random span per row: width uniform in [0, max_width], start uniform so that
    the span lies inside the row's first `extent` positions (an int, or (batch,) per row)."""
    extent = torch.as_tensor(extent, device=device).expand(batch)
    width = torch.minimum(torch.randint(0, max_width + 1, (batch,), device=device), extent)
    start = (torch.rand(batch, device=device) * (extent - width + 1)).floor().long()
    index = torch.arange(size, device=device)[None]
    return ~((index >= start[:, None]) & (index < (start + width)[:, None]))


class ConvStem(nn.Module):
    """samples (B, L, 1), lengths -> frames (B, ceil(L / stride), channels), lengths': a learned strided convolution
    (kernel 2 * stride, stride `stride`: frame t reads samples [(t - 1) stride, (t + 1) stride)), then GELU. The
    SSM stages then read `sample_rate / stride` frames per second instead of every sample. Padding is zeroed
    before and after, so a clip's frames do not depend on the batch."""

    def __init__(self, channels: int, stride: int) -> None:
        super().__init__()
        if channels < 1 or stride < 2:
            raise ValueError(f"a stem needs channels >= 1 and stride >= 2, got {channels} and {stride}")
        self.stride = stride
        self.conv = nn.Conv1d(1, channels, 2 * stride, stride)

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        s = self.stride
        x = mask_time(x, lengths)[..., 0]
        x = F.pad(x, (s, -x.shape[1] % s))
        lengths = (lengths + s - 1) // s
        return mask_time(F.gelu(self.conv(x[:, None])).transpose(1, 2), lengths), lengths


COMPRESSIONS = ("log", "pcen")


class FilterbankStem(nn.Module):
    """samples (B, L, 1), lengths -> frames (B, ceil(L / stride), channels), lengths': a learnable time-domain
    filterbank in the manner of LEAF (Zeghidour et al. 2021) and time-domain filterbanks (Zeghidour et al. 2018):

    1. `channels` complex Gabor filters of `window_ms` (odd length K), exp(i eta_n t) N(t; 0, sigma_n^2), applied as
       a cos / sin pair every `analysis_stride` samples; each filter learns its centre frequency eta_n and width
       sigma_n, initialised at mel-spaced centres (0 Hz to Nyquist) with the mel bands' bandwidths;
    2. the squared modulus (energy per band);
    3. a per-band Gaussian low-pass over `window_ms` (learnable width, initialised as LEAF's) that decimates the
       energies to one frame every `stride` samples;
    4. compression, `compression` "log": log(`LOG_FLOOR` + energy), or "pcen": learned per-channel energy
       normalisation (`PCEN`, LEAF's default), then each band normalised over the clip's own frames (`norm`: "mean"
       or "meanvar", as `LogMel`).

    The filters are computed from their 2 x `channels` parameters (and the low-pass from `channels` more), so the
    front end reads the waveform and learns, but cannot leave the family of band-pass filters. `analysis_stride` is
    the largest divisor of `stride` that keeps the energies at >= `ENVELOPE_HZ` frames per second. Padding is zeroed
    before each convolution and after, so a clip's frames do not depend on the batch."""

    LOG_FLOOR = 1e-8
    ENVELOPE_HZ = 1000
    PCEN_SECONDS = 0.25  # the time constant of PCEN's smoother (LEAF's 0.04 per 10 ms frame)

    def __init__(
        self,
        channels: int,
        stride: int,
        sample_rate: int,
        window_ms: float = 25.0,
        norm: str = "mean",
        compression: str = "log",
    ) -> None:
        super().__init__()
        if channels < 1 or stride < 2:
            raise ValueError(f"a stem needs channels >= 1 and stride >= 2, got {channels} and {stride}")
        if norm not in LOGMEL_NORMS:
            raise ValueError(f"norm must be one of {LOGMEL_NORMS}, got {norm!r}")
        if compression not in COMPRESSIONS:
            raise ValueError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
        half = round(sample_rate * window_ms / 2000)
        if half < 2:
            raise ValueError(f"window_ms {window_ms} is under 5 samples at {sample_rate} Hz")
        self.stride, self.norm, self.half = stride, norm, half
        self.analysis_stride = max(
            d for d in range(1, stride + 1) if stride % d == 0 and d * self.ENVELOPE_HZ <= sample_rate
        )
        self.decimation = stride // self.analysis_stride
        self.lowpass_half = max(1, round(half / self.analysis_stride))
        centres, widths = mel_gabor_init(channels, sample_rate, half)
        self.centres = nn.Parameter(centres)  # (channels,) radians per sample
        self.widths = nn.Parameter(widths)  # (channels,) Gaussian standard deviation in samples
        self.lowpass_widths = nn.Parameter(torch.full((channels,), 0.4))  # in units of the low-pass half-width
        smoothing = 1.0 - math.exp(-stride / (sample_rate * self.PCEN_SECONDS))
        self.pcen = PCEN(channels, smoothing, self.LOG_FLOOR) if compression == "pcen" else None

    def filters(self) -> Tensor:
        """The Gabor filters as (2 * channels, 1, 2 * half + 1) real weights: the cos filters, then the sin filters."""
        t = torch.arange(-self.half, self.half + 1, dtype=self.centres.dtype, device=self.centres.device)
        centres = self.centres.clamp(0.0, math.pi)[:, None]
        widths = self.widths.clamp(1.5, 0.75 * self.half)[:, None]
        envelope = torch.exp(-0.5 * (t / widths) ** 2) / (math.sqrt(2 * math.pi) * widths)
        return torch.cat([envelope * torch.cos(centres * t), envelope * torch.sin(centres * t)])[:, None]

    def lowpass(self) -> Tensor:
        """The per-band Gaussian low-pass as (channels, 1, 2 * lowpass_half + 1) weights, each summing to 1."""
        p = self.lowpass_half
        t = torch.arange(-p, p + 1, dtype=self.centres.dtype, device=self.centres.device)
        widths = self.lowpass_widths.clamp(1.0 / p, 0.5)[:, None] * p
        window = torch.exp(-0.5 * (t / widths) ** 2)
        return (window / window.sum(1, keepdim=True))[:, None]

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        a, d, h, p = self.analysis_stride, self.decimation, self.half, self.lowpass_half
        x = mask_time(x, lengths)[..., 0]
        bands = F.conv1d(F.pad(x, (h, h + -x.shape[1] % a))[:, None], self.filters(), stride=a)  # (B, 2C, ceil(L / a))
        energy = bands.square().unflatten(1, (2, -1)).sum(1)  # (B, C, ceil(L / a))
        lengths = (lengths + a - 1) // a
        energy = mask_time(energy, lengths, dim=2)
        energy = F.conv1d(
            F.pad(energy, (p, p + -energy.shape[2] % d)), self.lowpass(), stride=d, groups=energy.shape[1]
        )
        lengths = (lengths + d - 1) // d
        energy = energy.clamp_min(0.0)
        frames = torch.log(self.LOG_FLOOR + energy) if self.pcen is None else self.pcen(energy)
        return normalise_per_clip(frames.transpose(1, 2), lengths, self.norm), lengths  # (B, ceil(L / stride), C)


class PCEN(nn.Module):
    """energy (B, C, T) -> (B, C, T): per-channel energy normalisation (Wang et al. 2017), learned as in LEAF:
    (E / (floor + M)^alpha + delta)^(1 / root) - delta^(1 / root), with M the energy smoothed causally in time,
    M_t = (1 - s) M_{t-1} + s E_t from M_{-1} = E_0, and alpha, delta, root learned per channel (initialised 0.96,
    2, 2). M is the core's `linear_scan` (causal: a frame never reads later frames, nor padding)."""

    def __init__(self, channels: int, smoothing: float, floor: float) -> None:
        super().__init__()
        self.smoothing, self.floor = smoothing, floor
        self.alpha = nn.Parameter(torch.full((channels,), 0.96))
        self.delta = nn.Parameter(torch.full((channels,), 2.0))
        self.root = nn.Parameter(torch.full((channels,), 2.0))

    def forward(self, energy: Tensor) -> Tensor:
        e = energy.transpose(1, 2)  # (B, T, C)
        decay = torch.full_like(e, 1.0 - self.smoothing)
        smooth = linear_scan(decay, self.smoothing * e, h0=e[:, 0]).transpose(1, 2)
        alpha = self.alpha.clamp(0.0, 1.0)[:, None]
        delta = self.delta.clamp_min(1e-3)[:, None]
        r = 1.0 / self.root.clamp_min(1.0)[:, None]
        return (energy / (self.floor + smooth) ** alpha + delta) ** r - delta**r


def mel_gabor_init(channels: int, sample_rate: int, half: int) -> tuple[Tensor, Tensor]:
    """Centre frequencies (radians per sample) and Gaussian widths (samples) of `channels` Gabor filters matching
    mel bands: centres mel-spaced between 0 Hz and Nyquist, each filter's full width at half maximum in frequency
    the distance between its neighbours' centres over 2, widths kept within the filter's half-length."""
    mels = torch.linspace(0.0, hz_to_mel(sample_rate / 2), channels + 2, dtype=torch.float64)
    hz = 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    fwhm = 2 * math.pi * (hz[2:] - hz[:-2]) / 2 / sample_rate  # radians per sample
    widths = (2 * math.sqrt(2 * math.log(2)) / fwhm).clamp(max=0.75 * half)
    return (2 * math.pi * hz[1:-1] / sample_rate).float(), widths.float()


def hz_to_mel(hz: float) -> float:
    """The HTK mel scale."""
    return 2595.0 * math.log10(1.0 + hz / 700.0)


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


class BandCNN(nn.Module):
    """frames of bands (B, T, n_bands), lengths -> (B, T', d_model), lengths': per block a 3x3 convolution over
    (band, frame), ReLU, padding frames zeroed, and 2x2 max-pooling (T' = T / 2^len(channels), rounded up), or 2x1
    along bands only (`pool_time` False: T' = T, the frame rate kept). Then, per frame, the last block's channels at
    every remaining band side by side (`keep_bands`, d_model = channels[-1] * n_bands / 2^len(channels), rounded up:
    where in frequency a pattern lies is kept), or their mean over bands (d_model = channels[-1]).

    Two uses: the log-mel CNN baseline (over `LogMel` frames), and the band convolution between the filterbank stem
    and the SSM stages (`band_conv_channels`: `pool_time` False, `keep_bands`), so the stages read band patterns
    wherever they lie in frequency."""

    def __init__(
        self,
        channels: Sequence[int] = (16, 32, 64),
        n_bands: int = 40,
        keep_bands: bool = False,
        pool_time: bool = True,
    ) -> None:
        super().__init__()
        if not channels or any(c < 1 for c in channels) or n_bands < 1:
            raise ValueError(
                f"cnn_channels and band_conv_channels must be >= 1 each (and at least one), got {list(channels)}"
            )
        widths = [1, *channels]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.keep_bands, self.pool = keep_bands, (2, 2) if pool_time else (2, 1)
        self.d_model = widths[-1] * (math.ceil(n_bands / 2 ** len(channels)) if keep_bands else 1)

    def forward(self, frames: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        h = mask_time(frames, lengths).transpose(1, 2)[:, None]  # (B, 1, n_bands, T)
        for conv in self.convs:
            # after ReLU every value is >= 0, so the zeroed padding never wins a max-pool window of a valid frame
            h = F.max_pool2d(mask_time(F.relu(conv(h)), lengths, dim=3), self.pool, ceil_mode=True)
            lengths = (lengths + self.pool[1] - 1) // self.pool[1]
        h = h.flatten(1, 2) if self.keep_bands else h.mean(2)  # (B, C * bands or C, T')
        return h.transpose(1, 2), lengths
