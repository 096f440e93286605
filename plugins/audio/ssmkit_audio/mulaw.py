"""8-bit mu-law for `audio.generate`: encoding (torchaudio), the next-sample NLL in bits per sample, the unigram
entropy that is its yardstick, and sampling on the recurrent `step` path.

- `encode` / `decode`: waveforms in [-1, 1] <-> tokens in [0, 256) (`torchaudio.functional.mu_law_encoding`);
  silence is token `SILENCE` (128), also the start token a model reads before the first sample.
- `bits_per_sample(logits, targets, lengths)`: the mean negative log2-likelihood of the valid targets.
- `unigram_bits(token_sets)`: the entropy in bits of the token histogram, the NLL of a model that ignores context.
- `sample(model, n_samples, labels=...)`: tokens drawn one at a time through the model's `step` (memory constant in
  the length), by the core's `ssmkit.models.generation.generate` (temperature / top-k / top-p).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Protocol

import torch
import torchaudio.functional as AF
from torch import nn

from ssmkit.models.generation import generate

Tensor = torch.Tensor
MU_LAW_CLASSES = 256
SILENCE = MU_LAW_CLASSES // 2


def encode(waveform: Tensor) -> Tensor:
    """waveform in [-1, 1] -> mu-law tokens (int64) in [0, 256)."""
    return AF.mu_law_encoding(waveform.clamp(-1, 1), MU_LAW_CLASSES).long()


def decode(tokens: Tensor) -> Tensor:
    """mu-law tokens -> float32 waveform in [-1, 1]."""
    return AF.mu_law_decoding(tokens, MU_LAW_CLASSES).float()


def shift_right(tokens: Tensor) -> Tensor:
    """(B, L) -> the model's input (B, L): `SILENCE`, then tokens 0 .. L-2, so the output at t predicts token t."""
    return torch.cat([torch.full_like(tokens[:, :1], SILENCE), tokens[:, :-1]], 1)


def valid_mask(lengths: Tensor, length: int) -> Tensor:
    """(B,) -> (B, length) bool, True before each length."""
    return torch.arange(length, device=lengths.device) < lengths[:, None]


def nll_nats(logits: Tensor, targets: Tensor, lengths: Tensor) -> Tensor:
    """Mean cross-entropy (nats) of logits (B, L, 256) against targets (B, L) over the valid positions."""
    ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2).float(), targets, reduction="none")
    mask = valid_mask(lengths, targets.shape[1])
    return (ce * mask).sum() / mask.sum().clamp_min(1)


def bits_per_sample(logits: Tensor, targets: Tensor, lengths: Tensor) -> Tensor:
    """Mean negative log2-likelihood of the valid targets: `nll_nats / ln 2`."""
    return nll_nats(logits, targets, lengths) / math.log(2)


def unigram_bits(token_sets: Iterable[Tensor]) -> float:
    """Entropy (bits) of the histogram of all tokens in `token_sets` (1-D tensors of valid tokens)."""
    counts = sum(torch.bincount(t.flatten(), minlength=MU_LAW_CLASSES) for t in token_sets)
    p = counts.double() / counts.sum()
    p = p[p > 0]
    return float(-(p * p.log2()).sum())


class MuLawEmbedding(nn.Module):
    """Tokens (B, ...) -> (B, ..., d_model); with `n_classes` > 0, plus an embedding of the clip's label (B,), added
    at every step (generation conditioned on the label, e.g. the digit)."""

    def __init__(self, d_model: int, n_classes: int = 0) -> None:
        super().__init__()
        self.tokens = nn.Embedding(MU_LAW_CLASSES, d_model)
        self.labels = nn.Embedding(n_classes, d_model) if n_classes else None

    def forward(self, tokens: Tensor, labels: Tensor | None = None) -> Tensor:
        x = self.tokens(tokens)
        if self.labels is not None:
            if labels is None:
                raise ValueError("this model is conditioned on a label: pass labels (B,)")
            x = x + self.labels(labels).view(len(labels), *[1] * (tokens.dim() - 1), -1)
        return x


class StepLM(Protocol):
    def allocate_state(self, batch_size: int, device: Any = None, dtype: torch.dtype | None = None) -> Any: ...
    def step(self, token_t: Tensor, state: Any, labels: Tensor | None = None) -> tuple[Tensor, Any]: ...


class _Stepper:
    """A `StepLM` (and its conditioning labels) as the core generator's `prefill_logits` / `step_logits`."""

    def __init__(self, model: StepLM, labels: Tensor | None, dtype: torch.dtype) -> None:
        self.model, self.labels, self.dtype = model, labels, dtype

    def prefill_logits(self, prompt: Tensor) -> tuple[Tensor, Any]:
        state = self.model.allocate_state(prompt.shape[0], prompt.device, self.dtype)
        for t in range(prompt.shape[1]):
            logits, state = self.model.step(prompt[:, t], state, self.labels)
        return logits, state

    def step_logits(self, token_t: Tensor, state: Any) -> tuple[Tensor, Any]:
        return self.model.step(token_t, state, self.labels)


@torch.no_grad()
def sample(
    model: StepLM,
    n_samples: int,
    batch_size: int = 1,
    labels: Tensor | None = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    device: Any = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """`n_samples` tokens (B, n_samples) drawn one at a time after the start token (`SILENCE`) on the `step` path;
    B is `len(labels)` when labels (B,) condition the model, else `batch_size`."""
    b = batch_size if labels is None else len(labels)
    prompt = torch.full((b, 1), SILENCE, dtype=torch.long, device=device)
    tokens = generate(
        _Stepper(model, labels, dtype),
        prompt,
        n_samples,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        generator=generator,
    )
    return tokens[:, 1:]
