"""H3 (Fu et al., 2023, "Hungry Hungry Hippos: Towards Language Modeling with State Space Models").

Two SSMs and multiplicative interactions, the SSM analogue of linear attention's q (k^T v):

    q, k, v = W_q u, W_k u, W_v u                                 (B, L, D), H heads of head_dim d
    k       = shift_ssm(k)                   a shift SSM: a learned causal kernel over the last `shift_size` steps
    kv      = k v^T per head                 (B, L, H, d, d)  (head_dim 1: the element-wise product k * v)
    kv      = diag_ssm(kv)                   one S4D-style diagonal SSM per kv channel (FlashConv state passing)
    y       = out_proj(q^T kv per head)      (B, L, D)

The shift SSM remembers recent tokens (a learned short convolution: the SSM with the shift matrix as A); the
diagonal SSM carries the kv memory over the whole sequence. `step` runs both recurrently.
"""

from __future__ import annotations

import torch
from torch import nn

from ssmkit.layers.conv import causal_conv, causal_conv_step
from ssmkit.layers.diagonal_ssm import DiagonalSSM
from ssmkit.layers.mixer import Mixer, State
from ssmkit.registry import register_mixer

Tensor = torch.Tensor


@register_mixer("h3")
class H3(Mixer):
    tiny_kwargs = {"d_state": 4, "head_dim": 2, "shift_size": 3}
    computes_in_float32 = True  # S4D's complex kernels and FFT convolutions

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        head_dim: int = 1,
        shift_size: int = 4,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        block_size: int | None = None,
    ) -> None:
        super().__init__(d_model)
        if d_model % head_dim:
            raise ValueError(f"d_model={d_model} must be divisible by head_dim={head_dim}")
        self.head_dim, self.n_heads = head_dim, d_model // head_dim
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.shift = nn.Conv1d(d_model, d_model, shift_size, groups=d_model, bias=False)
        self.ssm = DiagonalSSM(d_model * head_dim, d_state, dt_min=dt_min, dt_max=dt_max, block_size=block_size)
        self.out_proj = nn.Linear(d_model, d_model)

    def _outer(self, k: Tensor, v: Tensor) -> Tensor:
        """k, v: (..., D) -> per-head outer products flattened: (..., D * head_dim)."""
        k = k.unflatten(-1, (self.n_heads, self.head_dim, 1))
        v = v.unflatten(-1, (self.n_heads, 1, self.head_dim))
        return (k * v).flatten(-3)

    def _read(self, q: Tensor, kv: Tensor) -> Tensor:
        """q: (..., D), kv: (..., D * head_dim) -> (..., D): y_j = sum_i q_i kv_ij per head."""
        kv = kv.unflatten(-1, (self.n_heads, self.head_dim, self.head_dim))
        return torch.einsum("...hi,...hij->...hj", q.unflatten(-1, (self.n_heads, self.head_dim)), kv).flatten(-2)

    def _forward(self, u: Tensor, lengths: Tensor | None) -> Tensor:
        q, k, v = self.qkv(u).chunk(3, dim=-1)
        k = causal_conv(self.shift, k.transpose(1, 2)).transpose(1, 2)
        kv = self.ssm(self._outer(k, v).transpose(1, 2)).transpose(1, 2)
        return self.out_proj(self._read(q, kv))

    def allocate_state(
        self, batch_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> State:
        f = self._factory(device, dtype)
        return {
            "shift": torch.zeros(batch_size, self.d_model, self.shift.kernel_size[0], **f),
            "ssm": self.ssm.zero_state(batch_size, f["device"]),
        }

    def _step(self, u_t: Tensor, state: State) -> tuple[Tensor, State]:
        q, k, v = self.qkv(u_t).chunk(3, dim=-1)
        k, state["shift"] = causal_conv_step(self.shift, state["shift"], k)
        kv, state["ssm"] = self.ssm.step(self._outer(k, v), state["ssm"])
        return self.out_proj(self._read(q, kv)), state
