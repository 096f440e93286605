"""The audio plugin's pictures: spectrograms of clips, drawn with `ssmkit.train.plots.save_figure`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ssmkit.train.plots import save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Tensor = torch.Tensor


def spectrogram_db(waveform: Tensor, sample_rate: int, window_ms: float = 32.0) -> Tensor:
    """waveform (L,) -> power spectrogram in dB (n_fft // 2 + 1, frames), floored 80 dB below its peak."""
    n_fft = round(sample_rate * window_ms / 1000)
    window = torch.hann_window(n_fft)
    waveform = torch.nn.functional.pad(waveform, (0, max(0, n_fft - len(waveform))))  # a clip shorter than a window
    spec = torch.stft(waveform.float(), n_fft, n_fft // 4, window=window, return_complex=True).abs().square()
    db = 10 * torch.log10(spec + 1e-10)
    return db.clamp_min(db.max() - 80)


def clips_figure(waveforms: list[Tensor], sample_rate: int, titles: list[str]) -> Figure:
    """One row per clip (L_i,): its waveform and its spectrogram (time in s, frequency in Hz), titled."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(waveforms), 2, figsize=(11, 2.2 * len(waveforms)), squeeze=False)
    for (ax_wave, ax_spec), w, title in zip(axes, waveforms, titles, strict=True):
        seconds = len(w) / sample_rate
        ax_wave.plot(torch.arange(len(w)) / sample_rate, w, linewidth=0.5)
        ax_wave.set(xlim=(0, seconds), ylabel="amplitude", title=title)
        extent = (0, seconds, 0, sample_rate / 2)
        ax_spec.imshow(spectrogram_db(w, sample_rate), origin="lower", aspect="auto", extent=extent, cmap="magma")
        ax_spec.set(ylabel="Hz", title="spectrogram (dB)")
    for ax in axes[-1]:
        ax.set_xlabel("time (s)")
    fig.tight_layout()
    return fig


def plot_clips(waveforms: list[Tensor], sample_rate: int, titles: list[str], out: Path) -> Path:
    """`clips_figure` written to `out`."""
    return save_figure(clips_figure(waveforms, sample_rate, titles), out)
