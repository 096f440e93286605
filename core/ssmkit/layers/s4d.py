"""S4D: the diagonal structured state space (Gu et al., 2022, "On the Parameterization and Initialization
of Diagonal State Space Models").

    y = DiagonalSSM(u)              per channel: K = s4d_kernel(log_dt, A, C, L) (ZOH, Vandermonde), y = K * u + D u
    out = GLU(W gelu(y))            pointwise output mixing (`GatedOutput`)

The parameterisation, initialisations (S4D-Lin, S4D-Inv, or a checked user `A_init`), kernel caching and the
recurrent `step` (h = A_bar h + B_bar u, y = 2 Re(C h) + D u) are `ssmkit.layers.diagonal_ssm.DiagonalSSM`'s.
"""

from __future__ import annotations

from typing import Any

import torch

from ssmkit.layers.diagonal_ssm import DiagonalSSM
from ssmkit.layers.gated_output import GatedOutput
from ssmkit.layers.mixer import Mixer, State
from ssmkit.registry import register_mixer

Tensor = torch.Tensor


@register_mixer("s4d")
class S4D(Mixer):
    tiny_kwargs = {"d_state": 8}
    computes_in_float32 = True  # complex kernel and FFT convolution

    def __init__(self, d_model: int, *, dropout: float = 0.0, **ssm_kwargs: Any) -> None:
        """`ssm_kwargs`: the diagonal SSM's hyper-parameters, with its defaults (`DiagonalSSM`: d_state, init "lin" or
        "inv", dt_min, dt_max, A_init, block_size); `dropout` is the output map's."""
        super().__init__(d_model)
        self.ssm = DiagonalSSM(d_model, **ssm_kwargs)
        self.output = GatedOutput(d_model, dropout)

    def _forward(self, x: Tensor, lengths: Tensor | None) -> Tensor:
        return self.output(self.ssm(x.transpose(1, 2)).transpose(1, 2))

    def discrete_poles(self) -> Tensor:
        return self.ssm.discrete_poles()

    def allocate_state(
        self, batch_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> State:
        return {"h": self.ssm.zero_state(batch_size, self._factory(device, dtype)["device"])}

    def _step(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        y, state["h"] = self.ssm.step(x_t, state["h"])
        return self.output(y), state
