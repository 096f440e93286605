"""SaShiMi (Goel et al., 2022, "It's Raw! Audio Generation with State-Space Models"): the multi-scale U-shaped
causal stack over 8-bit mu-law samples, in convolution mode (`forward`, for training) and recurrent mode (`step`,
one sample at a time, for generation), the two equal to float rounding (tests/plugins/audio/test_audio_sashimi.py).

    x (B, L, H) --DownPool(4)--> (B, L/4, 2H) --DownPool(4)--> (B, L/16, 4H) --> centre stack (+ residual)
      --UpPool(4)--> + skip --> stack (+ residual) --UpPool(4)--> + skip --> stack (+ residual) --> (B, L, H)

- `DownPool(p)`: each p consecutive steps, their features concatenated, mapped by a linear layer to `expand` times
  the width (state-spaces/s4 `DownPool`: reshape (l*p, h) -> (l, h*p), then linear).
- `UpPool(p)`: a linear layer maps each coarse step to p fine steps of 1/`expand` the width, shifted right by one
  coarse step (zeros first), so the fine output at t only sees coarse steps that end before t: the stack is causal.
- Stacks: `SequenceBackbone`s of `n_layers` pre-norm residual blocks (mixer, then gated MLP with `mlp_ratio`),
  without the final norm. This is the first increment of `audio.generate`: the model only (see the README).
  Deviations from the anchor, written down: the core's blocks (RMSNorm, gated MLP) stand in for SaShiMi's
  LayerNorm + GELU feed-forward, and the default mixer is S4D (diagonal, Re(A) < 0) rather than DPLR S4
  (`--model.backbone.mixer s4`: the core's S4 is SaShiMi's Hurwitz form A = Λ - P P*, Re(Λ) < 0).

`max_pole_modulus(model)`: the largest |z| over the discretised poles of every time-invariant SSM mixer in it (below 1:
the recurrent mode is stable); the task prints it after fit.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from ssmkit.layers.norms import RMSNorm
from ssmkit.models import BackboneConfig, SequenceBackbone
from ssmkit_audio.mulaw import MU_LAW_CLASSES, MuLawEmbedding

Tensor = torch.Tensor


class DownPool(nn.Module):
    """(B, L, H) -> (B, L / pool, H * expand); L must be a multiple of `pool`."""

    def __init__(self, d_model: int, expand: int, pool: int) -> None:
        super().__init__()
        self.pool = pool
        self.linear = nn.Linear(d_model * pool, d_model * expand)

    def forward(self, x: Tensor) -> Tensor:
        b, length, h = x.shape
        return self.linear(x.reshape(b, length // self.pool, self.pool * h))

    def step(self, x_t: Tensor, pending: list[Tensor]) -> tuple[Tensor | None, list[Tensor]]:
        """x_t (B, H): the coarse output (B, H * expand) once `pool` steps are in, else None."""
        pending = [*pending, x_t]
        if len(pending) < self.pool:
            return None, pending
        return self.linear(torch.cat(pending, -1)), []


class UpPool(nn.Module):
    """(B, L, H) -> (B, L * pool, H / expand), shifted right by one coarse step (causal)."""

    def __init__(self, d_model: int, expand: int, pool: int) -> None:
        super().__init__()
        self.pool, self.d_output = pool, d_model // expand
        self.linear = nn.Linear(d_model, self.d_output * pool)

    def forward(self, x: Tensor) -> Tensor:
        y = self.linear(x)
        y = torch.cat([torch.zeros_like(y[:, :1]), y[:, :-1]], 1)  # coarse step j feeds fine steps of j + 1
        return y.reshape(x.shape[0], -1, self.d_output)

    def initial(self, x: Tensor) -> list[Tensor]:
        """The first coarse step's outputs (zeros), for `step`; x: a (B, ...) tensor giving batch, device, dtype."""
        return [x.new_zeros(x.shape[0], self.d_output) for _ in range(self.pool)]

    def step(self, x_t: Tensor | None, pending: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """The next fine output (B, H / expand); when the pending outputs run out, the coarse x_t (B, H) (given
        exactly then) makes the next `pool`."""
        y, pending = pending[0], pending[1:]
        if not pending:
            pending = list(self.linear(x_t).reshape(x_t.shape[0], self.pool, self.d_output).unbind(1))
        return y, pending


class Sashimi(nn.Module):
    """x (B, L, d_model) -> (B, L, d_model), causal; L a multiple of prod(pools) in `forward`."""

    def __init__(self, config: BackboneConfig | None = None, pools: tuple[int, ...] = (4, 4), expand: int = 2) -> None:
        super().__init__()
        config = replace(BackboneConfig.of(config), final_norm=False)
        widths = [config.d_model * expand**i for i in range(len(pools) + 1)]
        self.down = nn.ModuleList(DownPool(w, expand, p) for w, p in zip(widths[:-1], pools, strict=True))
        self.centre = SequenceBackbone(replace(config, d_model=widths[-1]))
        self.up = nn.ModuleList(UpPool(w, expand, p) for w, p in zip(widths[:0:-1], pools[::-1], strict=True))
        self.stacks = nn.ModuleList(SequenceBackbone(replace(config, d_model=w)) for w in widths[-2::-1])
        self.norm = RMSNorm(config.d_model)
        self.block = math.prod(pools)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] % self.block:
            raise ValueError(f"the length {x.shape[1]} must be a multiple of prod(pools) = {self.block}")
        skips = [x]
        for down in self.down:
            x = down(x)
            skips.append(x)
        x = self.centre(x) + skips.pop()
        for up, stack in zip(self.up, self.stacks, strict=True):
            x = up(x) + skips.pop()
            x = stack(x) + x
        return self.norm(x)

    def allocate_state(self, batch_size: int, device: Any = None, dtype: torch.dtype | None = None) -> dict[str, Any]:
        probe = torch.zeros(batch_size, 1, device=device, dtype=dtype or torch.get_default_dtype())
        return {
            "down": [[] for _ in self.down],
            "centre": self.centre.allocate_state(batch_size, device, dtype),
            "up": [up.initial(probe) for up in self.up],
            "stacks": [stack.allocate_state(batch_size, device, dtype) for stack in self.stacks],
        }

    def step(self, x_t: Tensor, state: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        """x_t (B, d_model) -> y_t (B, d_model): `forward` one step at a time. A level runs only on the steps
        where its coarse input arrives; the up-pools hand out their pending outputs in between."""
        skips, x = [x_t], x_t
        for i, down in enumerate(self.down):
            x, state["down"][i] = down.step(x, state["down"][i])
            if x is None:
                break
            skips.append(x)
        if x is not None:
            x, state["centre"] = self.centre.step(x, state["centre"])
            x = x + skips.pop()
        for j in range(len(self.up) - len(skips), len(self.up)) if x is None else range(len(self.up)):
            x, state["up"][j] = self.up[j].step(x, state["up"][j])
            x = x + skips.pop()
            y, state["stacks"][j] = self.stacks[j].step(x, state["stacks"][j])
            x = y + x
        return self.norm(x), state


class SashimiLM(nn.Module):
    """Mu-law tokens (B, L) in [0, 256) -> next-sample logits (B, L, 256): embedding, `Sashimi`, linear head. The
    output at t reads tokens <= t; training feeds the tokens shifted right by one. With `n_classes` > 0 a label
    embedding (of the digit, say) is added to every step's input: generation conditioned on the label."""

    def __init__(
        self,
        config: BackboneConfig | None = None,
        pools: tuple[int, ...] = (4, 4),
        expand: int = 2,
        n_classes: int = 0,
    ) -> None:
        super().__init__()
        config = BackboneConfig.of(config)
        self.embedding = MuLawEmbedding(config.d_model, n_classes)
        self.sashimi = Sashimi(config, pools, expand)
        self.head = nn.Linear(config.d_model, MU_LAW_CLASSES)

    def forward(self, tokens: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.head(self.sashimi(self.embedding(tokens, labels)))

    def allocate_state(self, batch_size: int, device: Any = None, dtype: torch.dtype | None = None) -> dict[str, Any]:
        return self.sashimi.allocate_state(batch_size, device, dtype)

    def step(self, token_t: Tensor, state: dict[str, Any], labels: Tensor | None = None) -> tuple[Tensor, dict]:
        """token_t (B,) -> logits (B, 256)."""
        y, state = self.sashimi.step(self.embedding(token_t, labels), state)
        return self.head(y), state


def max_pole_modulus(model: nn.Module) -> float | None:
    """The largest |z| over the discretised poles of the SSM mixers in `model` (`Mixer.discrete_poles`), or None when
    none has poles (WaveNet, selective mixers)."""
    from ssmkit.layers.mixer import Mixer

    poles = [m.discrete_poles() for m in model.modules() if isinstance(m, Mixer)]
    moduli = [float(p.detach().abs().max()) for p in poles if p is not None]
    return max(moduli) if moduli else None
