"""GSS: the gated state space layer (Mehta, Gupta, Cutkosky & Neyshabur, 2023, "Long Range Language Modeling via
Gated State Spaces"), Figure 1 without the norm and residual (the backbone adds those):

    v  = gelu(x W_v)          (B, L, F)     F = expand * E
    u  = gelu(x W_u)          (B, L, H)     H = d_ssm, a reduced width for the SSM
    y  = DSS(u)               (B, L, H)     the DSS-softmax core (`DSSCore`), per channel
    uc = y W_uc               (B, L, F)
    o  = (uc ⊙ v) W_o         (B, L, E)

The multiplicative gate lets a small SSM width H do the long-range mixing. The step runs the core's recurrence.
The DSS core's Λ and log_dt are dynamics parameters (no weight decay).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssmkit.layers.dss import DSSCore
from ssmkit.layers.mixer import Mixer, State
from ssmkit.registry import register_mixer

Tensor = torch.Tensor


@register_mixer("gss")
class GSS(Mixer):
    tiny_kwargs = {"d_state": 8, "d_ssm": 4, "expand": 2, "l_max": 32}
    computes_in_float32 = True  # DSS's complex kernel
    takes_l_max = True

    def __init__(
        self,
        d_model: int,
        d_ssm: int | None = None,
        expand: int = 4,
        d_state: int = 64,
        l_max: int = 1024,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
    ) -> None:
        super().__init__(d_model)
        d_ssm = d_ssm or max(1, d_model // 4)
        self.v_proj = nn.Linear(d_model, expand * d_model)
        self.u_proj = nn.Linear(d_model, d_ssm)
        self.ssm = DSSCore(d_ssm, d_state, l_max, dt_min, dt_max)
        self.uc_proj = nn.Linear(d_ssm, expand * d_model)
        self.out_proj = nn.Linear(expand * d_model, d_model)

    def _gate(self, x: Tensor, y: Tensor) -> Tensor:
        return self.out_proj(self.uc_proj(y) * F.gelu(self.v_proj(x)))

    def _forward(self, x: Tensor, lengths: Tensor | None) -> Tensor:
        return self._gate(x, self.ssm(F.gelu(self.u_proj(x))))

    def allocate_state(
        self, batch_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> State:
        return {"h": self.ssm.allocate(batch_size, **self._factory(device, dtype))}

    def _step(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        y, state["h"] = self.ssm.step(F.gelu(self.u_proj(x_t)), state["h"])
        return self._gate(x_t, y), state
