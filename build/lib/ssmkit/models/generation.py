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
    _check_prompt(prompt)
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


def _check_prompt(prompt: Tensor) -> None:
    if prompt.dim() != 2 or prompt.shape[1] < 1:
        raise ValueError(f"prompt must have shape (B, T) with T >= 1, got {tuple(prompt.shape)}")


def select_state(state: list[State], rows: Tensor) -> list[State]:
    """Picks (and repeats) batch rows of every layer's state: rows (B',) indexes the batch. States are batch-first."""
    return [{name: t.index_select(0, rows) for name, t in layer.items()} for layer in state]


@torch.no_grad()
def beam_search(
    model: StepModel,
    prompt: Tensor,
    max_new_tokens: int,
    *,
    num_beams: int = 4,
    num_groups: int = 1,
    diversity_penalty: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """Beam search on the recurrent path: prompt (B, T) -> (sequences (B, num_beams, T + max_new_tokens), their
    log-probabilities (B, num_beams)), best first. Every sequence has the same length (no end token), so scores are
    plain sums of log-probabilities.

    With `num_groups` > 1, diverse beam search (Vijayakumar et al., 2018): the beams form groups of
    num_beams / num_groups, decoded in turn at each step, each group's candidate scores lowered by
    `diversity_penalty` times the number of beams of earlier groups that chose the same token at this step
    (Hamming diversity). The returned scores are the true log-probabilities, without the penalty.
    """
    _check_prompt(prompt)
    if num_beams < 1 or num_groups < 1 or num_beams % num_groups:
        raise ValueError(f"num_groups={num_groups} must divide num_beams={num_beams} (both >= 1)")
    batch, width = prompt.shape[0], num_beams // num_groups
    logits, state = model.prefill_logits(prompt)
    rows = torch.arange(batch, device=prompt.device).repeat_interleave(num_beams)
    state, logits, sequences = select_state(state, rows), logits[rows], prompt[rows].view(batch, num_beams, -1)
    # one live beam per group at the start, so the groups do not all pick the same first tokens
    scores = torch.full((batch, num_beams), float("-inf"), device=prompt.device)
    scores[:, ::width] = 0.0
    for _ in range(max_new_tokens):
        logp = torch.log_softmax(logits.float(), dim=-1).view(batch, num_beams, -1)
        origins, tokens, new_scores = _beam_step(scores, logp, num_groups, diversity_penalty)
        flat = (origins + torch.arange(batch, device=prompt.device)[:, None] * num_beams).flatten()
        sequences = torch.cat([sequences.gather(1, origins[..., None].expand_as(sequences)), tokens[..., None]], -1)
        scores = new_scores
        logits, state = model.step_logits(tokens.flatten(), select_state(state, flat))
    order = scores.argsort(dim=1, descending=True)
    return sequences.gather(1, order[..., None].expand_as(sequences)), scores.gather(1, order)


def _beam_step(scores: Tensor, logp: Tensor, num_groups: int, penalty: float) -> tuple[Tensor, Tensor, Tensor]:
    """scores (B, K), logp (B, K, V) -> the beams kept: origin beams, tokens and scores, each (B, K)."""
    batch, beams, vocab = logp.shape
    width = beams // num_groups
    chosen = logp.new_zeros(batch, vocab)  # how often earlier groups chose each token at this step
    origins, tokens, kept = [], [], []
    for g in range(num_groups):
        group = slice(g * width, (g + 1) * width)
        total = (scores[:, group, None] + logp[:, group]).flatten(1)  # (B, width * V)
        _, best = (total - penalty * chosen.repeat(1, width)).topk(width, dim=1)
        origins.append(best // vocab + g * width)
        tokens.append(best % vocab)
        kept.append(total.gather(1, best))
        chosen.scatter_add_(1, tokens[-1], torch.ones_like(kept[-1]))
    return torch.cat(origins, 1), torch.cat(tokens, 1), torch.cat(kept, 1)
