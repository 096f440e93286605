"""Vim's bidirectional Mamba mixer, "bimamba v2" (Zhu et al., 2024, "Vision Mamba", hustvl/Vim
`mamba_simple.py`, `bimamba_type="v2"`): one in_proj and one out_proj shared by both directions, and a separate
SSM per direction (its own conv1d, x_proj, dt_proj, A_log, D):

    x, z = in_proj(u)                                                  (B, L, E) each
    y_f  = ssm_f(x, z);   y_b = flip(ssm_b(flip(x), flip(z)))          gated selective scans; flips are
                                                                       within each sequence's valid length
    out  = out_proj((y_f + y_b) / 2)

Each direction is a `Mamba` without its own projections (removed), whose `ssm(x, z)` maps the shared (x, z) to
its gated scan output with Mamba's scan, initialisation and parameter tags; so its hyper-parameters and their
defaults are Mamba's (`**mamba_kwargs`), and its tiny test settings too. Unlike the reference code's non-fused
path, the backward scan always runs. Non-causal: no step.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ssmkit.layers.mamba import Mamba
from ssmkit.layers.mixer import Mixer, reverse_valid
from ssmkit.registry import register_mixer

Tensor = torch.Tensor


@register_mixer("bimamba_v2")
class BiMambaV2(Mixer):
    """Vim's bidirectional Mamba: (B, L, D) -> (B, L, D), non-causal."""

    causal = False
    tiny_kwargs = Mamba.tiny_kwargs

    def __init__(
        self, d_model: int, *, expand: int = 2, bias: bool = False, divide_out: bool = True, **mamba_kwargs: Any
    ) -> None:
        """`expand` and `bias` shape the shared projections (E = expand * d_model), as in Mamba; `mamba_kwargs` are
        the rest of each direction's Mamba hyper-parameters (d_state, d_conv, dt_rank, dt_min, dt_max, ...)."""
        super().__init__(d_model)
        self.d_inner, self.divide_out = expand * d_model, divide_out
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=bias)
        self.ssm_f = _direction(d_model, expand, mamba_kwargs)
        self.ssm_b = _direction(d_model, expand, mamba_kwargs)
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias)

    def _forward(self, u: Tensor, lengths: Tensor | None) -> Tensor:
        x, z = self.in_proj(u).chunk(2, dim=-1)  # (B, L, E) each, as Mamba's in_proj lays them out
        flip = lambda t: reverse_valid(t, lengths)  # noqa: E731
        y = self.ssm_f.ssm(x, z) + flip(self.ssm_b.ssm(flip(x), flip(z)))
        return self.out_proj(y / 2 if self.divide_out else y)


def _direction(d_model: int, expand: int, mamba_kwargs: dict[str, Any]) -> Mamba:
    """One direction's SSM: a Mamba mixer whose projections BiMambaV2 owns (they are removed here)."""
    mamba = Mamba(d_model, expand=expand, **mamba_kwargs)
    del mamba.in_proj, mamba.out_proj
    return mamba
