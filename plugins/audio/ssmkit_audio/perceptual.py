"""STOI and PESQ, the test-time perceptual metrics of `audio.restore` (torchmetrics' audio module).

- STOI (`pystoi`, a pure-Python wheel and a dependency of the plugin) at the clip's own rate; pystoi resamples to
  10 kHz and scores 15 third-octave bands from 150 Hz to about 4.3 kHz. A clip too short for its 30-frame segments
  (after pystoi drops silent frames) gets NaN, not pystoi's placeholder 1e-5.
- Wide-band PESQ (ITU-T P.862.2, `pesq`) on the clips resampled to 16 kHz (PESQ takes only 8 or 16 kHz); it scores
  about 50 Hz-7 kHz. `pesq` publishes no wheel (it compiles from source with a C compiler), so it is the plugin's
  optional extra `ssmkit-audio[pesq]`: without it PESQ is skipped with one log line. A clip PESQ refuses (no
  utterance found, too short) gets NaN.

Both were designed for speech and score only the band below 4.3 / 7 kHz, so they say nothing about what a restorer
adds above an MP3 coder's cut-off (8.3 kHz at 32 kbps and 22.05 kHz); `spectral.lsd` above the cut-off does.
"""

from __future__ import annotations

import importlib.util
import warnings

import torch
from lightning.pytorch.utilities import rank_zero_info
from torchaudio.functional import resample
from torchmetrics.functional.audio import short_time_objective_intelligibility

Tensor = torch.Tensor
PESQ_RATE = 16000
PESQ_AVAILABLE = importlib.util.find_spec("pesq") is not None
_said_no_pesq = False


def stoi(estimate: Tensor, reference: Tensor, sample_rate: int) -> float:
    """estimate, reference (L,) -> STOI in [0, 1] (NaN where the clip is too short to score)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x, y = estimate.float().cpu(), reference.float().cpu()
        score = float(short_time_objective_intelligibility(x, y, sample_rate))
    too_short = any("Not enough STFT frames" in str(w.message) for w in caught)
    return float("nan") if too_short else score


def pesq_wb(estimate: Tensor, reference: Tensor, sample_rate: int) -> float:
    """estimate, reference (L,) -> wide-band PESQ (MOS-LQO, about 1.0-4.6) at 16 kHz (NaN where PESQ refuses the
    clip); requires the `pesq` package (torchmetrics exports its PESQ function only where `pesq` is installed, so
    both are imported here, not with the module)."""
    from pesq import PesqError
    from torchmetrics.functional.audio.pesq import perceptual_evaluation_speech_quality

    x, y = (resample(w.double().cpu(), sample_rate, PESQ_RATE) for w in (estimate, reference))
    try:
        return float(perceptual_evaluation_speech_quality(x, y, PESQ_RATE, "wb"))
    except PesqError:
        return float("nan")


def perceptual_scores(
    restored: Tensor, degraded: Tensor, clean: Tensor, lengths: Tensor, sample_rate: int
) -> dict[str, Tensor]:
    """restored, degraded, clean (B, L), lengths (B,) -> {"stoi", "stoi_input", "pesq", "pesq_input"}: (B,) scores
    of the output and of the input against the clean clip, each clip cut to its length (no PESQ without `pesq`)."""
    global _said_no_pesq
    metrics = {"stoi": stoi}
    if PESQ_AVAILABLE:
        metrics["pesq"] = pesq_wb
    elif not _said_no_pesq:
        rank_zero_info("PESQ skipped: the `pesq` package is not installed (pip install 'ssmkit-audio[pesq]')")
        _said_no_pesq = True
    scores = {}
    for name, metric in metrics.items():
        for suffix, signal in (("", restored), ("_input", degraded)):
            clips = zip(signal, clean, lengths.tolist(), strict=True)
            values = [metric(s[:n], c[:n], sample_rate) for s, c, n in clips]
            scores[name + suffix] = torch.tensor(values, dtype=torch.float64)
    return scores
