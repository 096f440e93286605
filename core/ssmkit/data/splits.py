"""Train / validation / test splits, one rule each: stratified by class, chronological, and by group (subject,
speaker, patient). Split names are "train", "val", "test" across the project."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ssmkit.data.errors import DataError


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, val indices), both sorted: `round(val_fraction * n_c)` samples of each class c, at least
    one, drawn with `seed`, go to validation."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    val = [
        rng.permutation(members)[: max(1, round(val_fraction * len(members)))]
        for members in (np.flatnonzero(labels == label) for label in np.unique(labels))
    ]
    val_idx = np.sort(np.concatenate(val)) if val else np.zeros(0, int)
    return np.setdiff1d(np.arange(len(labels)), val_idx), val_idx


def time_split(n: int, val_fraction: float, test_fraction: float, source: str) -> dict[str, slice]:
    """Chronological ranges of n rows (or recordings): val and test take `int(fraction * n)` of the end, in
    that order; each split must get at least one."""
    n_val, n_test = int(n * val_fraction), int(n * test_fraction)
    if min(n_val, n_test, n - n_val - n_test) < 1:
        raise DataError(
            f"{n} rows / recordings cannot be split into train / val / test by ({val_fraction}, {test_fraction})",
            source=source,
        )
    return {
        "train": slice(0, n - n_val - n_test),
        "val": slice(n - n_val - n_test, n - n_test),
        "test": slice(n - n_test, n),
    }


def group_split(
    groups: Sequence[str], val_groups: Sequence[str], test_groups: Sequence[str], source: str
) -> dict[str, np.ndarray]:
    """Indices of the samples whose group (subject, speaker, patient) is in `val_groups`, `test_groups`, or
    neither ("train"). Every named group must occur, and every split must get samples (val may be left empty by
    giving no val groups, for a caller that validates on a share of the training groups' samples)."""
    groups = np.asarray(groups)
    unknown = sorted((set(val_groups) | set(test_groups)) - set(groups.tolist()))
    if unknown:
        raise DataError(f"groups {unknown} do not occur (found: {sorted(set(groups.tolist()))})", source=source)
    if set(val_groups) & set(test_groups):
        raise DataError(f"groups {sorted(set(val_groups) & set(test_groups))} are in both val and test", source=source)
    in_val, in_test = np.isin(groups, list(val_groups)), np.isin(groups, list(test_groups))
    parts = {
        "train": np.flatnonzero(~in_val & ~in_test),
        "val": np.flatnonzero(in_val),
        "test": np.flatnonzero(in_test),
    }
    empty = [name for name, idx in parts.items() if not len(idx) and (name != "val" or val_groups)]
    if empty:
        raise DataError(f"no samples for split(s) {empty} (check the val / test groups)", source=source)
    return parts
