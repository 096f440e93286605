"""S4D: the diagonal structured state space (Gu et al., 2022, "On the Parameterization and Initialization
of Diagonal State Space Models").

Per channel h, N/2 complex modes (their conjugates are implied):

    A = -exp(log_A_real) + i * A_imag,     dt = exp(log_dt)
    K = s4d_kernel(log_dt, A, C, L)                       ZOH, Vandermonde: (H, L)
    y = fft_conv(u, K, D);   out = GLU(W gelu(y))         pointwise output mixing

Initialisations: S4D-Lin (A_imag = pi n) and S4D-Inv (A_imag = N/pi (N/(2n+1) - 1)), real part -1/2.
The recurrent `step` runs the same ZOH-discretised system: h = A_bar h + B_bar u, y = 2 Re(C h) + D u.
log_dt, log_A_real and A_imag are SSM dynamics parameters (no weight decay).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ssmkit.layers.mixer import Mixer, State, no_weight_decay
from ssmkit.ops import fft_conv, s4d_kernel, zoh_discretise
from ssmkit.registry import register_mixer

Tensor = torch.Tensor


@register_mixer("s4d")
class S4D(Mixer):
    tiny_kwargs = {"d_state": 8}

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        init: str = "lin",
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(d_model)
        if d_state % 2:
            raise ValueError(f"d_state must be even (modes come in conjugate pairs), got {d_state}")
        h, n = d_model, d_state // 2
        self.log_dt = nn.Parameter(torch.rand(h) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        self.log_A_real = nn.Parameter(torch.log(0.5 * torch.ones(h, n)))
        self.A_imag = nn.Parameter(_imag_init(init, n, d_state).repeat(h, 1))
        self.C = nn.Parameter(torch.view_as_real(torch.randn(h, n, dtype=torch.cfloat) * 0.5**0.5))
        self.D = nn.Parameter(torch.randn(h))
        self.dropout = nn.Dropout(dropout)
        self.output_linear = nn.Linear(h, 2 * h)
        no_weight_decay(self.log_dt, self.log_A_real, self.A_imag)

    def _ssm(self) -> tuple[Tensor, Tensor]:
        A = torch.complex(-torch.exp(self.log_A_real), self.A_imag)
        return A, torch.view_as_complex(self.C)

    def _output(self, y: Tensor) -> Tensor:
        return F.glu(self.output_linear(self.dropout(F.gelu(y))), dim=-1)

    def _forward(self, x: Tensor, lengths: Tensor | None) -> Tensor:
        A, C = self._ssm()
        K = s4d_kernel(self.log_dt, A, C, x.shape[1])
        y = fft_conv(x.transpose(1, 2), K, self.D)
        return self._output(y.transpose(1, 2))

    def allocate_state(
        self, batch_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> State:
        f = self._factory(device, dtype)
        return {"h": torch.zeros(batch_size, *self.A_imag.shape, device=f["device"], dtype=torch.cfloat)}

    def _step(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        A, C = self._ssm()
        A_bar, B_bar = zoh_discretise(self.log_dt, A)
        h = A_bar * state["h"] + B_bar * x_t[..., None]  # (B, H, N/2)
        y = 2.0 * (h * C).sum(-1).real + self.D * x_t
        state["h"] = h
        return self._output(y.to(x_t.dtype)), state


def _imag_init(init: str, n: int, d_state: int) -> Tensor:
    modes = torch.arange(n, dtype=torch.float32)
    if init == "lin":
        return math.pi * modes
    if init == "inv":
        return d_state / math.pi * (d_state / (2 * modes + 1) - 1)
    raise ValueError(f"init must be 'lin' or 'inv', got {init!r}")
