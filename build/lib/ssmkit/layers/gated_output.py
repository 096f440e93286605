"""The pointwise output map of S4-style layers (S4, S4D, DSS, LSSL, S5's "full_glu", LRU):

    out = GLU(W · dropout(GELU(y))) = a * sigmoid(b),   [a, b] = W · dropout(GELU(y)),   W: D -> 2D

It mixes channels after the channel-wise SSM, as in state-spaces/s4 and minimal-LRU. Shapes: (..., D) -> (..., D).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GatedOutput(nn.Module):
    def __init__(self, d_model: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(d_model, 2 * d_model)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return F.glu(self.linear(self.dropout(F.gelu(y))), dim=-1)
