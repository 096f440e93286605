"""`LanguageModel`: a token backbone with an LM head, the unit that `generate` decodes."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ssmkit.layers.mixer import State
from ssmkit.models.backbone import SequenceBackbone
from ssmkit.models.generation import generate
from ssmkit.models.heads import LMHead
from ssmkit.registry import register_model

Tensor = torch.Tensor


class TokenDecoder:
    """The decoding protocol of `ssmkit.models.generation` for a module with a causal token `backbone`
    (`SequenceBackbone`) and an `lm_head`: the recurrent state, the prompt read in one pass, one step at a time."""

    backbone: SequenceBackbone
    lm_head: LMHead

    def allocate_state(self, batch_size: int, device=None, dtype=None) -> list[State]:
        return self.backbone.allocate_state(batch_size, device, dtype)

    def prefill_logits(self, prompt: Tensor, chunk_size: int | None = None) -> tuple[Tensor, list[State]]:
        """prompt: (B, T) -> (logits at the last position (B, V), the state after it), in one parallel pass, or in
        chunks of `chunk_size` tokens, each read from the previous chunk's state (memory bounded by the chunk)."""
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        state = None
        for chunk in prompt.split(chunk_size or max(prompt.shape[1], 1), dim=1):
            h, state = self.backbone.prefill(chunk, state)
        return self.lm_head(h[:, -1]), state

    def step_logits(self, tokens_t: Tensor, state: list[State]) -> tuple[Tensor, list[State]]:
        """tokens_t: (B,) -> logits (B, V)."""
        h, state = self.backbone.step(tokens_t, state)
        return self.lm_head(h), state

    def generate(self, prompt: Tensor, max_new_tokens: int, **sampling: Any) -> Tensor:
        """prompt (B, T) ids -> (B, T + max_new_tokens); sampling: greedy / temperature / top_k / top_p."""
        return generate(self, prompt, max_new_tokens, **sampling)


class LanguageModel(TokenDecoder, nn.Module):
    def __init__(self, vocab_size: int, d_model: int, n_layers: int, tie_embeddings: bool = False, **kw: Any):
        """Backbone kwargs (mixer, mixer_kwargs, mlp_ratio, hybrid, ...) pass through `**kw`."""
        super().__init__()
        self.backbone = SequenceBackbone(d_model=d_model, n_layers=n_layers, vocab_size=vocab_size, **kw)
        self.lm_head = LMHead(d_model, vocab_size, self.backbone.embedding if tie_embeddings else None)

    def forward(self, tokens: Tensor, *, lengths: Tensor | None = None) -> Tensor:
        """tokens: (B, L) -> logits (B, L, V)."""
        return self.lm_head(self.backbone(tokens, lengths=lengths))


def _preset(**defaults: Any):
    def build(vocab_size: int, **overrides: Any) -> LanguageModel:
        return LanguageModel(vocab_size, **{**defaults, **overrides})

    return build


# Language-model presets, `ssmkit.create_model(name, vocab_size=..., **overrides)`. Mamba blocks carry no
# MLP (two Mamba blocks have about the parameters of one attention + MLP block, as in the Mamba paper).
register_model("mamba_lm_tiny")(_preset(d_model=64, n_layers=2, mixer="mamba"))
register_model("mamba_lm_small")(_preset(d_model=256, n_layers=4, mixer="mamba"))
register_model("s4d_lm_small")(_preset(d_model=256, n_layers=4, mixer="s4d", mlp_ratio=2.0))
register_model("transformer_lm_small")(_preset(d_model=256, n_layers=4, mixer="attention", mlp_ratio=4.0))
