"""LSSL: the linear state-space layer (Gu et al., 2021, "Combining Recurrent, Convolutional, and Continuous-time
Models with Linear State-Space Layers").

Per channel h, a dense N x N continuous-time system with a HiPPO state matrix and a learnable timescale Δ_h:

    x'(t) = A x(t) + B u(t),  y = C x + D u          A, B = hippo(measure, N)  ('legs', 'legt' or 'fout')
    A_bar, B_bar = bilinear(A, B, Δ_h)              `bilinear_discretise` (GBT, α = 1/2), Δ_h = exp(log_dt_h)
    recurrent:      x_k = A_bar x_{k-1} + B_bar u_k,  y_k = C x_k + D u_k                               (`step`)
    convolutional:  y = K * u + D u,  K[l] = C A_bar^l B_bar                       (`krylov_kernel`, `fft_conv`)
    out = GLU(W gelu(y))                                                           (`GatedOutput`)

The two modes are the same map (the kernel is the recurrence's impulse response). A and B are frozen HiPPO buffers
(the paper's LSSL-fixed) unless `learn_A=True`. The paper's M copies per channel with their own Δ are here the
channels themselves (one Δ per channel), mixed by the output layer. log_dt (and A, B when learnt) are dynamics
parameters (no weight decay).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ssmkit.layers.dt_init import log_dt_init
from ssmkit.layers.gated_output import GatedOutput
from ssmkit.layers.mixer import Mixer, State, no_weight_decay
from ssmkit.ops import bilinear_discretise, fft_conv, krylov_kernel
from ssmkit.ops.hippo import hippo
from ssmkit.registry import register_mixer

Tensor = torch.Tensor


@register_mixer("lssl")
class LSSL(Mixer):
    tiny_kwargs = {"d_state": 8}
    computes_in_float32 = True  # the discretisation's matrix solve (lu)

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        measure: str = "legs",
        learn_A: bool = False,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(d_model)
        A, B = hippo(measure, d_state, dtype=torch.float32)
        if learn_A:
            self.A, self.B = nn.Parameter(A), nn.Parameter(B)
            no_weight_decay(self.A, self.B)
        else:
            self.register_buffer("A", A)
            self.register_buffer("B", B)
        self.log_dt = nn.Parameter(log_dt_init(d_model, dt_min, dt_max))
        self.C = nn.Parameter(torch.randn(d_model, d_state) / math.sqrt(d_state))
        self.D = nn.Parameter(torch.randn(d_model))
        self.output = GatedOutput(d_model, dropout)
        no_weight_decay(self.log_dt)

    def _forward(self, x: Tensor, lengths: Tensor | None) -> Tensor:
        A_bar, B_bar = bilinear_discretise(self.A, self.B, self.log_dt)
        K = krylov_kernel(A_bar, B_bar, self.C, x.shape[1])
        return self.output(fft_conv(x.transpose(1, 2), K, self.D).transpose(1, 2))

    def allocate_state(
        self, batch_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> State:
        return {"x": torch.zeros(batch_size, *self.C.shape, **self._factory(device, dtype))}

    def _step(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        A_bar, B_bar = bilinear_discretise(self.A, self.B, self.log_dt)
        s = torch.einsum("hnm,bhm->bhn", A_bar, state["x"]) + B_bar * x_t[..., None]
        state["x"] = s
        return self.output((self.C * s).sum(-1) + self.D * x_t), state
