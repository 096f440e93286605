"""`DiagonalSSM`: the parameters and the two modes of a bank of diagonal (S4D-style) state space models, one
per channel (Gu et al., 2022, "On the Parameterization and Initialization of Diagonal State Space Models").
S4D is this plus its output map; H3, LongVQ and SeqBoat use it as their SSM.

Per channel, N/2 complex modes (conjugates implied), B = 1, ZOH discretisation:

    A = -exp(log_A_real) + i A_imag,   dt = exp(log_dt),   K = s4d_kernel(log_dt, A, C, L)
    convolutional mode:  y = K * u + D u     (inputs longer than `block_size`, if set: FlashConv state passing)
    recurrent mode:      h = A_bar h + B_bar u,   y = 2 Re(C h) + D u

Initialisations: S4D-Lin (A_imag = pi n) and S4D-Inv (A_imag = N/pi (N/(2n+1) - 1)) with real part -1/2, or
a user-supplied `A_init` (N/2,) or (channels, N/2): non-finite values are rejected, real parts >= 0 (unstable)
are clamped to -1e-4 with a warning naming A_init. With gradients off the kernel is cached; a longer input
than the cached kernel recomputes it (a prefix of a longer kernel is the shorter kernel).
log_dt, log_A_real and A_imag are SSM dynamics parameters (no weight decay).

`block_size` None (the default) convolves the whole input at once: the kernel's CPU backend (numba) never holds the
(H, N, L) powers, only K (H, L), and one FFT convolution of the whole length is the fastest here (a block of
d_model 256, forward + backward, one thread, loaded machine: 0.64 s at L = 4,096 and 2.0 s at 16,384, against 14.5
and 18.6 s in blocks of 1,024). An int cuts longer inputs into FlashConv blocks, which bounds the FFT sizes and, where
the kernel is the reference (GPU), its (H, N, L) powers.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from ssmkit.layers.dt_init import log_dt_init
from ssmkit.layers.mixer import no_weight_decay
from ssmkit.layers.param_cache import ParameterCache
from ssmkit.ops import diag_ssm_conv, fft_conv, s4d_kernel, zoh_discretise

Tensor = torch.Tensor


def imag_init(init: str, n: int, d_state: int) -> Tensor:
    """Imaginary parts of the S4D-Lin or S4D-Inv initialisation: (n,)."""
    modes = torch.arange(n, dtype=torch.float32)
    if init == "lin":
        return math.pi * modes
    if init == "inv":
        return d_state / math.pi * (d_state / (2 * modes + 1) - 1)
    raise ValueError(f"init must be 'lin' or 'inv', got {init!r}")


def checked_A_init(A: Tensor, channels: int, n: int) -> Tensor:
    """A user-supplied A_init: (N/2,) or (H, N/2) complex and finite; real parts >= 0 are clamped with a warning."""
    if not (isinstance(A, Tensor) and A.is_complex() and tuple(A.shape) in ((n,), (channels, n))):
        got = f"{A.dtype} {tuple(A.shape)}" if isinstance(A, Tensor) else type(A).__name__
        raise ValueError(
            f"A_init must be a complex tensor of shape (N/2,) = ({n},) or (H, N/2) = ({channels}, {n}), got {got}"
        )
    if not bool(torch.isfinite(A).all()):
        raise ValueError("A_init has non-finite entries")
    unstable = A.real >= 0
    if bool(unstable.any()):
        warnings.warn(
            f"A_init has {int(unstable.sum())} entries with real part >= 0 (unstable); clamped to -1e-4",
            stacklevel=4,
        )
        A = torch.complex(A.real.clamp(max=-1e-4), A.imag)
    return A


class DiagonalSSM(nn.Module):
    def __init__(
        self,
        channels: int,
        d_state: int = 64,
        init: str = "lin",
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        A_init: Tensor | None = None,
        block_size: int | None = None,
    ) -> None:
        super().__init__()
        if d_state % 2:
            raise ValueError(f"d_state must be even (modes come in conjugate pairs), got {d_state}")
        n = d_state // 2
        A = torch.complex(torch.full((n,), -0.5), imag_init(init, n, d_state)) if A_init is None else A_init
        A = checked_A_init(A, channels, n).expand(channels, n)
        self.block_size = block_size
        self.log_dt = nn.Parameter(log_dt_init(channels, dt_min, dt_max))
        self.log_A_real = nn.Parameter(torch.log(-A.real).float().clone())
        self.A_imag = nn.Parameter(A.imag.float().clone())
        self.C = nn.Parameter(torch.view_as_real(torch.randn(channels, n, dtype=torch.cfloat) * 0.5**0.5))
        self.D = nn.Parameter(torch.randn(channels))
        no_weight_decay(self.log_dt, self.log_A_real, self.A_imag)
        self._kernel_cache = ParameterCache()

    def A(self) -> Tensor:
        return torch.complex(-torch.exp(self.log_A_real), self.A_imag)

    def forward(self, u: Tensor) -> Tensor:
        """u: (B, C, L) -> (B, C, L)."""
        length, C = u.shape[-1], torch.view_as_complex(self.C)
        if self.block_size is not None and length > self.block_size:
            return diag_ssm_conv(u, self.log_dt, self.A(), C, self.D, block_size=self.block_size)
        K = self._kernel_cache.get(
            self, lambda: s4d_kernel(self.log_dt, self.A(), C, length), lambda K: K.shape[-1] >= length
        )
        return fft_conv(u, K[:, :length], self.D)

    def discrete_poles(self) -> Tensor:
        """The recurrence's poles exp(dt A), (C, N/2) complex (their conjugates are the other half); inside the unit
        circle whenever Re(A) < 0, which the parameterisation keeps."""
        return zoh_discretise(self.log_dt, self.A())[0]

    def zero_state(self, batch_size: int, device: torch.device | None = None) -> Tensor:
        """(B, C, N/2) complex."""
        return torch.zeros(batch_size, *self.A_imag.shape, dtype=self.A().dtype, device=device)

    def step(self, u_t: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        """u_t: (B, C), h: (B, C, N/2) -> y_t (B, C), new h."""
        A_bar, B_bar = zoh_discretise(self.log_dt, self.A())
        h = A_bar * h + B_bar * u_t[..., None]
        y = 2.0 * (h * torch.view_as_complex(self.C)).sum(-1).real + self.D * u_t
        return y.to(u_t.dtype), h
