"""Spectral loss and metrics of `audio.restore`: the multi-resolution STFT loss, the codec's cut-off frequency, and
the log-spectral distance above it.

- `mrstft_loss(y, x)`: for each STFT size n (hop n / 4, Hann window), the L1 distance of magnitudes plus the L1
  distance of log magnitudes (log(|S| + 1e-5)), averaged over the sizes (Apollo's `freq_MAE` family; Yamamoto et
  al.'s Parallel WaveGAN uses spectral convergence + log magnitude).
- `codec_cutoff(clean, degraded)`: the lowest bin c such that no bin from c up keeps `ratio` (0.1, -10 dB) of the
  clean clip's mean power in the degraded one (bins 60 dB below the clean clip's loudest count as cut): where the
  codec (or low-pass) cut the spectrum.
- `lsd(reference, estimate, start)`: the log-spectral distance over bins >= start, per clip:
  mean over frames of sqrt(mean over bins of (log10(P_ref + eps) - log10(P_est + eps))^2), P = |STFT|^2,
  eps = 1e-8 (NVSR / AudioSR's definition, restricted to the band above the cut-off).
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor
LOG_EPS = 1e-5
POWER_EPS = 1e-8


def magnitude(x: Tensor, n_fft: int) -> Tensor:
    """x (B, L) -> |STFT| (B, n_fft // 2 + 1, T), hop n_fft / 4, Hann window."""
    window = torch.hann_window(n_fft, dtype=x.dtype, device=x.device)
    return torch.stft(x, n_fft, n_fft // 4, window=window, return_complex=True).abs()


def mrstft_loss(estimate: Tensor, target: Tensor, sizes: tuple[int, ...] = (256, 512, 1024)) -> Tensor:
    """estimate, target (B, L) -> the multi-resolution STFT L1 loss (a scalar; see the module doc)."""
    total = estimate.new_zeros(())
    for n_fft in sizes:
        s_est, s_ref = magnitude(estimate, n_fft), magnitude(target, n_fft)
        total = total + (s_est - s_ref).abs().mean() + ((s_est + LOG_EPS).log() - (s_ref + LOG_EPS).log()).abs().mean()
    return total / len(sizes)


def codec_cutoff(clean: Tensor, degraded: Tensor, n_fft: int = 512, ratio: float = 0.1) -> Tensor:
    """clean, degraded (B, L) -> the cut-off bin (B,) long of each clip (n_fft // 2 + 1 where nothing was cut)."""
    p_clean = magnitude(clean, n_fft).square().mean(-1)  # (B, F)
    p_degraded = magnitude(degraded, n_fft).square().mean(-1)
    audible = p_clean > 1e-6 * p_clean.amax(1, keepdim=True)  # bins the clean clip has anything in
    kept = (p_degraded >= ratio * p_clean) & audible  # (B, F): the bin survived
    n_bins = kept.shape[1]
    bins = torch.arange(n_bins, device=clean.device)
    last_kept = torch.where(kept, bins, torch.full_like(bins, -1)).amax(1)  # (B,)
    return (last_kept + 1).clamp(max=n_bins)


def lsd(reference: Tensor, estimate: Tensor, start: Tensor, n_fft: int = 512) -> Tensor:
    """reference, estimate (B, L), start (B,) bins -> LSD over bins >= start (B,); NaN where no bin is above."""
    log_ref = (magnitude(reference, n_fft).square() + POWER_EPS).log10()
    log_est = (magnitude(estimate, n_fft).square() + POWER_EPS).log10()
    above = (torch.arange(log_ref.shape[1], device=start.device)[None] >= start[:, None]).to(log_ref.dtype)  # (B, F)
    n_above = above.sum(1)  # (B,)
    mean_sq = ((log_ref - log_est).square() * above[..., None]).sum(1) / n_above[:, None].clamp_min(1)  # (B, T)
    distance = mean_sq.sqrt().mean(-1)
    return torch.where(n_above > 0, distance, torch.full_like(distance, float("nan")))
