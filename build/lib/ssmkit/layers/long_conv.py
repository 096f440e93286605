"""Long convolutions with an explicitly parameterised kernel (Fu et al., 2023, "Simple Hardware-Efficient
Long Convolutions for Sequence Modeling"), and the block they share with SGConv.

The block (as S4's): y = fft_conv(u, K, D);  out = GLU(W gelu(y)), with a kernel K: (H, L) per channel.

`long_conv` learns K directly, one weight per channel and position up to `l_max`, kept simple by two
regularisers applied to the kernel on every use:
    squash:  K <- sign(K) * max(|K| - lambda, 0)          (soft threshold: sparse kernels)
    smooth:  K <- average_pool(K, width)                    (smooth kernels)
The recurrent `step` is a cached convolution (memory grows with the position, bounded by `l_max`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssmkit.layers.conv import cached_conv_step
from ssmkit.layers.gated_output import GatedOutput
from ssmkit.layers.mixer import Mixer, State, no_weight_decay
from ssmkit.ops import fft_conv
from ssmkit.registry import register_mixer

Tensor = torch.Tensor


class LongConvMixer(Mixer):
    """Base of mixers defined by a kernel function `kernel(L) -> (H, L)`: FFT convolution, skip D, GELU,
    GLU output mixing; step through a cached convolution up to `l_max`."""

    takes_l_max = True

    def __init__(self, d_model: int, l_max: int, dropout: float = 0.0) -> None:
        super().__init__(d_model)
        self.l_max = l_max
        self.D = nn.Parameter(torch.randn(d_model))
        self.output = GatedOutput(d_model, dropout)

    def kernel(self, length: int) -> Tensor:
        raise NotImplementedError

    def _checked_kernel(self, length: int) -> Tensor:
        if length > self.l_max:
            raise ValueError(f"sequence length {length} exceeds the kernel's l_max={self.l_max}")
        return self.kernel(length)

    def _forward(self, x: Tensor, lengths: Tensor | None) -> Tensor:
        y = fft_conv(x.transpose(1, 2), self._checked_kernel(x.shape[1]), self.D)
        return self.output(y.transpose(1, 2))

    def allocate_state(
        self, batch_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> State:
        f = self._factory(device, dtype)
        return {
            "history": torch.zeros(batch_size, self.d_model, self.l_max, **f),
            "position": torch.zeros(batch_size, dtype=torch.long, device=f["device"]),
        }

    def _step(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        t = int(state["position"][0])
        y = cached_conv_step(state["history"], t, x_t, self._checked_kernel(t + 1)) + self.D * x_t
        state["position"] = state["position"] + 1
        return self.output(y), state


@register_mixer("long_conv")
class LongConv(LongConvMixer):
    tiny_kwargs = {"l_max": 32}

    def __init__(
        self,
        d_model: int,
        l_max: int = 1024,
        squash_lambda: float = 1e-3,
        smooth_width: int = 3,
        init_scale: float = 0.02,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(d_model, l_max, dropout)
        if smooth_width < 1 or smooth_width % 2 == 0:
            raise ValueError(f"smooth_width must be an odd number >= 1, got {smooth_width}")
        self.squash_lambda, self.smooth_width = squash_lambda, smooth_width
        decay = torch.exp(-torch.arange(l_max) / (l_max / 4))  # start from decaying kernels
        self.weight = nn.Parameter(init_scale * torch.randn(d_model, l_max) * decay)
        no_weight_decay(self.weight)

    def kernel(self, length: int) -> Tensor:
        k = F.softshrink(self.weight, self.squash_lambda)
        pad = self.smooth_width // 2
        k = F.avg_pool1d(k[None], self.smooth_width, stride=1, padding=pad, count_include_pad=False)[0]
        return k[:, :length]
