"""The sensors tasks' own pictures: prediction vs truth, forecasts after their history (confusion matrices and
loss curves come from `ssmkit.train.plots`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ssmkit.train.plots import save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def plot_prediction(truth: np.ndarray, predicted: np.ndarray, names: list[str], out: Path, title: str = "") -> Path:
    """truth, predicted: (N, L, T) windows; one panel per (window, target) pair, at most 3 windows."""
    import matplotlib.pyplot as plt

    n, _, t = truth.shape
    n = min(n, 3)
    fig, axes = plt.subplots(n * t, 1, figsize=(10, 2.2 * n * t), squeeze=False, sharex=True)
    for i in range(n):
        for j in range(t):
            ax = axes[i * t + j, 0]
            ax.plot(truth[i, :, j], color="black", lw=1.2, label="truth")
            ax.plot(predicted[i, :, j], color="tab:red", lw=1.0, label="predicted")
            ax.set_ylabel(f"{names[j]}\n(window {i})", fontsize=8)
            ax.grid(alpha=0.3)
    axes[0, 0].legend(loc="upper right")
    axes[-1, 0].set_xlabel("step")
    return _save(fig, out, title)


def plot_forecast(
    history: np.ndarray, truth: np.ndarray, predicted: np.ndarray, names: list[str], out: Path, title: str = ""
) -> Path:
    """history (L, C), truth and predicted (H, C): one panel per channel (at most 4, the last ones)."""
    import matplotlib.pyplot as plt

    channels = list(range(history.shape[1]))[-4:]
    fig, axes = plt.subplots(len(channels), 1, figsize=(10, 2.2 * len(channels)), squeeze=False, sharex=True)
    past = np.arange(-len(history), 0)
    future = np.arange(len(truth))
    for ax, c in zip(axes[:, 0], channels, strict=True):
        ax.plot(past, history[:, c], color="gray", lw=1.0, label="history")
        ax.plot(future, truth[:, c], color="black", lw=1.2, label="truth")
        ax.plot(future, predicted[:, c], color="tab:red", lw=1.0, label="forecast")
        ax.axvline(0, color="gray", ls=":")
        ax.set_ylabel(names[c])
        ax.grid(alpha=0.3)
    axes[0, 0].legend(loc="upper left")
    axes[-1, 0].set_xlabel("step (0 = first forecast step)")
    return _save(fig, out, title)


def _save(fig: Figure, out: Path, title: str) -> Path:
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.97))  # room for the title
    return save_figure(fig, out, dpi=100)
