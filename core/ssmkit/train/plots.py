"""The pictures and tables every task writes: save a figure, loss curves, a confusion matrix, a markdown table.

matplotlib is imported inside the functions and its backend is never forced: on a machine without a display
matplotlib picks a non-interactive one itself, and a notebook keeps its inline backend.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from numbers import Number
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ssmkit.train.logging import read_metrics

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def save_figure(fig: Figure, out: str | Path, dpi: int = 110) -> Path:
    """Write `fig` to `out` (folders created) and close it."""
    import matplotlib.pyplot as plt

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


def plot_metrics(metrics_csv: Path, out: Path, title: str = "") -> Path:
    """A run's metrics.csv: loss curves (train and val) on the left, the other metrics on the right."""
    import matplotlib.pyplot as plt

    series = read_metrics(metrics_csv)
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(11, 4))
    for key, points in sorted(series.items()):
        if "tokens_per_s" in key or key.startswith("lr"):
            continue
        ax = ax_loss if key.endswith("loss") else ax_metric
        steps, values = zip(*points, strict=True)
        ax.plot(steps, values, label=key, marker="o" if len(points) < 30 else None)
    ax_loss.set(xlabel="step", ylabel="loss", title="loss")
    ax_metric.set(xlabel="step", title="metrics")
    for ax in (ax_loss, ax_metric):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, out)


def plot_confusion(matrix: np.ndarray, classes: Sequence[str], out: Path, title: str = "") -> Path:
    """matrix: (K, K) counts, rows true class, columns predicted; drawn beside the per-class accuracy."""
    import matplotlib.pyplot as plt

    per_class = matrix.diagonal() / np.maximum(matrix.sum(1), 1)
    k = len(classes)
    fig, (ax_cm, ax_acc) = plt.subplots(1, 2, figsize=(12, 5), gridspec_kw={"width_ratios": [1.3, 1]})
    ax_cm.imshow(matrix, cmap="Blues")
    if k <= 20:
        for (i, j), count in np.ndenumerate(matrix):
            if count:  # white digits on the dark half of the colour scale
                colour = "white" if count > matrix.max() / 2 else "black"
                ax_cm.text(j, i, int(count), ha="center", va="center", fontsize=8, color=colour)
    ticks = np.arange(k)
    ax_cm.set(xticks=ticks, yticks=ticks, xlabel="predicted", ylabel="true", title="confusion matrix")
    ax_cm.set_xticklabels(classes, rotation=90 if k > 10 else 0)
    ax_cm.set_yticklabels(classes)
    ax_acc.barh(ticks, per_class, color="tab:blue")
    ax_acc.set(yticks=ticks, xlim=(0, 1), xlabel="accuracy", title="per-class accuracy")
    ax_acc.set_yticklabels(classes)
    ax_acc.invert_yaxis()
    ax_acc.grid(axis="x", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, out)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]], align: str | None = None) -> str:
    """A GitHub markdown table. `align`: one letter per column, "l" or "r"; by default a column whose cells are
    all numbers is right-aligned. Cells print with str(), so format numbers before (f"{x:.3f}", f"{n:,}") where a
    fixed precision is wanted."""
    rows = [list(row) for row in rows]
    if any(len(row) != len(header) for row in rows):
        raise ValueError(f"every row needs {len(header)} cells: {header}")
    if align is None:
        align = "".join("r" if rows and all(_is_number(row[j]) for row in rows) else "l" for j in range(len(header)))
    if len(align) != len(header) or set(align) - {"l", "r"}:
        raise ValueError(f"align needs one of 'l' / 'r' per column ({len(header)}), got {align!r}")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" ---: " if a == "r" else " --- " for a in align) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _is_number(cell: Any) -> bool:
    if isinstance(cell, Number):
        return True
    try:
        float(str(cell).replace(",", "").split(" ")[0].strip("*"))  # "**0.650** (0.6501)" is a number
    except ValueError:
        return False
    return True
