"""Causal sequence encoders for sensor streams: `x: (B, L, C) -> h: (B, L, D)`, h[:, t] a function of
x[:, :t+1] only. The seq2seq and classify tasks put their heads on any of them.

- `HiSS` (Bhirangi et al., 2024, "Hierarchical State Space Models for Continuous Sequence-to-Sequence
  Modeling"): the stream is cut into chunks of `chunk_size` steps; a low-level backbone (any registry mixer)
  reads each chunk on its own and its last output is the chunk's feature; a high-level backbone reads the
  chunk features, so it runs at the chunk rate. Dense outputs hold the high-level state of the last
  *completed* chunk (before the first chunk completes, the state after a learned start feature), which
  keeps the model causal end to end: h[:, t] sees chunks 0 .. (t + 1) // k - 1.
- `FlatEncoder`: one backbone over the raw stream (flat Mamba, flat S4D, causal Transformer via the
  registry's `attention` mixer, or any other mixer).
- `LSTMEncoder`: a stacked LSTM.
"""

from __future__ import annotations

import torch
from torch import nn

from ssmkit.models.backbone import BackboneConfig, SequenceBackbone

Tensor = torch.Tensor
ENCODERS = ("hiss", "flat", "lstm")
# HiSS's low level when none is given: one Mamba layer of width 32
LOW = BackboneConfig(d_model=32, n_layers=1, mixer="mamba")


class HiSS(nn.Module):
    def __init__(self, d_input: int, chunk_size: int, low: BackboneConfig, high: BackboneConfig) -> None:
        """low / high: the two levels' backbone settings; both must be causal. Output width is high.d_model."""
        super().__init__()
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.chunk_size = chunk_size
        self.low = SequenceBackbone(low, d_input=d_input)
        self.high = SequenceBackbone(high, d_input=self.low.d_model)
        if not (self.low.causal and self.high.causal):
            raise ValueError("HiSS needs causal low- and high-level mixers (bidirectional ones see the future)")
        self.start = nn.Parameter(torch.zeros(self.low.d_model))
        self.d_output = self.high.d_model

    def chunk_features(self, x: Tensor) -> Tensor:
        """x: (B, L, C) with L a multiple of chunk_size -> (B, L // chunk_size, d_low), one per chunk."""
        b, length, c = x.shape
        if length % self.chunk_size:
            raise ValueError(
                f"HiSS: sequence length {length} is not a multiple of chunk_size {self.chunk_size}; "
                "choose a window that is"
            )
        chunks = x.reshape(b * (length // self.chunk_size), self.chunk_size, c)
        return self.low(chunks)[:, -1].reshape(b, length // self.chunk_size, -1)

    def chunk_states(self, x: Tensor) -> Tensor:
        """x: (B, L, C) -> (B, L // k + 1, D): state i has read chunks 0 .. i - 1 (state 0: the start)."""
        features = self.chunk_features(x)
        start = self.start.expand(x.shape[0], 1, -1)
        return self.high(torch.cat([start, features], 1))

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, L, C) -> (B, L, D); step t holds the state after the chunks completed by t."""
        states = self.chunk_states(x)
        index = (torch.arange(x.shape[1], device=x.device) + 1) // self.chunk_size
        return states[:, index]


class FlatEncoder(nn.Module):
    def __init__(self, d_input: int, backbone: BackboneConfig) -> None:
        super().__init__()
        self.backbone = SequenceBackbone(backbone, d_input=d_input)
        if not self.backbone.causal:
            raise ValueError(f"mixer {self.backbone.config.mixer!r} is not causal; sensor encoders must be")
        self.d_output = self.backbone.d_model

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, L, C) -> (B, L, D)."""
        return self.backbone(x)


class LSTMEncoder(nn.Module):
    def __init__(self, d_input: int, d_model: int, n_layers: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.lstm = nn.LSTM(d_input, d_model, n_layers, batch_first=True, dropout=dropout if n_layers > 1 else 0.0)
        self.d_output = d_model

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, L, C) -> (B, L, D)."""
        return self.lstm(x)[0]


def build_encoder(
    encoder: str,
    d_input: int,
    backbone: BackboneConfig | None = None,
    chunk_size: int = 10,
    low: BackboneConfig | None = None,
) -> nn.Module:
    """encoder: 'hiss' (high level `backbone`, low level `low`, default `LOW`), 'flat' (`backbone` over the raw
    stream) or 'lstm' (`backbone`'s d_model, n_layers and dropout). Settings may also be given as dicts."""
    backbone = BackboneConfig.of(backbone)
    if encoder == "hiss":
        return HiSS(d_input, chunk_size, BackboneConfig.of(low or LOW), backbone)
    if encoder == "flat":
        return FlatEncoder(d_input, backbone)
    if encoder == "lstm":
        return LSTMEncoder(d_input, backbone.d_model, backbone.n_layers, backbone.dropout)
    raise ValueError(f"encoder must be one of {ENCODERS}, got {encoder!r}")
