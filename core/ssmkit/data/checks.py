"""Checks applied where data enters a data module: NaN/inf and shape problems named by sample."""

from __future__ import annotations

import torch


def check_finite(name: str, values: torch.Tensor) -> None:
    """Raise a ValueError naming the first sample (index along dim 0) holding NaN or inf."""
    if values.is_floating_point() and not bool(torch.isfinite(values).all()):
        bad = (~torch.isfinite(values)).flatten(1).any(1).nonzero()[0, 0].item()
        kind = "NaN" if bool(torch.isnan(values[bad]).any()) else "inf"
        raise ValueError(f"{name}: sample {bad} contains {kind}")
