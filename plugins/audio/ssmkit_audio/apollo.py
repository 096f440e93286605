"""Apollo-style band-split restoration (Li et al., 2024), with a bidirectional SSM as the band-sequence network.

    x (B, L) --STFT--> X (B, F, T) --split--> bands X_k (B, w_k, T), k < K (narrow low, wide high)
    gain-shape features per band: g_k = ||X_k|| over its bins, [Re X_k / g_k, Im X_k / g_k, log g_k] (2 w_k + 1)
      -> RMSNorm -> Linear (one per band) -> h (B, K, T, D)
    band-sequence network: h (B, K, T, D) -> (B, K, T, D)
    per band: RMSNorm -> Linear(D, 4 w_k) -> GLU -> Re, Im of w_k bins (direct spectral mapping), concatenated
      -> Y (B, F, T) (+ X with `residual`) --iSTFT--> y (B, L)

Two band-sequence networks with the same interface:
- `DualPathSSM` (ssmkit's default): each layer is a bidirectional `SequenceBackbone` block along time (per band)
  then one across bands (per frame); the mixer comes from the core registry (`backbone.mixer`: S4D made
  bidirectional by `BackboneConfig(bidirectional=True)`, or `hydra` / `bimamba_v2`, bidirectional themselves).
- `RoformerConv` (the anchor's network, the baseline): each layer is a RoPE Transformer block across bands (the
  core's `attention` mixer, non-causal, + a gated MLP) then Apollo's "ICB" along time: 3 residual blocks of
  depthwise convolution (kernel 7) -> RMSNorm -> 1x1 (x4) -> SiLU -> 1x1.

Deviations from the anchor (written down, measured where it matters):
- the band layout is given as Hz widths per frequency region (`band_layout`), narrow low and wide high; Apollo
  uses 79 equal bands of 5 bins and one wide top band at 44.1 kHz;
- the waveform is scaled to unit RMS before the STFT and back after (the network sees one level);
- `residual=True` adds the input spectrum to the mapped one, and the mapping's last layer starts at zero, so an
  untrained restorer is the identity (Apollo maps directly, without the skip); `residual=False` is Apollo's form;
- no stereo: one channel (Apollo folds channels into the batch the same way).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ssmkit.layers.norms import RMSNorm
from ssmkit.models import BackboneConfig
from ssmkit.models.backbone import SequenceBackbone

Tensor = torch.Tensor
NETWORKS = ("ssm", "roformer")
GAIN_EPS = 1e-8


def band_layout(n_fft: int, sample_rate: int, splits_hz: list[float], widths_hz: list[float]) -> list[int]:
    """Bins per band for an STFT of `n_fft` (n_fft // 2 + 1 bins): below splits_hz[0] bands are widths_hz[0] wide,
    between splits_hz[i - 1] and splits_hz[i] widths_hz[i] wide, above the last split widths_hz[-1] wide (each at
    least one bin; a region's remainder joins its last band, a region under half a band joins the band below). Every
    bin lies in exactly one band."""
    if len(widths_hz) != len(splits_hz) + 1:
        raise ValueError(f"give one more band width than splits, got {len(widths_hz)} and {len(splits_hz)}")
    if list(splits_hz) != sorted(splits_hz) or min(widths_hz) <= 0:
        raise ValueError(f"splits_hz must rise and widths_hz be positive, got {splits_hz} and {widths_hz}")
    n_bins, hz_per_bin = n_fft // 2 + 1, sample_rate / n_fft
    edges = [0] + [min(n_bins, round(s / hz_per_bin)) for s in splits_hz] + [n_bins]
    widths: list[int] = []
    for (start, stop), width_hz in zip(zip(edges[:-1], edges[1:], strict=True), widths_hz, strict=True):
        width = max(1, round(width_hz / hz_per_bin))
        if widths and stop - start < (width + 1) // 2:  # a sliver (the Nyquist bin): joins the band below
            widths[-1] += stop - start
            continue
        count = max(1, (stop - start) // width)
        widths += [width] * (count - 1) + [stop - start - width * (count - 1)]
    return widths


def gain_shape(band: Tensor) -> tuple[Tensor, Tensor]:
    """band (B, w, T) complex -> (gain (B, T) = sqrt(sum_bins |X|^2 + eps), shape (B, w, T) = band / gain)."""
    gain = (band.abs().square().sum(1) + GAIN_EPS).sqrt()
    return gain, band / gain[:, None]


class BandSplit(nn.Module):
    """STFT, the band split, and per-band gain-shape features projected to D."""

    def __init__(self, widths: list[int], n_fft: int, hop: int, d_model: int) -> None:
        super().__init__()
        self.widths, self.n_fft, self.hop = widths, n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.project = nn.ModuleList(nn.Sequential(RMSNorm(2 * w + 1), nn.Linear(2 * w + 1, d_model)) for w in widths)

    def stft(self, x: Tensor) -> Tensor:
        """x (B, L) -> X (B, F, T) complex, F = n_fft // 2 + 1, T = L // hop + 1."""
        return torch.stft(x, self.n_fft, self.hop, window=self.window.to(x.dtype), return_complex=True)

    def istft(self, spec: Tensor, length: int) -> Tensor:
        """X (B, F, T) complex -> x (B, length)."""
        return torch.istft(spec, self.n_fft, self.hop, window=self.window.to(spec.real.dtype), length=length)

    def bands(self, spec: Tensor) -> list[Tensor]:
        """X (B, F, T) -> [X_k (B, w_k, T)], every bin in exactly one band."""
        return list(spec.split(self.widths, dim=1))

    def forward(self, spec: Tensor) -> Tensor:
        """X (B, F, T) complex -> features h (B, K, T, D)."""
        features = []
        for band, project in zip(self.bands(spec), self.project, strict=True):
            gain, shape = gain_shape(band)
            f = torch.cat([shape.real, shape.imag, gain.log()[:, None]], 1)  # (B, 2w + 1, T)
            features.append(project(f.transpose(1, 2)))
        return torch.stack(features, 1)


class BandMerge(nn.Module):
    """Per-band direct spectral mapping: h (B, K, T, D) -> Y (B, F, T) complex."""

    def __init__(self, widths: list[int], d_model: int) -> None:
        super().__init__()
        self.widths = widths
        self.project = nn.ModuleList(nn.Sequential(RMSNorm(d_model), nn.Linear(d_model, 4 * w)) for w in widths)

    def forward(self, h: Tensor) -> Tensor:
        bands = []
        for k, (w, project) in enumerate(zip(self.widths, self.project, strict=True)):
            re_im = F.glu(project(h[:, k]), dim=-1)  # (B, T, 2w)
            bands.append(torch.complex(re_im[..., :w], re_im[..., w:]).transpose(1, 2))
        return torch.cat(bands, 1)

    def zero_(self) -> BandMerge:
        """Make every band's mapping output zero (the restorer is then the identity with `residual`)."""
        for project in self.project:
            nn.init.zeros_(project[1].weight)
            nn.init.zeros_(project[1].bias)
        return self


def over_bands(net: nn.Module, h: Tensor) -> Tensor:
    """Run `net` (N, K, D) -> (N, K, D) across bands for every frame: h (B, K, T, D) -> (B, K, T, D)."""
    b, k, t, d = h.shape
    out = net(h.permute(0, 2, 1, 3).reshape(b * t, k, d))
    return out.reshape(b, t, k, d).permute(0, 2, 1, 3)


def over_time(net: nn.Module, h: Tensor) -> Tensor:
    """Run `net` (N, T, D) -> (N, T, D) along time for every band: h (B, K, T, D) -> (B, K, T, D)."""
    b, k, t, d = h.shape
    return net(h.reshape(b * k, t, d)).reshape(b, k, t, d)


def one_block(backbone: BackboneConfig, l_max: int | None = None) -> SequenceBackbone:
    """A single bidirectional residual block of `backbone`'s kind (no final norm); `l_max` goes to mixers that take
    one (the sequence length)."""
    config = BackboneConfig.of(backbone, n_layers=1, bidirectional=True, final_norm=False)
    return SequenceBackbone(config if l_max is None else config.with_l_max(l_max))


class DualPathSSM(nn.Module):
    """`backbone.n_layers` layers of (bidirectional SSM block along time, then across bands); (B, K, T, D) in/out."""

    def __init__(self, backbone: BackboneConfig, n_bands: int, n_frames: int) -> None:
        super().__init__()
        self.time = nn.ModuleList(one_block(backbone, n_frames) for _ in range(backbone.n_layers))
        self.band = nn.ModuleList(one_block(backbone, n_bands) for _ in range(backbone.n_layers))

    def forward(self, h: Tensor) -> Tensor:
        for time, band in zip(self.time, self.band, strict=True):
            h = over_bands(band, over_time(time, h))
        return h


class ConvBlock(nn.Module):
    """Apollo's ConvActNorm1d: x + 1x1(SiLU(1x1_up(RMSNorm(depthwise_conv(x))))), x (N, T, D)."""

    def __init__(self, d_model: int, kernel: int = 7, expand: int = 4) -> None:
        super().__init__()
        self.depthwise = nn.Conv1d(d_model, d_model, kernel, padding=kernel // 2, groups=d_model)
        self.norm = RMSNorm(d_model)
        self.up, self.down = nn.Linear(d_model, expand * d_model), nn.Linear(expand * d_model, d_model)

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm(self.depthwise(x.transpose(1, 2)).transpose(1, 2))
        return x + self.down(F.silu(self.up(h)))


class RoformerConv(nn.Module):
    """`n_layers` layers of (RoPE Transformer block across bands, then a 3-block convolution stack along time);
    (B, K, T, D) in/out: the anchor's band-sequence network."""

    def __init__(self, d_model: int, n_layers: int, n_heads: int = 4, kernel: int = 7, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        attention = BackboneConfig(
            d_model=d_model, mixer="attention", mixer_kwargs={"n_heads": n_heads}, mlp_ratio=mlp_ratio
        )
        self.band = nn.ModuleList(one_block(attention) for _ in range(n_layers))
        self.time = nn.ModuleList(
            nn.Sequential(*(ConvBlock(d_model, kernel) for _ in range(3))) for _ in range(n_layers)
        )

    def forward(self, h: Tensor) -> Tensor:
        for band, time in zip(self.band, self.time, strict=True):
            h = over_time(time, over_bands(band, h))
        return h


class BandRestorer(nn.Module):
    """The whole restorer: waveform (B, L) -> restored waveform (B, L) (see the module doc)."""

    def __init__(
        self,
        sample_rate: int,
        n_fft: int,
        hop: int,
        splits_hz: list[float],
        widths_hz: list[float],
        d_model: int,
        network: Callable[[int], nn.Module],
        residual: bool = True,
    ) -> None:
        """`network(n_bands)` builds the band-sequence network for width d_model."""
        super().__init__()
        self.widths = band_layout(n_fft, sample_rate, splits_hz, widths_hz)
        self.split = BandSplit(self.widths, n_fft, hop, d_model)
        self.network = network(len(self.widths))
        self.merge = BandMerge(self.widths, d_model)
        self.residual = residual
        if residual:  # start as the identity: the network learns what to add to the input spectrum
            self.merge.zero_()

    def forward(self, x: Tensor) -> Tensor:
        """x (B, L) -> y (B, L)."""
        scale = x.square().mean(-1, keepdim=True).sqrt().clamp_min(1e-4)
        spec = self.split.stft(x / scale)
        mapped = self.merge(self.network(self.split(spec)))
        if self.residual:
            mapped = mapped + spec
        return self.split.istft(mapped, x.shape[-1]) * scale


def chunk_window(chunk: int, overlap: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """(chunk,) weights: sin^2 rising over the first `overlap` samples, 1 between, cos^2 falling over the last;
    a falling edge and the next chunk's rising edge sum to exactly 1."""
    w = torch.ones(chunk, dtype=torch.float64)
    if overlap:
        rise = torch.sin(torch.pi / 2 * (torch.arange(overlap, dtype=torch.float64) + 0.5) / overlap).square()
        w[:overlap], w[-overlap:] = rise, rise.flip(0)
    return w.to(dtype)


def chunk_starts(length: int, chunk: int, overlap: int) -> list[int]:
    """Start of each chunk of `chunk` samples, stepping by chunk - overlap, the last one ending at `length`."""
    if length <= chunk:
        return [0]
    starts = list(range(0, length - chunk, chunk - overlap))
    return starts + [length - chunk]


@torch.no_grad()
def restore_in_chunks(
    fn: Callable[[Tensor], Tensor], x: Tensor, chunk: int, overlap: int, chunk_batch: int = 4
) -> Tensor:
    """fn over x (L,) in overlapping chunks of `chunk` samples (`chunk_batch` at a time, so memory is bounded by
    the chunk, not the file), blended by windowed overlap-add normalised by the summed window: a time-local fn
    gives exactly fn(x), and there is no seam. x shorter than a chunk is one call, fn(x)."""
    if not 0 <= overlap < chunk:
        raise ValueError(f"overlap must lie in [0, chunk={chunk}), got {overlap}")
    length = x.shape[-1]
    if length <= chunk:
        return fn(x[None])[0]
    starts = chunk_starts(length, chunk, overlap)
    window = chunk_window(chunk, overlap, x.dtype).to(x.device)
    out, total = torch.zeros_like(x), torch.zeros_like(x)
    for i in range(0, len(starts), chunk_batch):
        group = starts[i : i + chunk_batch]
        y = fn(torch.stack([x[s : s + chunk] for s in group]))
        for s, y_s in zip(group, y, strict=True):
            out[s : s + chunk] += window * y_s
            total[s : s + chunk] += window
    return out / total
