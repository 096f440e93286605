"""Channel MLPs used between mixers."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GatedMLP(nn.Module):
    """SwiGLU MLP: W_2 (silu(W_g x) * W_1 x), hidden width `ratio * d_model` (x: (..., D))."""

    def __init__(self, d_model: int, ratio: float = 4.0, dropout: float = 0.0) -> None:
        super().__init__()
        hidden = max(1, int(ratio * d_model))
        self.fc_in = nn.Linear(d_model, 2 * hidden, bias=False)
        self.fc_out = nn.Linear(hidden, d_model, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.fc_in(x).chunk(2, dim=-1)
        return self.fc_out(self.dropout(F.silu(gate) * value))
