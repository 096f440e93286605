"""Autoregressive decoding: the prompt is read in one parallel pass (`prefill_logits`: mixers with a parallel
form return their state directly, the others step through it), then tokens come one at a time on the recurrent
`step` path, so memory stays constant in the generated length (for SSM mixers; attention's KV cache grows, as it
must).

    tokens = generate(model, prompt, max_new_tokens=100, temperature=0.8, top_k=20)
"""

from __future__ import annotations

from typing import Protocol

import torch

from ssmkit.layers.mixer import State

Tensor = torch.Tensor


class StepModel(Protocol):
    def prefill_logits(self, prompt: Tensor) -> tuple[Tensor, list[State]]: ...
    def step_logits(self, tokens_t: Tensor, state: list[State]) -> tuple[Tensor, list[State]]: ...


def filter_logits(logits: Tensor, top_k: int | None = None, top_p: float | None = None) -> Tensor:
    """Set to -inf all but the top-k logits and outside the smallest set with probability mass >= top_p."""
    if top_k is not None and top_k > 0:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cum = torch.softmax(sorted_logits, dim=-1).cumsum(-1)
        drop_sorted = cum - torch.softmax(sorted_logits, dim=-1) >= top_p  # keep the token that crosses top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


@torch.no_grad()
def generate(
    model: StepModel,
    prompt: Tensor,
    max_new_tokens: int,
    *,
    greedy: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """prompt: (B, T) token ids -> (B, T + max_new_tokens). Greedy, or sampling with temperature/top-k/top-p."""
    if prompt.dim() != 2 or prompt.shape[1] < 1:
        raise ValueError(f"prompt must have shape (B, T) with T >= 1, got {tuple(prompt.shape)}")
    if not greedy and temperature <= 0:
        raise ValueError(f"temperature must be > 0 (or use greedy=True), got {temperature}")
    logits, state = model.prefill_logits(prompt)
    out = [prompt]
    for _ in range(max_new_tokens):
        if greedy:
            nxt = logits.argmax(-1)
        else:
            probs = torch.softmax(filter_logits(logits.float() / temperature, top_k, top_p), dim=-1)
            nxt = torch.multinomial(probs, 1, generator=generator)[:, 0]
        out.append(nxt[:, None])
        logits, state = model.step_logits(nxt, state)
    return torch.cat(out, dim=1)
