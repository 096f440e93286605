"""Short causal depthwise convolution (Mamba's `conv1d`, Hyena's and H3's short filters) in its two modes.

The convolution is a depthwise `nn.Conv1d(C, C, K, groups=C)` applied causally: y_t depends on x_{t-K+1..t}.
The recurrent mode keeps the last K inputs as state `(B, C, K)`; split across ranks, a chunk reads the K inputs
before it from the previous rank (`causal_conv_continued`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssmkit.ops.sequence_parallel import conv_halo, current_split

Tensor = torch.Tensor


def causal_conv(conv: nn.Conv1d, x: Tensor) -> Tensor:
    """x: (B, C, L) -> (B, C, L), left-padded so no output sees the future."""
    return conv(F.pad(x, (conv.kernel_size[0] - 1, 0)))


def causal_conv_step(conv: nn.Conv1d, window: Tensor, x_t: Tensor) -> tuple[Tensor, Tensor]:
    """One position: window (B, C, K) holds the previous inputs; x_t (B, C). Returns (y_t, new window)."""
    window = torch.cat([window[..., 1:], x_t[..., None]], dim=-1)
    y = (window * conv.weight[:, 0, :]).sum(-1)
    return (y if conv.bias is None else y + conv.bias), window


def causal_conv_from(conv: nn.Conv1d, window: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
    """x: (B, C, L) continuing after `window` (B, C, K), the last K inputs before it (zeros at a sequence's start)
    -> (y (B, C, L), the window after x): `causal_conv` over the whole sequence, read in pieces."""
    full = torch.cat([window[..., 1:], x], dim=-1)
    return conv(full), causal_conv_window(full, conv.kernel_size[0])


def causal_conv_continued(conv: nn.Conv1d, x: Tensor, window: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """x: (B, C, L) -> (y (B, C, L), the window after x or None): `causal_conv` continuing after `window` (a
    recurrent state's, then the new window is returned), else, inside `sequence_parallel`, after the previous rank's
    last inputs (`conv_halo`), else from zeros."""
    if window is not None:
        return causal_conv_from(conv, window.to(x.dtype), x)
    split = current_split()
    if split is not None:
        return causal_conv_from(conv, conv_halo(x, conv.kernel_size[0], split.group), x)[0], None
    return causal_conv(conv, x), None


def causal_conv_window(x: Tensor, kernel_size: int) -> Tensor:
    """The recurrent state after reading x: (B, C, L): its last K inputs, zero-padded on the left: (B, C, K)."""
    return F.pad(x, (max(0, kernel_size - x.shape[-1]), 0))[..., -kernel_size:].contiguous()


def cached_conv_step(history: Tensor, t: int, x_t: Tensor, k: Tensor) -> Tensor:
    """One position of a long causal convolution in recurrent form (a cached convolution).

    history: (B, C, L_max) inputs so far, written here at position t; x_t: (B, C); k: (C, >= t + 1) the
    kernel. Returns y_t = sum_{s <= t} k[:, s] * x_{t - s}: (B, C). Cost and memory grow with t.
    """
    history[..., t] = x_t
    return (history[..., : t + 1].flip(-1) * k[:, : t + 1]).sum(-1)
