"""LongVQ (Liu et al., 2024, "LongVQ: Long Sequence Modeling with Vector Quantization on Structured
Memory"): a fixed-size codebook as the global memory that queries attend to in linear time, beside a
diagonal SSM for local patterns.

Keys are vector-quantised to a codebook c_1..c_K, so causal softmax attention over the past factorises over
codes (as in Transformer-VQ): with V_j(t) the sum of the values whose key was quantised to c_j up to t and
N_j(t) their count,

    attn_t = sum_j exp(q_t . c_j / sqrt(d)) V_j(t)  /  sum_j exp(q_t . c_j / sqrt(d)) N_j(t)

— exact attention over the quantised keys at O(K) per token, whatever the length. The SSM branch is an
S4D-style diagonal SSM over the input. Output: W_o (silu(z) * (attn + ssm)).

Quantisation is hard in the forward pass; gradients reach the keys through a straight-through softmax over
the distances to the codes (temperature `tau`), and the codebook through the attention scores.
The state for `step` is (V, N) per code plus the SSM state: constant in the sequence length.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ssmkit.layers.diagonal_ssm import DiagonalSSM
from ssmkit.layers.mixer import Mixer, State
from ssmkit.registry import register_mixer

Tensor = torch.Tensor


@register_mixer("longvq")
class LongVQ(Mixer):
    tiny_kwargs = {"n_codes": 5, "d_key": 4, "d_state": 4}
    computes_in_float32 = True  # cdist to the codebook

    def __init__(self, d_model: int, n_codes: int = 64, d_key: int = 32, d_state: int = 16, tau: float = 1.0):
        super().__init__(d_model)
        self.n_codes, self.d_key, self.tau = n_codes, d_key, tau
        self.qk_proj = nn.Linear(d_model, 2 * d_key, bias=False)
        self.vz_proj = nn.Linear(d_model, 2 * d_model, bias=False)
        self.codebook = nn.Parameter(torch.randn(n_codes, d_key))
        self.ssm = DiagonalSSM(d_model, d_state)
        self.out_proj = nn.Linear(d_model, d_model, bias=False)

    def assign(self, k: Tensor) -> Tensor:
        """Keys (..., d_key) -> one-hot code assignments (..., K): hard forward, straight-through softmax back."""
        distances = torch.cdist(k.flatten(0, -2), self.codebook).unflatten(0, k.shape[:-1])
        soft = F.softmax(-distances.square() / self.tau, dim=-1)
        hard = F.one_hot(distances.argmin(-1), self.n_codes).to(k.dtype)
        return hard + soft - soft.detach()

    def _read(self, q: Tensor, values: Tensor, counts: Tensor) -> Tensor:
        """q (..., d_key), values (..., K, D), counts (..., K) -> attention over the codes (..., D)."""
        scores = q @ self.codebook.T / math.sqrt(self.d_key)  # (..., K)
        weights = torch.exp(scores - scores.max(-1, keepdim=True).values)
        return (weights[..., None] * values).sum(-2) / (weights * counts).sum(-1, keepdim=True)

    def _forward(self, x: Tensor, lengths: Tensor | None) -> Tensor:
        q, k = self.qk_proj(x).chunk(2, dim=-1)
        v, z = self.vz_proj(x).chunk(2, dim=-1)
        codes = self.assign(k)  # (B, L, K)
        values = torch.cumsum(codes[..., None] * v[..., None, :], dim=1)  # (B, L, K, D)
        attn = self._read(q, values, torch.cumsum(codes, dim=1))
        local = self.ssm(x.transpose(1, 2)).transpose(1, 2)
        return self.out_proj(F.silu(z) * (attn + local))

    def allocate_state(
        self, batch_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> State:
        f = self._factory(device, dtype)
        return {
            "values": torch.zeros(batch_size, self.n_codes, self.d_model, **f),
            "counts": torch.zeros(batch_size, self.n_codes, **f),
            "ssm": self.ssm.zero_state(batch_size, f["device"]),
        }

    def _step(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        q, k = self.qk_proj(x_t).chunk(2, dim=-1)
        v, z = self.vz_proj(x_t).chunk(2, dim=-1)
        codes = self.assign(k)  # (B, K)
        state["values"] = state["values"] + codes[..., None] * v[:, None, :]
        state["counts"] = state["counts"] + codes
        local, state["ssm"] = self.ssm.step(x_t, state["ssm"])
        return self.out_proj(F.silu(z) * (self._read(q, state["values"], state["counts"]) + local)), state
