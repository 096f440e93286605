"""`DiagonalSSM`: the parameters and the two modes of a bank of diagonal (S4D-style) state space models, one
per channel, shared by the mixers built on them (H3's diagonal SSM; S4D's parameterisation).

Per channel, N/2 complex modes (conjugates implied): A = -exp(log_A_real) + i A_imag, dt = exp(log_dt), C
complex, B = 1; ZOH discretisation. Convolutional mode: `diag_ssm_conv` (FFT, with FlashConv's state passing
beyond `block_size`); recurrent mode: h = A_bar h + B_bar u, y = 2 Re(C h).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ssmkit.layers.mixer import no_weight_decay
from ssmkit.ops.diag_ssm_conv import diag_ssm_conv
from ssmkit.ops.s4d_kernel import zoh_discretise

Tensor = torch.Tensor


def imag_init(init: str, n: int, d_state: int) -> Tensor:
    """Imaginary parts of the S4D-Lin (pi n) or S4D-Inv (N/pi (N/(2n+1) - 1)) initialisation: (n,)."""
    modes = torch.arange(n, dtype=torch.float32)
    if init == "lin":
        return math.pi * modes
    if init == "inv":
        return d_state / math.pi * (d_state / (2 * modes + 1) - 1)
    raise ValueError(f"init must be 'lin' or 'inv', got {init!r}")


class DiagonalSSM(nn.Module):
    def __init__(
        self,
        channels: int,
        d_state: int = 64,
        init: str = "lin",
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        block_size: int = 1024,
    ) -> None:
        super().__init__()
        if d_state % 2:
            raise ValueError(f"d_state must be even (modes come in conjugate pairs), got {d_state}")
        n = d_state // 2
        self.block_size = block_size
        self.log_dt = nn.Parameter(torch.rand(channels) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        self.log_A_real = nn.Parameter(torch.log(0.5 * torch.ones(channels, n)))
        self.A_imag = nn.Parameter(imag_init(init, n, d_state).repeat(channels, 1))
        self.C = nn.Parameter(torch.view_as_real(torch.randn(channels, n, dtype=torch.cfloat) * 0.5**0.5))
        self.D = nn.Parameter(torch.randn(channels))
        no_weight_decay(self.log_dt, self.log_A_real, self.A_imag)

    def A(self) -> Tensor:
        return torch.complex(-torch.exp(self.log_A_real), self.A_imag)

    def forward(self, u: Tensor) -> Tensor:
        """u: (B, C, L) -> (B, C, L)."""
        return diag_ssm_conv(u, self.log_dt, self.A(), torch.view_as_complex(self.C), self.D,
                             block_size=self.block_size)  # fmt: skip

    def zero_state(self, batch_size: int, device: torch.device | None = None) -> Tensor:
        """(B, C, N/2) complex."""
        return torch.zeros(batch_size, *self.A_imag.shape, dtype=self.A().dtype, device=device)

    def step(self, u_t: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        """u_t: (B, C), h: (B, C, N/2) -> y_t (B, C), new h."""
        A_bar, B_bar = zoh_discretise(self.log_dt, self.A())
        h = A_bar * h + B_bar * u_t[..., None]
        y = 2.0 * (h * torch.view_as_complex(self.C)).sum(-1).real + self.D * u_t
        return y.to(u_t.dtype), h
