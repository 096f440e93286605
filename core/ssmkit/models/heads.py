"""Output heads over backbone hidden states `h: (B, L, D)`."""

from __future__ import annotations

import torch
from torch import nn

from ssmkit.layers.mixer import padding_mask

Tensor = torch.Tensor
POOLINGS = ("mean", "meanmax", "last", "cls")


def pooled_width(d_model: int, pooling: str | None) -> int:
    """The width of `pool`'s output: 2 d_model for meanmax, else d_model."""
    return 2 * d_model if pooling == "meanmax" else d_model


def pool(h: Tensor, pooling: str, lengths: Tensor | None = None) -> Tensor:
    """(B, L, D) -> (B, D), or (B, 2 D) for meanmax. mean: over valid positions; meanmax: their mean and maximum side
    by side; last: the last valid position; cls: position 0."""
    if pooling == "meanmax":
        valid = h if lengths is None else h.masked_fill(~padding_mask(lengths, h.shape[1])[..., None], float("-inf"))
        return torch.cat([pool(h, "mean", lengths), valid.amax(1)], -1)
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
    """Pooled logits (B, n_classes) with mean / meanmax / last / cls pooling."""

    def __init__(self, d_model: int, n_classes: int, pooling: str = "mean", dropout: float = 0.0) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(pooled_width(d_model, pooling), n_classes)

    def forward(self, h: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.proj(self.dropout(pool(h, self.pooling, lengths)))


class RegressionHead(nn.Module):
    """Real-valued outputs: per position (B, L, d_out) with pooling=None, else pooled (B, d_out)."""

    def __init__(self, d_model: int, d_out: int = 1, pooling: str | None = None) -> None:
        super().__init__()
        if pooling is not None and pooling not in POOLINGS:
            raise ValueError(f"pooling must be None or one of {POOLINGS}, got {pooling!r}")
        self.pooling = pooling
        self.proj = nn.Linear(pooled_width(d_model, pooling), d_out)

    def forward(self, h: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.proj(h if self.pooling is None else pool(h, self.pooling, lengths))


class FourierHead(nn.Module):
    """A predictive distribution over a continuous value: a categorical over `n_bins` equal bins of
    [low, high] whose logits are a Fourier series in the bin centre (Gillman et al., 2024, "Fourier Head"):

        logit_i = sum_{k=1..n_freqs} a_k cos(pi k c_i) + b_k sin(pi k c_i),   c_i in (-1, 1) the rescaled centre

    with (a, b) = Linear(h). Few frequencies keep the density smooth across neighbouring bins, which a plain
    softmax over bins does not. Values outside [low, high] fall into the edge bins.
    """

    def __init__(self, d_model: int, n_bins: int = 64, n_freqs: int = 8, low: float = -1.0, high: float = 1.0) -> None:
        super().__init__()
        if not low < high:
            raise ValueError(f"FourierHead needs low < high, got low={low}, high={high}")
        if n_bins < 2 or n_freqs < 1:
            raise ValueError(f"FourierHead needs n_bins >= 2 and n_freqs >= 1, got {n_bins} and {n_freqs}")
        self.n_bins, self.low, self.high = n_bins, low, high
        self.width = (high - low) / n_bins
        self.register_buffer("centres", low + self.width * (torch.arange(n_bins) + 0.5), persistent=False)
        unit = 2 * (self.centres - low) / (high - low) - 1  # (n_bins,) in (-1, 1)
        k = torch.arange(1, n_freqs + 1) * torch.pi
        basis = torch.cat([torch.cos(unit[:, None] * k), torch.sin(unit[:, None] * k)], -1)
        self.register_buffer("basis", basis, persistent=False)  # (n_bins, 2 n_freqs)
        self.proj = nn.Linear(d_model, 2 * n_freqs)

    def forward(self, h: Tensor) -> Tensor:
        """h: (..., D) -> logits (..., n_bins)."""
        return self.proj(h) @ self.basis.T

    def bin_index(self, y: Tensor) -> Tensor:
        """y: (...) -> the bin holding each value (...) long; outside [low, high] -> the edge bin."""
        return ((y - self.low) / self.width).floor().long().clamp(0, self.n_bins - 1)

    def nll(self, logits: Tensor, y: Tensor) -> Tensor:
        """Mean negative log-density of y (...) under logits (..., n_bins): bin NLL + log(bin width)."""
        ce = nn.functional.cross_entropy(logits.reshape(-1, self.n_bins), self.bin_index(y).reshape(-1))
        return ce + torch.log(torch.tensor(self.width, device=logits.device))

    def mean(self, logits: Tensor) -> Tensor:
        """logits (..., n_bins) -> expected value (...)."""
        return logits.softmax(-1) @ self.centres

    def sample(self, logits: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """logits (..., n_bins) -> one draw per distribution (...), uniform within the drawn bin."""
        probs = logits.softmax(-1).reshape(-1, self.n_bins)
        idx = torch.multinomial(probs, 1, generator=generator).reshape(logits.shape[:-1])
        jitter = torch.rand(idx.shape, generator=generator, device=logits.device) - 0.5
        return self.centres[idx] + jitter * self.width
