"""Windowing of long recordings: where the windows of a stream start, skipping those that touch invalid rows."""

from __future__ import annotations

import numpy as np

from ssmkit.data.errors import DataError


def window_starts(valid: np.ndarray, window: int, stride: int, source: str) -> np.ndarray:
    """Start rows of the windows of `window` rows every `stride` rows that hold only valid rows.

    valid: (L,) bool, False at rows a window must not contain (missing values)."""
    n = len(valid)
    if n < window:
        raise DataError(f"{n} rows is too few for one window of {window} rows", source=source)
    starts = np.arange(0, n - window + 1, stride)
    bad_before = np.concatenate([[0], np.cumsum(~np.asarray(valid, bool))])
    starts = starts[bad_before[starts + window] == bad_before[starts]]
    if not len(starts):
        raise DataError(f"every window of {window} rows touches a missing value", source=source)
    return starts
