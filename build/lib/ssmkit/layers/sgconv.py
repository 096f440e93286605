"""SGConv (Li et al., 2022, "What Makes Convolutional Models Great on Long Sequence Modeling?").

A structured global convolution: the kernel is a concatenation of S sub-kernels, each with `kernel_dim`
parameters per channel; sub-kernel i is upsampled by 2^max(i-1, 0) (linear interpolation) and weighted by
`decay`^i, so it covers a span twice as long as the last but with fewer effective degrees of freedom.
Parameters grow as H * kernel_dim * log2(L / kernel_dim): sub-linear in the length. The kernel is
normalised by its norm at initialisation. Block, skip term and cached-convolution `step` as `long_conv`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ssmkit.layers.long_conv import LongConvMixer
from ssmkit.layers.mixer import no_weight_decay
from ssmkit.registry import register_mixer

Tensor = torch.Tensor


@register_mixer("sgconv")
class SGConv(LongConvMixer):
    tiny_kwargs = {"l_max": 32, "kernel_dim": 4}

    def __init__(
        self, d_model: int, l_max: int = 1024, kernel_dim: int = 32, decay: float = 0.5, dropout: float = 0.0
    ) -> None:
        super().__init__(d_model, l_max, dropout)
        self.kernel_dim, self.decay = kernel_dim, decay
        self.n_scales = 1 + max(0, math.ceil(math.log2(l_max / kernel_dim)))
        self.sub_kernels = nn.ParameterList(
            nn.Parameter(torch.randn(d_model, kernel_dim)) for _ in range(self.n_scales)
        )
        no_weight_decay(*self.sub_kernels)
        with torch.no_grad():
            self.register_buffer("kernel_norm", self._raw_kernel().norm(dim=-1, keepdim=True))

    def _raw_kernel(self) -> Tensor:
        """(H, >= l_max): the concatenated, upsampled, decayed sub-kernels."""
        pieces = []
        for i, w in enumerate(self.sub_kernels):
            scale = 2 ** max(i - 1, 0)
            up = F.interpolate(w[None], scale_factor=scale, mode="linear", align_corners=False)[0] if scale > 1 else w
            pieces.append(up * self.decay**i)
        return torch.cat(pieces, dim=-1)[:, : self.l_max]

    def kernel(self, length: int) -> Tensor:
        return (self._raw_kernel() / self.kernel_norm)[:, :length]
