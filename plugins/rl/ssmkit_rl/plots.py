"""The RL pictures: learning curves (return against environment steps), returns per task, an episode as a GIF."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ssmkit.train.plots import save_figure


def plot_learning_curves(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], out: Path, title: str = ""
) -> Path:
    """curves: label -> (environment steps, mean episode return), drawn on one axis."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, (steps, returns) in curves.items():
        ax.plot(steps, returns, label=label, marker="o" if len(steps) < 30 else None)
    ax.set(xlabel="environment steps", ylabel="mean episode return", title=title)
    ax.grid(alpha=0.3)
    if curves:
        ax.legend()
    fig.tight_layout()
    return save_figure(fig, out)


def write_gif(frames: Sequence[np.ndarray], path: Path, fps: int = 25) -> Path:
    """frames: (H, W, 3) uint8 images -> an animated GIF looping forever."""
    if not frames:
        raise ValueError("no frames to write")
    images = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
    return path


def plot_returns_by_task(
    returns: Mapping[str, Sequence[float]], tasks: Sequence[str], out: Path, title: str = ""
) -> Path:
    """returns: label (a policy) -> mean episode return per task, drawn as grouped bars over `tasks`."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(tasks) + 2), 4))
    width = 0.8 / max(1, len(returns))
    for i, (label, values) in enumerate(returns.items()):
        ax.bar(np.arange(len(tasks)) + i * width, values, width, label=label)
    ax.set_xticks(np.arange(len(tasks)) + 0.4 - width / 2, tasks)
    ax.set(ylabel="mean episode return", title=title)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out)


def plot_trial_returns(returns: Mapping[str, Sequence[float]], out: Path, title: str = "") -> Path:
    """returns: label -> mean return per trial (trial 1 .. n), one line each (meta-RL: later trials should be
    higher when the agent learns in context)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, values in returns.items():
        ax.plot(np.arange(1, len(values) + 1), values, marker="o", label=label)
    ax.set(xlabel="trial", ylabel="mean trial return", title=title)
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    if returns:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out)
