"""Causal long convolution with a skip term, the S4 / H3 / Hyena convolution path:

    y[b, h, t] = sum_{s <= t} k[h, s] * u[b, h, t - s] + D[h] * u[b, h, t]

Shapes: u (B, H, L), k (H, Lk) with Lk <= L (a shorter kernel is zero beyond Lk), D (H,); y (B, H, L).
The reference is the direct O(L·Lk) convolution; the `fft` backend zero-pads to a fast size >= L + Lk - 1
(so the circular FFT product is the linear, causal one) and costs O(L log L).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ssmkit.ops.dispatch import example_inputs, resolve
from ssmkit.shapes import check_shape

Tensor = torch.Tensor


def fft_conv(u: Tensor, k: Tensor, D: Tensor | None = None, *, backend: str | None = None) -> Tensor:
    """Causal convolution of `u: (B, H, L)` with per-channel kernels `k: (H, Lk)`, plus `D * u`."""
    check_shape("u", u, "(B, H, L)", None, None, None)
    _, h, length = u.shape
    check_shape("k", k, "(H, Lk)", h, None)
    if k.shape[-1] > length:
        raise ValueError(f"k is longer than the input: Lk={k.shape[-1]} > L={length}")
    if D is not None:
        check_shape("D", D, "(H,)", h)
    return resolve("fft_conv", u.device.type, backend)(u, k, D)


def fft_conv_ref(u: Tensor, k: Tensor, D: Tensor | None = None) -> Tensor:
    """The spec: a direct causal depthwise convolution (conv1d flips its kernel, so flip k first)."""
    lk = k.shape[-1]
    y = F.conv1d(F.pad(u, (lk - 1, 0)), k.flip(-1)[:, None, :].to(u.dtype), groups=u.shape[1])
    return y if D is None else y + D.to(u.dtype)[:, None] * u


def fft_conv_fft(u: Tensor, k: Tensor, D: Tensor | None = None) -> Tensor:
    """FFT backend. FFTs run in float32 (CPU FFTs reject half precision) or float64."""
    length = u.shape[-1]
    n = fast_fft_size(length + k.shape[-1] - 1)
    work = torch.float64 if u.dtype == torch.float64 else torch.float32
    u_f = torch.fft.rfft(u.to(work), n=n)
    k_f = torch.fft.rfft(k.to(work), n=n)
    y = torch.fft.irfft(u_f * k_f, n=n)[..., :length]
    if D is not None:
        y = y + D.to(work)[:, None] * u.to(work)
    return y.to(u.dtype)


def fast_fft_size(n: int) -> int:
    """The smallest 5-smooth integer >= n (pocketfft and cuFFT are fast on 2^a 3^b 5^c sizes)."""
    m = n
    while True:
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


@example_inputs("fft_conv")
def fft_conv_examples(g: torch.Generator, dtype: torch.dtype) -> list[tuple]:
    """One step; a kernel as long as the input; a short kernel; a prime length without the skip term."""
    cases = []
    for length, lk, skip in ((1, 1, True), (37, 37, True), (33, 5, True), (29, 29, False)):
        u, k, D = (
            torch.randn(2, 3, length, generator=g, dtype=dtype),
            torch.randn(3, lk, generator=g, dtype=dtype),
            torch.randn(3, generator=g, dtype=dtype),
        )
        cases.append((u.requires_grad_(), k.requires_grad_(), D.requires_grad_() if skip else None))
    return cases
