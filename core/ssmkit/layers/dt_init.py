"""Initialisation of SSM timescales dt: log-uniform in [dt_min, dt_max], one per channel, head or mode.

S4, S4D (`DiagonalSSM`), DSS, LSSL and S5 learn log dt itself (`log_dt_init`); Mamba and Mamba-2 learn a bias b
with dt = softplus(b + ...), initialised so that softplus(b) is that draw (`dt_bias_init`, as mamba_ssm does).
Both draw `torch.rand(n)` once, so a seed gives the same timescales either way.
"""

from __future__ import annotations

import math

import torch

Tensor = torch.Tensor


def log_dt_init(n: int, dt_min: float, dt_max: float) -> Tensor:
    """log dt, uniform in [log dt_min, log dt_max]: (n,)."""
    return torch.rand(n) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)


def dt_bias_init(n: int, dt_min: float, dt_max: float, floor: float = 1e-4) -> Tensor:
    """Biases b with softplus(b) = dt, dt log-uniform in [dt_min, dt_max] (at least `floor`): (n,)."""
    dt = torch.exp(log_dt_init(n, dt_min, dt_max)).clamp(min=floor)
    return dt + torch.log(-torch.expm1(-dt))  # the inverse of softplus
