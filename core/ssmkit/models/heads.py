"""Output heads over backbone hidden states `h: (B, L, D)`."""

from __future__ import annotations

import torch
from torch import nn

from ssmkit.layers.mixer import padding_mask

Tensor = torch.Tensor
POOLINGS = ("mean", "last", "cls")


def pool(h: Tensor, pooling: str, lengths: Tensor | None = None) -> Tensor:
    """(B, L, D) -> (B, D). mean: over valid positions; last: the last valid position; cls: position 0."""
    if pooling == "cls":
        return h[:, 0]
    if pooling == "last":
        idx = (h.new_full((h.shape[0],), h.shape[1], dtype=torch.long) if lengths is None else lengths) - 1
        return h[torch.arange(h.shape[0], device=h.device), idx]
    if pooling == "mean":
        if lengths is None:
            return h.mean(1)
        mask = padding_mask(lengths, h.shape[1])[..., None].to(h.dtype)
        return (h * mask).sum(1) / lengths[:, None].to(h.dtype)
    raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")


class LMHead(nn.Module):
    """Next-token logits (B, L, V); `tie_to` shares the weight of an `nn.Embedding`."""

    def __init__(self, d_model: int, vocab_size: int, tie_to: nn.Embedding | None = None) -> None:
        super().__init__()
        self.proj = nn.Linear(d_model, vocab_size, bias=False)
        if tie_to is not None:
            self.proj.weight = tie_to.weight

    def forward(self, h: Tensor) -> Tensor:
        return self.proj(h)


class ClassificationHead(nn.Module):
    """Pooled logits (B, n_classes) with mean / last / cls pooling."""

    def __init__(self, d_model: int, n_classes: int, pooling: str = "mean", dropout: float = 0.0) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(d_model, n_classes)

    def forward(self, h: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.proj(self.dropout(pool(h, self.pooling, lengths)))


class RegressionHead(nn.Module):
    """Real-valued outputs: per position (B, L, d_out) with pooling=None, else pooled (B, d_out)."""

    def __init__(self, d_model: int, d_out: int = 1, pooling: str | None = None) -> None:
        super().__init__()
        if pooling is not None and pooling not in POOLINGS:
            raise ValueError(f"pooling must be None or one of {POOLINGS}, got {pooling!r}")
        self.pooling = pooling
        self.proj = nn.Linear(d_model, d_out)

    def forward(self, h: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.proj(h if self.pooling is None else pool(h, self.pooling, lengths))
