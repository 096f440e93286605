"""Orchid (Karami & Ghodsi, 2024, "Orchid: Flexible and Data-Dependent Convolution for Sequence Modeling").

A global convolution whose kernel is computed from the input by a shift-equivariant conditioning network,
so that the operator stays shift-equivariant while adapting to the data:

    q, v, x  = short_conv(in_proj(u))                  (B, L, D) each
    a, b     = T_a(x), T_b(x)                          conditioning nets: depthwise conv -> GELU -> pointwise conv
    h(x)     = (a cross-correlated with b) / n         h_tau = sum_s a_{s+tau} b_s, lags -(n-1)..(n-1)
    y        = W_o ( q * ( h(x) * v  +  h_static * v  +  D v ) )

Cross-correlation cancels a shift of x (both a and b move together), so h(x) is shift-invariant and the
convolution with v shift-equivariant. The data-dependent kernel is two-sided: Orchid is a non-causal
(bidirectional) mixer, with a static learned kernel `h_static` (two-sided, length 2 * static_len - 1) beside
the dynamic one. All convolutions are linear (zero-padded), and padded positions are masked before the
correlation, so padding never changes valid outputs. Conditioning convolutions have no bias, which keeps
zero regions zero (exact equivariance under shifts within the padding).
"""

from __future__ import annotations

import torch
from torch import nn

from ssmkit.layers.mixer import Mixer, no_weight_decay, padding_mask
from ssmkit.ops.fft_conv import fast_fft_size
from ssmkit.registry import register_mixer

Tensor = torch.Tensor


def conditioning_net(d_model: int, kernel: int) -> nn.Sequential:
    """Shift-equivariant, zero-preserving: depthwise conv, GELU, pointwise conv, all without bias."""
    return nn.Sequential(
        nn.Conv1d(d_model, d_model, kernel, padding=kernel // 2, groups=d_model, bias=False),
        nn.GELU(),
        nn.Conv1d(d_model, d_model, 1, bias=False),
    )


def two_sided_conv(v: Tensor, h_f: Tensor, n_fft: int) -> Tensor:
    """y_t = sum_tau h_tau v_{t - tau} over lags of both signs, given the kernel's spectrum h_f with lag 0 at
    index 0 and negative lags wrapped to the end; n_fft >= 3L - 2 keeps it linear. v (B, D, L) -> (B, D, L)."""
    return torch.fft.irfft(torch.fft.rfft(v, n=n_fft) * h_f, n=n_fft)[..., : v.shape[-1]]


@register_mixer("orchid")
class Orchid(Mixer):
    causal = False
    tiny_kwargs = {"short_kernel": 3, "cond_kernel": 3, "static_len": 4}
    computes_in_float32 = True  # FFT convolutions

    def __init__(self, d_model: int, short_kernel: int = 3, cond_kernel: int = 3, static_len: int = 64) -> None:
        super().__init__(d_model)
        for name, k in (("short_kernel", short_kernel), ("cond_kernel", cond_kernel)):
            if k < 1 or k % 2 == 0:
                raise ValueError(f"{name} must be odd (a centred kernel), got {k}")
        self.in_proj = nn.Linear(d_model, 3 * d_model)
        self.short_conv = nn.Conv1d(3 * d_model, 3 * d_model, short_kernel, padding=short_kernel // 2,
                                    groups=3 * d_model, bias=False)  # fmt: skip
        self.cond_a, self.cond_b = conditioning_net(d_model, cond_kernel), conditioning_net(d_model, cond_kernel)
        self.static = nn.Parameter(0.02 * torch.randn(d_model, 2 * static_len - 1))  # lags -(s-1)..(s-1)
        self.D = nn.Parameter(torch.ones(d_model))
        self.out_proj = nn.Linear(d_model, d_model)
        no_weight_decay(self.static)  # a long-convolution kernel, as in long_conv

    def _forward(self, u: Tensor, lengths: Tensor | None) -> Tensor:
        b, length, _ = u.shape
        mask = torch.ones(b, 1, length, dtype=u.dtype, device=u.device)
        if lengths is not None:
            mask = padding_mask(lengths, length)[:, None, :].to(u.dtype)
        projected = self.in_proj(u).transpose(1, 2) * mask  # zeros at padding, as beyond the ends
        q, v, x = (self.short_conv(projected) * mask).chunk(3, dim=1)  # (B, D, L) each
        n_fft = fast_fft_size(3 * length)  # room for lags of both signs without wrap-around
        a_f = torch.fft.rfft(self.cond_a(x) * mask, n=n_fft)
        b_f = torch.fft.rfft(self.cond_b(x) * mask, n=n_fft)
        n = mask.sum(-1, keepdim=True)  # valid length per sequence: (B, 1, 1)
        dynamic_f = a_f * b_f.conj() / n  # spectrum of the cross-correlation, lag 0 at index 0
        y = two_sided_conv(v, dynamic_f + self._static_spectrum(n_fft, length), n_fft)
        return self.out_proj((q * (y + self.D[:, None] * v)).transpose(1, 2))

    def _static_spectrum(self, n_fft: int, length: int) -> Tensor:
        """Spectrum of the static kernel's lags -(h-1)..(h-1), h = min(static_len, L) (longer lags never meet
        the input), lag 0 at index 0 and negative lags wrapped to the end: (1, D, n_fft // 2 + 1)."""
        centre = (self.static.shape[-1] - 1) // 2
        h = min(centre + 1, length)
        positive, negative = self.static[:, centre : centre + h], self.static[:, centre - h + 1 : centre]
        gap = self.static.new_zeros(self.d_model, n_fft - 2 * h + 1)
        return torch.fft.rfft(torch.cat([positive, gap, negative], dim=-1), n=n_fft)[None]
