"""`WaveNetLM`, the baseline of `audio.generate`: a WaveNet-style stack (van den Oord et al., 2016) of dilated
causal convolutions over 8-bit mu-law tokens, in the same harness as SaShiMi and matched to its parameter count
(`matched_channels`).

    embedding (B, L, C) -> n_layers x [ dilated causal conv (kernel 2, dilation 2^(i mod cycle), C -> 2C),
    tanh * sigmoid gate, 1x1 residual (+ input) and 1x1 skip ] -> sum of skips -> ReLU, 1x1, ReLU, 1x1 -> 256

Causal by left-padding each convolution by its dilation; the receptive field is 1 + sum(dilations) samples.
`step` runs it one sample at a time: each layer keeps its last `dilation` inputs in a ring buffer, so memory is
fixed by the receptive field, not the generated length (tests/plugins/audio/test_audio_generate.py checks causality
and step = forward). An optional label embedding conditions every layer's input, as in SaShiMi here.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ssmkit_audio.mulaw import MU_LAW_CLASSES, MuLawEmbedding

Tensor = torch.Tensor


class WaveNetLayer(nn.Module):
    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.dilation = dilation
        self.conv = nn.Conv1d(channels, 2 * channels, 2, dilation=dilation)
        self.residual = nn.Linear(channels, channels)
        self.skip = nn.Linear(channels, channels)

    def gate(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """h (..., 2C) conv output -> (residual, skip) contributions."""
        a, b = h.chunk(2, -1)
        z = torch.tanh(a) * torch.sigmoid(b)
        return self.residual(z), self.skip(z)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, L, C) -> (x + residual, skip), both (B, L, C)."""
        h = self.conv(F.pad(x.transpose(1, 2), (self.dilation, 0))).transpose(1, 2)
        res, skip = self.gate(h)
        return x + res, skip

    def step(self, x_t: Tensor, buffer: Tensor, t: int) -> tuple[Tensor, Tensor]:
        """x_t (B, C) at time t; buffer (B, dilation, C) holds x at t - dilation .. t - 1 (slot t mod dilation is
        x[t - dilation], overwritten by x_t)."""
        slot = t % self.dilation
        past = buffer[:, slot].clone()
        buffer[:, slot] = x_t
        w = self.conv.weight  # (2C, C, 2): tap 0 reads t - dilation, tap 1 reads t
        h = past @ w[..., 0].T + x_t @ w[..., 1].T + self.conv.bias
        res, skip = self.gate(h)
        return x_t + res, skip


class WaveNetLM(nn.Module):
    """Mu-law tokens (B, L) -> next-sample logits (B, L, 256), causal (the output at t reads tokens <= t)."""

    def __init__(self, channels: int = 64, n_layers: int = 10, cycle: int = 10, n_classes: int = 0) -> None:
        super().__init__()
        self.channels = channels
        self.embedding = MuLawEmbedding(channels, n_classes)
        self.layers = nn.ModuleList(WaveNetLayer(channels, 2 ** (i % cycle)) for i in range(n_layers))
        self.out = nn.Sequential(nn.ReLU(), nn.Linear(channels, channels), nn.ReLU(), nn.Linear(channels, 256))

    @property
    def receptive_field(self) -> int:
        return 1 + sum(layer.dilation for layer in self.layers)

    def forward(self, tokens: Tensor, labels: Tensor | None = None) -> Tensor:
        x, skips = self.embedding(tokens, labels), 0
        for layer in self.layers:
            x, skip = layer(x)
            skips = skips + skip
        return self.out(skips)

    def allocate_state(self, batch_size: int, device: Any = None, dtype: torch.dtype | None = None) -> dict[str, Any]:
        dtype = dtype or torch.get_default_dtype()
        shape = (batch_size, self.channels)
        buffers = [torch.zeros(shape[0], layer.dilation, shape[1], device=device, dtype=dtype) for layer in self.layers]
        return {"t": 0, "buffers": buffers}

    def step(self, token_t: Tensor, state: dict[str, Any], labels: Tensor | None = None) -> tuple[Tensor, dict]:
        """token_t (B,) -> logits (B, 256)."""
        x, skips, t = self.embedding(token_t, labels), 0, state["t"]
        for layer, buffer in zip(self.layers, state["buffers"], strict=True):
            x, skip = layer.step(x, buffer, t)
            skips = skips + skip
        state["t"] = t + 1
        return self.out(skips), state


def n_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def matched_channels(target: int, n_layers: int, cycle: int, n_classes: int = 0) -> int:
    """The channel count whose `WaveNetLM` has the parameter count closest to `target` (e.g. SaShiMi's)."""

    def count(c: int) -> int:
        per_layer = 2 * c * 2 * c + 2 * c + 2 * (c * c + c)  # conv (kernel 2, C -> 2C), residual, skip
        return (MU_LAW_CLASSES + n_classes) * c + n_layers * per_layer + c * c + c + c * 256 + 256

    return min(range(1, 1025), key=lambda c: abs(count(c) - target))
