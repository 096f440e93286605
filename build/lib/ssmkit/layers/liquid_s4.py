"""Liquid-S4 (Hasani et al., 2023, "Liquid Structural State-Space Models").

A liquid time-constant SSM, x_k = (A_bar + B_bar u_k) x_{k-1} + B_bar u_k, unrolled, adds to S4's
convolution terms in the correlations of consecutive inputs. Liquid-S4's "KB" form keeps them as extra
convolutions with the S4 kernel scaled per channel by powers of the summed input matrix:

    y = K * u  +  sum_{p=2}^{P}  (K * s^(p-1)) * U_p  +  D u,       s = Re(sum_n B_bar_n)   (per channel)
    U_p[t] = u_t u_{t-1} ... u_{t-p+1}                                (zero before the sequence starts)
    out = GLU(W gelu(y))

This is the causal form: U_p multiplies each input with the p-1 before it (the reference code builds the
products on a time-flipped sequence, which looks ahead). K is S4's DPLR kernel (`ssmkit.layers.s4.S4`).
`step` runs one recurrence per degree p on U_p and keeps the last P-1 inputs to form the products.
"""

from __future__ import annotations

import torch

from ssmkit.layers.mixer import State
from ssmkit.layers.s4 import S4
from ssmkit.ops import fft_conv
from ssmkit.registry import register_mixer

Tensor = torch.Tensor


def input_products(u: Tensor, degree: int) -> Tensor:
    """U_p[t] = prod_{i<p} u_{t-i} for p = 2..degree: u (B, H, L) -> (degree - 1, B, H, L)."""
    products, running = [], u
    for p in range(1, degree):
        running = running * torch.nn.functional.pad(u, (p, 0))[..., : u.shape[-1]]
        products.append(running)
    return torch.stack(products) if products else u.new_zeros(0, *u.shape)


@register_mixer("liquid_s4")
class LiquidS4(S4):
    tiny_kwargs = {"d_state": 8, "l_max": 16, "liquid_degree": 3}

    def __init__(self, d_model: int, d_state: int = 64, l_max: int = 1024, liquid_degree: int = 2, **s4_kwargs):
        """liquid_degree P >= 1 (1 is plain S4). Other arguments as S4's (causal only)."""
        if s4_kwargs.get("bidirectional"):
            raise ValueError("liquid_s4 is causal: bidirectional=True is not supported")
        if liquid_degree < 1:
            raise ValueError(f"liquid_degree must be >= 1, got {liquid_degree}")
        super().__init__(d_model, d_state, l_max, **s4_kwargs)
        self.liquid_degree = liquid_degree

    def _liquid_scales(self) -> Tensor:
        """s^(p-1) for p = 2..P: (P - 1, H)."""
        s = self._dense()[1].sum(-1).real  # Re(sum_n B_bar_n), conjugate modes included
        return (
            torch.stack([s ** (p - 1) for p in range(2, self.liquid_degree + 1)]) if self.liquid_degree > 1 else s[:0]
        )

    def _forward(self, x: Tensor, lengths: Tensor | None) -> Tensor:
        u = x.transpose(1, 2)
        K = self.kernel(u.shape[-1])
        y = fft_conv(u, K, self.D)
        for U_p, scale in zip(input_products(u, self.liquid_degree), self._liquid_scales(), strict=True):
            y = y + fft_conv(U_p, K * scale[:, None])
        return self.output(y.transpose(1, 2))

    def allocate_state(
        self, batch_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> State:
        f = self._factory(device, dtype)
        h = super().allocate_state(batch_size, device, dtype)["h"]
        return {
            "h": h.new_zeros(h.shape[0], self.liquid_degree, *h.shape[1:]),  # (B, P, ...): one recurrence per degree
            "inputs": torch.zeros(batch_size, self.d_model, max(self.liquid_degree - 1, 1), **f),  # newest last
        }

    def _step(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        A_bar, B_bar, C = self._step_cache.get(self, self._step_system)
        window = torch.cat([state["inputs"], x_t[..., None]], dim=-1)  # (B, H, P): ..., u_{t-1}, u_t
        products = window.flip(-1).cumprod(-1)[..., : self.liquid_degree]  # U_1 = u_t, U_2, ..., U_P
        h = torch.einsum("hnm,bphm->bphn", A_bar, state["h"]) + B_bar * products.transpose(1, 2)[..., None]
        y = (C * h).sum(-1).real.to(x_t.dtype)  # (B, P, H)
        scales = torch.cat([torch.ones_like(self.D)[None], self._liquid_scales()])  # (P, H)
        state.update(h=h, inputs=window[..., 1:])
        return self.output((scales * y).sum(1) + self.D * x_t), state
