"""SeqBoat (Ren et al., 2023, "Sparse Modular Activation for Efficient Sequence Modeling").

A diagonal SSM runs over every token; a gate then decides, per token, whether the attention sub-module runs
for it (sparse modular activation). Attention sees only the activated tokens, in order, so its cost follows
the number of activations rather than the length:

    h      = DiagonalSSM(W_in x)                      (B, L, D), every token
    p_t    = sigmoid(w . h_t),   a_t = [p_t > 1/2]    the activation decision
    attn   = causal attention over the activated tokens' h (compressed sequence, positions = activation order)
    y_t    = W_o (h_t + a_t p_t attn_t)

The gate is trained through p_t (the activated outputs are scaled by it). `step` keeps the SSM state and a
KV cache of the activated tokens only.
"""

from __future__ import annotations

import torch
from torch import nn

from ssmkit.layers.attention import Attention
from ssmkit.layers.diagonal_ssm import DiagonalSSM
from ssmkit.layers.mixer import Mixer, State
from ssmkit.registry import register_mixer

Tensor = torch.Tensor


@register_mixer("seqboat")
class SeqBoat(Mixer):
    compiles_fullgraph = False  # which tokens reach attention depends on the data (a data-dependent width)
    tiny_kwargs = {"d_state": 4, "n_heads": 2}
    computes_in_float32 = True  # its complex S4D-style kernel

    def __init__(self, d_model: int, d_state: int = 16, n_heads: int = 4, window: int | None = None) -> None:
        super().__init__(d_model)
        self.in_proj = nn.Linear(d_model, d_model)
        self.ssm = DiagonalSSM(d_model, d_state)
        self.gate = nn.Linear(d_model, 1)
        self.attention = Attention(d_model, n_heads, causal=True, window=window)
        self.out_proj = nn.Linear(d_model, d_model)

    def activation(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """h (..., D) -> (p (...), active (...) bool)."""
        p = torch.sigmoid(self.gate(h))[..., 0]
        return p, p > 0.5

    def _forward(self, x: Tensor, lengths: Tensor | None) -> Tensor:
        h = self.ssm(self.in_proj(x).transpose(1, 2)).transpose(1, 2)
        p, active = self.activation(h)
        counts = active.sum(1)
        attn = torch.zeros_like(h)
        width = int(counts.max())
        if width:
            # activated tokens first, in their original order; the rest behind them
            order = torch.sort((~active).to(torch.int8), dim=1, stable=True).indices[:, :width]  # (B, K)
            compressed = h.gather(1, order[..., None].expand(-1, -1, self.d_model))
            out = self.attention(compressed, lengths=counts.clamp(min=1))
            out = out * (torch.arange(width, device=x.device)[None, :] < counts[:, None])[..., None]
            attn = attn.scatter(1, order[..., None].expand(-1, -1, self.d_model), out)
        return self.out_proj(h + (active * p)[..., None] * attn)

    def allocate_state(
        self, batch_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> State:
        f = self._factory(device, dtype)
        attention = self.attention.allocate_state(batch_size, f["device"], f["dtype"])
        return {"ssm": self.ssm.zero_state(batch_size, f["device"]), **{f"attn_{k}": v for k, v in attention.items()}}

    def _step(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        h, state["ssm"] = self.ssm.step(self.in_proj(x_t), state["ssm"])
        p, active = self.activation(h)
        cache = {k: state.pop(f"attn_{k}") for k in ("k", "v", "length")}
        attn, cache = self.attention.step_rows(h, cache, active)  # only activated sequences advance
        state.update({f"attn_{k}": v for k, v in cache.items()})
        return self.out_proj(h + (active * p)[:, None] * attn), state
