"""Degradations for `audio.restore`: a real MP3 round trip through soundfile, and a zero-phase low-pass.

MP3: soundfile 0.13+ with libsndfile 1.2 (its bundled LAME + mpg123) encodes and decodes MP3 in memory:
`sf.write(buffer, x, sample_rate, format="MP3", bitrate_mode=..., compression_level=...)`. soundfile has no
bitrate argument; the bitrate is set through two settings (measured here on white noise, 4 s):

- `bitrate_mode="CONSTANT"` (CBR) or `"AVERAGE"` (ABR): the bitrate is interpolated from `compression_level`
  between the MPEG version's highest and lowest bitrates, `kbps = max - level * (max - min)`, and LAME snaps it to
  its table: MPEG-1 (32 / 44.1 / 48 kHz) 320 ... 32 kbps, MPEG-2 (16 / 22.05 / 24 kHz) 160 ... 8 kbps, MPEG-2.5
  (8 / 11.025 / 12 kHz) 64 ... 8 kbps. At 22.05 kHz, ABR at 32 kbps measured 31.6 kbps with its low-pass at about
  8.3 kHz (16 kbps: 5.5 kHz; 64 kbps: 10 kHz).
- `"VARIABLE"` (VBR, the default): `compression_level` is a quality, not a bitrate (22.05 kHz, level 0.99 still
  gives 24 kbps), so it cannot aim at a bitrate.
- CBR decodes with the encoder delay in front (1,656 extra samples at 22.05 kHz), ABR and VBR come back gapless;
  so ABR is used, and a decoded clip of another length is aligned to the input by cross-correlation anyway.

Only the MPEG sample rates above encode; another rate raises a ValueError that names them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import soundfile as sf

# sample rates -> (lowest, highest) bitrate of the MPEG version that codes them
MPEG_KBPS = {
    **dict.fromkeys((32000, 44100, 48000), (32, 320)),
    **dict.fromkeys((16000, 22050, 24000), (8, 160)),
    **dict.fromkeys((8000, 11025, 12000), (8, 64)),
}


def compression_level(kbps: float, sample_rate: int) -> float:
    """soundfile's `compression_level` that makes ABR / CBR aim at `kbps` at `sample_rate` (see the module doc)."""
    if sample_rate not in MPEG_KBPS:
        raise ValueError(f"MP3 codes only the sample rates {sorted(MPEG_KBPS)} Hz, got {sample_rate}")
    low, high = MPEG_KBPS[sample_rate]
    return float(np.clip((high - kbps) / (high - low), 0.0, 1.0))


def mp3_bytes(x: np.ndarray, sample_rate: int, kbps: float) -> bytes:
    """x (L,) float32 in [-1, 1] -> an MP3 file (ABR at about `kbps`) as bytes."""
    buffer = io.BytesIO()
    level = compression_level(kbps, sample_rate)
    sf.write(buffer, x, sample_rate, format="MP3", bitrate_mode="AVERAGE", compression_level=level)
    return buffer.getvalue()


def mp3_roundtrip(x: np.ndarray, sample_rate: int, kbps: float) -> np.ndarray:
    """x (L,) float32 -> x encoded as MP3 at about `kbps` and decoded again, (L,) float32, aligned to x."""
    decoded, _ = sf.read(io.BytesIO(mp3_bytes(np.clip(x, -1, 1), sample_rate, kbps)), dtype="float32")
    return align(decoded, x)


def align(decoded: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """decoded (L',) -> (L,) like reference: a longer clip is cut at the lag that best matches the reference (the
    codec's delay), a shorter one padded with zeros at the end."""
    n = len(reference)
    if len(decoded) <= n:
        return np.pad(decoded, (0, n - len(decoded))).astype(np.float32)
    extra = len(decoded) - n
    size = 1 << int(np.ceil(np.log2(len(decoded) + n)))
    spectrum = np.fft.rfft(decoded, size) * np.conj(np.fft.rfft(reference, size))
    lag = int(np.argmax(np.fft.irfft(spectrum, size)[: extra + 1]))
    return decoded[lag : lag + n].astype(np.float32)


def lowpass(x: np.ndarray, sample_rate: int, cutoff_hz: float, transition_hz: float = 200.0) -> np.ndarray:
    """x (L,) -> x low-passed at `cutoff_hz`, zero-phase (an FFT mask with a raised-cosine roll-off of
    `transition_hz` ending at the cut-off), (L,) float32."""
    freqs = np.fft.rfftfreq(len(x), 1 / sample_rate)
    ramp = np.clip((cutoff_hz - freqs) / transition_hz, 0, 1)
    mask = 0.5 - 0.5 * np.cos(np.pi * ramp)
    return np.fft.irfft(np.fft.rfft(x) * mask, len(x)).astype(np.float32)


@dataclass(frozen=True)
class Degradation:
    """What happened to a clip: peak level of the clean clip, MP3 bitrate, low-pass cut-off (None: none)."""

    peak: float
    kbps: float
    lowpass_hz: float | None = None

    def apply(self, clean: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
        """clean (L,) -> (degraded (L,), clean (L,) scaled to `peak`), float32."""
        clean = (clean * (self.peak / max(float(np.abs(clean).max()), 1e-6))).astype(np.float32)
        source = clean if self.lowpass_hz is None else lowpass(clean, sample_rate, self.lowpass_hz)
        return mp3_roundtrip(source, sample_rate, self.kbps), clean


@dataclass(frozen=True)
class DegradationRange:
    """The random degradations of training pairs: peak level, MP3 bitrate (uniform in kbps), and with probability
    `lowpass_prob` a low-pass with a cut-off uniform in `lowpass_hz`."""

    peak: tuple[float, float] = (0.3, 0.95)
    kbps: tuple[float, float] = (16.0, 64.0)
    lowpass_prob: float = 0.5
    lowpass_hz: tuple[float, float] = (4000.0, 10000.0)

    def draw(self, rng: np.random.Generator, sample_rate: int) -> Degradation:
        cutoff = rng.uniform(*self.lowpass_hz) if rng.random() < self.lowpass_prob else None
        if cutoff is not None and cutoff >= sample_rate / 2:
            cutoff = None
        return Degradation(float(rng.uniform(*self.peak)), float(rng.uniform(*self.kbps)), cutoff)
