"""Checks applied where data enters a data module: NaN/inf and label problems named by sample."""

from __future__ import annotations

import torch

from ssmkit.data.errors import DataError


def check_finite(name: str, values: torch.Tensor) -> None:
    """Raise a DataError naming the first sample (index along dim 0) holding NaN or inf."""
    if values.is_floating_point() and not bool(torch.isfinite(values).all()):
        bad = (~torch.isfinite(values)).flatten(1).any(1).nonzero()[0, 0].item()
        kind = "NaN" if bool(torch.isnan(values[bad]).any()) else "inf"
        raise DataError(f"sample {bad} contains {kind}", source=name)


def check_labels(name: str, labels: torch.Tensor, n_classes: int) -> None:
    """Raise a DataError naming the first label outside [0, n_classes)."""
    bad = ((labels < 0) | (labels >= n_classes)).nonzero()
    if len(bad):
        i = int(bad[0, 0])
        raise DataError(f"sample {i} has label {int(labels[i])}, outside [0, n_classes={n_classes})", source=name)
