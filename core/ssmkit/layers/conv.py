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


def causal_conv_continued(
    conv: nn.Conv1d, x: Tensor, window: Tensor | None = None, resets: Tensor | None = None
) -> tuple[Tensor, Tensor | None]:
    """x: (B, C, L) -> (y (B, C, L), the window after x or None): `causal_conv` continuing after `window` (a
    recurrent state's, then the new window is returned), else, inside `sequence_parallel`, after the previous rank's
    last inputs (`conv_halo`), else from zeros. `resets: (B, L)` bool restarts the window before the flagged steps
    (no output reads an input before the last reset at or before it; the window after x holds zeros before it)."""
    if window is not None:
        if resets is not None:
            return causal_conv_restarting(conv, x, resets, window), restarted_window(window, x, resets)
        return causal_conv_from(conv, window.to(x.dtype), x)
    split = current_split()
    before = None if split is None else conv_halo(x, conv.kernel_size[0], split.group)
    if resets is not None:
        return causal_conv_restarting(conv, x, resets, before), None
    if before is not None:
        return causal_conv_from(conv, before, x)[0], None
    return causal_conv(conv, x), None


def causal_conv_restarting(conv: nn.Conv1d, x: Tensor, resets: Tensor, window: Tensor | None = None) -> Tensor:
    """`causal_conv` of x: (B, C, L) whose window restarts where `resets: (B, L)` is set: y_t = bias + sum_k
    w_k x_{t-k} over the k that do not reach back past the last reset at or before t. `window` (B, C, K): the K
    inputs before x (zeros when None), read until the first reset. Returns (B, C, L)."""
    K, length = conv.kernel_size[0], x.shape[-1]
    full = torch.cat([x.new_zeros(*x.shape[:2], K - 1) if window is None else window[..., 1:].to(x.dtype), x], -1)
    steps = torch.arange(length, device=x.device)
    last_reset = torch.where(resets, steps, -K).cummax(dim=-1).values  # (B, L): -K where none yet
    since = (steps - last_reset)[:, None, :]  # (B, 1, L): how far back the window may reach
    weight = conv.weight[:, 0, :, None]  # (C, K, 1); weight[:, K - 1] multiplies x_t
    y = sum(weight[:, K - 1 - k] * full[..., K - 1 - k : K - 1 - k + length] * (since >= k) for k in range(K))
    return y if conv.bias is None else y + conv.bias[:, None]


def restarted_window(window: Tensor, x: Tensor, resets: Tensor) -> Tensor:
    """The recurrent window (B, C, K) after reading x: (B, C, L) from `window`, with the inputs before the last
    reset in x (B, L) zeroed: the state a restarted sequence continues from."""
    K, length = window.shape[-1], x.shape[-1]
    last = causal_conv_window(torch.cat([window.to(x.dtype), x], dim=-1), K)
    steps = torch.arange(length, device=x.device)
    last_reset = torch.where(resets, steps, -1 - K).amax(dim=-1, keepdim=True)  # (B, 1): -1 - K where none
    positions = torch.arange(length - K, length, device=x.device)  # of the window's entries, in x's steps
    return last * (positions >= last_reset)[:, None, :]


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
