"""Hyena operator (Poli et al., 2023, "Hyena Hierarchy: Towards Larger Convolutional Language Models"; the
block HyenaDNA stacks, Nguyen et al., 2023).

An order-N recurrence of element-wise gates and long convolutions whose filters are implicit:

    v, x_1 .. x_N = short_causal_conv(in_proj(u))         N + 1 projections, depthwise kernel `short_kernel`
    z = v;   for n = 1..N:   z = x_n * (h_n * z + b_n * z)  long causal convolution (fft_conv) with skip b_n
    y = out_proj(z)

    h_n(t) = FFN(pos(t)) * exp(-|alpha_d| t / l_max)      pos: [t/l_max, cos(2 pi k t/l_max), sin(...)]

The FFN is Linear -> Sin -> Linear -> Sin -> Linear with learnable sine frequencies; the exponential
window gives each channel its own decay, from fast (`fast_decay_pct`) to slow (`slow_decay_pct`) across
channels. Filters exist up to `l_max` positions (longer inputs are an error). The recurrent `step` is a
cached convolution: it keeps each long convolution's input history, so memory grows with the position.
The implicit filter's parameters take no weight decay (as in safari).

Long inputs without gradients (inference at L >= `grouped_from`, 65,536 by default) run channel group by channel
group: the channels never mix between in_proj and out_proj (the short and long convolutions are depthwise, the
gates element-wise), so each group of channels takes its rows of in_proj, the short conv and the filters, and adds
its share of out_proj. The result is the same up to rounding; the temporaries (projections, filters, FFT buffers)
shrink from about 16 D floats per position to 16 per channel of a group, and a group holds
`group_positions // (B L)` channels (at least one): 4 at a million positions, 1 from 4M on, so the temporaries
stay about the same size whatever the length. `accumulate(x, out)` adds the groups' shares straight into `out`
(the backbone's residual stream), so no (B, L, D) output buffer exists.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ssmkit.layers.conv import cached_conv_step, causal_conv, causal_conv_step
from ssmkit.layers.mixer import Mixer, State, no_weight_decay
from ssmkit.ops import fft_conv
from ssmkit.registry import register_mixer
from ssmkit.shapes import check_shape

Tensor = torch.Tensor


class Sin(nn.Module):
    """sin(w * x) with a learnable frequency per feature."""

    def __init__(self, dim: int, freq: float = 1.0) -> None:
        super().__init__()
        self.freq = nn.Parameter(freq * torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(self.freq * x)


class ImplicitFilter(nn.Module):
    """Long filters h: (channels, L) evaluated at positions 0..L-1 of a window of `l_max` positions."""

    def __init__(
        self,
        channels: int,
        l_max: int,
        emb_dim: int = 5,
        filter_order: int = 16,
        fast_decay_pct: float = 0.3,
        slow_decay_pct: float = 1.5,
        target: float = 1e-2,
        freq: float = 1.0,
    ) -> None:
        super().__init__()
        if emb_dim < 3 or emb_dim % 2 == 0:
            raise ValueError(f"emb_dim must be odd and >= 3 (t plus cos/sin pairs), got {emb_dim}")
        self.l_max, self.bands = l_max, (emb_dim - 1) // 2
        self.ffn = nn.Sequential(
            nn.Linear(emb_dim, filter_order), Sin(filter_order, freq),
            nn.Linear(filter_order, filter_order), Sin(filter_order, freq),
            nn.Linear(filter_order, channels, bias=False),
        )  # fmt: skip
        # decay rates: exp(-rate * t/l_max) falls to `target` at t/l_max = fast..slow decay pct
        fastest, slowest = math.log(target) / fast_decay_pct, math.log(target) / slow_decay_pct
        self.register_buffer("decay", torch.linspace(slowest, fastest, channels).abs()[:, None], persistent=False)

    def positions(self, start: int, stop: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        """(stop - start, emb_dim) features of positions start..stop-1."""
        t = torch.arange(start, stop, device=device, dtype=dtype)[:, None] / self.l_max
        k = torch.arange(1, self.bands + 1, device=device, dtype=dtype)
        return torch.cat([t, torch.cos(2 * math.pi * k * t), torch.sin(2 * math.pi * k * t)], dim=-1)

    def forward(self, length: int, channels: slice = slice(None), hidden: Tensor | None = None) -> Tensor:
        """(channels, L): the filters of `channels` (all by default) at positions 0..L-1; `hidden` is `hidden(L)`
        when the caller keeps it for several channel groups."""
        if length > self.l_max:
            raise ValueError(f"sequence length {length} exceeds the filters' l_max={self.l_max}")
        hidden = self.hidden(length) if hidden is None else hidden  # (L, filter_order)
        t = torch.arange(length, device=hidden.device, dtype=hidden.dtype) / self.l_max
        window = torch.exp(-self.decay[channels].to(hidden.dtype) * t)  # (channels, L)
        return (hidden @ self.ffn[-1].weight[channels].T).T * window

    def hidden(self, length: int, chunk: int = 65_536) -> Tensor:
        """(L, filter_order): the FFN before its last layer at positions 0..L-1, `chunk` positions at a time without
        gradients."""
        device, dtype = self.decay.device, self.ffn[0].weight.dtype
        if torch.is_grad_enabled():  # autograd keeps every chunk's activations anyway
            return self.ffn[:-1](self.positions(0, length, device, dtype))
        out = torch.empty(length, self.ffn[-1].in_features, device=device, dtype=dtype)
        for start in range(0, length, chunk):  # no (L, emb_dim) features, no list of parts beside the result
            stop = min(start + chunk, length)
            out[start:stop] = self.ffn[:-1](self.positions(start, stop, device, dtype))
        return out


class ExplicitFilter(nn.Module):
    """Long filters h: (channels, L), one free weight per channel and lag up to `l_max`, soft-thresholded
    by `squash` (Fu et al., 2023: h = sign(w) max(|w| - squash, 0)). Without it Adam moves every one of the
    l_max weights by about the learning rate each step whatever its gradient, and at 8k+ lags that noise
    drowns the few taps that matter (measured: no copying learned at 8k context in 300 steps)."""

    def __init__(self, channels: int, l_max: int, init_scale: float = 0.01, squash: float = 2e-3) -> None:
        super().__init__()
        self.l_max, self.squash = l_max, squash
        self.weight = nn.Parameter(init_scale * torch.randn(channels, l_max))

    def hidden(self, length: int) -> None:
        """No features shared between channel groups (the implicit filter has them)."""
        return None

    def forward(self, length: int, channels: slice = slice(None), hidden: Tensor | None = None) -> Tensor:
        """(channels, L): the filters of `channels` (all by default) at lags 0..L-1 (`hidden`: unused)."""
        if length > self.l_max:
            raise ValueError(f"sequence length {length} exceeds the filters' l_max={self.l_max}")
        return F.softshrink(self.weight[channels, :length], self.squash)


FILTERS = ("implicit", "explicit")


@register_mixer("hyena")
class Hyena(Mixer):
    tiny_kwargs = {"order": 2, "l_max": 32, "filter_order": 8}
    takes_l_max = True

    def __init__(
        self,
        d_model: int,
        l_max: int = 1024,
        order: int = 2,
        filter_order: int = 64,
        emb_dim: int = 5,
        short_kernel: int = 3,
        dropout: float = 0.0,
        filter: str = "implicit",
        filter_squash: float = 2e-3,
    ) -> None:
        super().__init__(d_model)
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        if filter not in FILTERS:
            raise ValueError(f"filter must be one of {FILTERS}, got {filter!r}")
        self.order, self.l_max = order, l_max
        width = (order + 1) * d_model
        self.in_proj = nn.Linear(d_model, width)
        self.short_conv = nn.Conv1d(width, width, short_kernel, groups=width)
        if filter == "implicit":
            self.filter = ImplicitFilter(order * d_model, l_max, emb_dim, filter_order)
        else:
            self.filter = ExplicitFilter(order * d_model, l_max, squash=filter_squash)
        self.filter_bias = nn.Parameter(torch.randn(order, d_model))  # skip term b_n of each long conv
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(d_model, d_model)
        no_weight_decay(*self.filter.parameters())
        # inference at L >= grouped_from runs group_positions // (B L) channels at a time (module docstring)
        self.grouped_from, self.group_positions = 65_536, 1 << 22

    def _projections(self, u: Tensor) -> list[Tensor]:
        """u: (B, L, D) -> [v, x_1, .., x_N], each (B, D, L)."""
        return list(causal_conv(self.short_conv, self.in_proj(u).transpose(1, 2)).chunk(self.order + 1, dim=1))

    def _forward(self, u: Tensor, lengths: Tensor | None) -> Tensor:
        if not torch.is_grad_enabled() and u.shape[1] >= self.grouped_from:
            return self._forward_grouped(u, torch.zeros_like(u))
        z, *gates = self._projections(u)
        h = self.filter(u.shape[1]).chunk(self.order, dim=0)  # N filters of (D, L)
        for n, x_n in enumerate(gates):
            z = x_n * fft_conv(self.dropout(z), h[n], self.filter_bias[n])
        return self.out_proj(z.transpose(1, 2))

    def accumulate(self, x: Tensor, out: Tensor) -> Tensor:
        if torch.is_grad_enabled() or x.shape[1] < self.grouped_from or self.training:
            return super().accumulate(x, out)
        check_shape("x", x, "(B, L, D)", None, None, self.d_model)
        check_shape("out", out, "(B, L, D)", *x.shape)
        self._check_dtype("x", x)
        return self._forward_grouped(x, out)

    def _forward_grouped(self, u: Tensor, out: Tensor) -> Tensor:
        """`_forward` without gradients, a group of channels at a time, added into out: u, out (B, L, D)."""
        d, length = self.d_model, u.shape[1]
        out += self.out_proj.bias.to(out.dtype)
        hidden = self.filter.hidden(length)  # the implicit filter's FFN features, shared by every group
        width = max(1, self.group_positions // (u.shape[0] * length))
        for c0 in range(0, d, width):
            group = slice(c0, min(c0 + width, d))
            rows = torch.cat([torch.arange(group.start, group.stop) + k * d for k in range(self.order + 1)])
            proj = F.linear(u, self.in_proj.weight[rows], self.in_proj.bias[rows]).transpose(1, 2)  # (B, (N+1)G, L)
            short = self.short_conv.kernel_size[0]
            proj = F.conv1d(F.pad(proj, (short - 1, 0)), self.short_conv.weight[rows], self.short_conv.bias[rows],
                            groups=len(rows))  # fmt: skip
            z, *gates = proj.chunk(self.order + 1, dim=1)  # (B, G, L) each
            for n, x_n in enumerate(gates):
                h = self.filter(length, slice(n * d + group.start, n * d + group.stop), hidden)  # (G, L)
                z = x_n * fft_conv(self.dropout(z), h, self.filter_bias[n, group])
            weight = self.out_proj.weight[:, group].T.to(out.dtype).expand(z.shape[0], -1, -1)  # (B, G, D)
            out.baddbmm_(z.transpose(1, 2).to(out.dtype), weight)  # in place: no (B, L, D) temporary
        return out

    def allocate_state(
        self, batch_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> State:
        f = self._factory(device, dtype)
        width = (self.order + 1) * self.d_model
        return {
            "short": torch.zeros(batch_size, width, self.short_conv.kernel_size[0], **f),
            # inputs of each long convolution so far, newest last: (B, N, D, l_max)
            "history": torch.zeros(batch_size, self.order, self.d_model, self.l_max, **f),
            "position": torch.zeros(batch_size, dtype=torch.long, device=f["device"]),
        }

    def _step(self, u_t: Tensor, state: State) -> tuple[Tensor, State]:
        t = int(state["position"][0])
        if t >= self.l_max:
            raise ValueError(f"step past the filters' l_max={self.l_max}")
        proj, state["short"] = causal_conv_step(self.short_conv, state["short"], self.in_proj(u_t))
        z, *gates = proj.chunk(self.order + 1, dim=1)  # (B, D) each
        h = self.filter(t + 1).chunk(self.order, dim=0)  # (D, t+1) each
        for n, x_n in enumerate(gates):
            z = x_n * (cached_conv_step(state["history"][:, n], t, z, h[n]) + self.filter_bias[n] * z)
        state["position"] = state["position"] + 1
        return self.out_proj(z), state
