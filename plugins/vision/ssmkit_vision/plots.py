"""Vision's own pictures: a grid of misclassified images, and the demo's comparison of runs (the confusion
matrix and loss curves are ssmkit's, `ssmkit.train.plots`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ssmkit.train.plots import save_figure


def plot_mistakes(
    images: np.ndarray, true: np.ndarray, predicted: np.ndarray, classes: list[str], out: Path, columns: int = 8
) -> Path:
    """images: (N, C, H, W) normalised; each shown min-max scaled with its "true -> predicted" label."""
    import matplotlib.pyplot as plt

    n = len(images)
    rows = max(1, -(-n // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(1.4 * columns, 1.9 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, t, p in zip(axes.flat, images, true, predicted, strict=False):
        shown = (image - image.min()) / max(float(image.max() - image.min()), 1e-8)
        shown = shown.transpose(1, 2, 0)
        ax.imshow(shown[..., 0] if shown.shape[-1] == 1 else shown, cmap="gray")
        ax.set_title(f"{classes[t]} -> {classes[p]}", fontsize=8, color="tab:red")
    fig.suptitle(f"misclassified: {n} shown (true -> predicted)" if n else "no misclassified images")
    fig.tight_layout()
    return save_figure(fig, out)


def plot_runs(runs: list[dict[str, Any]], out: Path, title: str = "") -> Path:
    """Runs side by side: validation top-1 against the step (each run's `curve`: [(step, top-1)]) on the left,
    fit time (`seconds`) on the right; each run also has a `label` and `params`."""
    import matplotlib.pyplot as plt

    fig, (ax_acc, ax_time) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1.6, 1]})
    for run in runs:
        steps, top1 = zip(*run["curve"], strict=True) if run["curve"] else ((), ())
        ax_acc.plot(steps, top1, marker="o", label=f"{run['label']} ({run['params'] / 1e3:.0f}k parameters)")
    ax_acc.set(xlabel="training step", ylabel="validation top-1", ylim=(0, 1.02))
    ax_acc.grid(alpha=0.3)
    ax_acc.legend(loc="lower right")
    ax_time.barh([run["label"] for run in runs], [run["seconds"] for run in runs], color="tab:gray")
    ax_time.set(xlabel="fit time (s)")
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, out, dpi=120)
