"""Pictures of motions: an animated stick-figure GIF (matplotlib animation, PillowWriter) and a PNG strip of poses.

Positions are y-up (the skeletons' convention) and drawn with matplotlib's z axis up. matplotlib is imported inside
the functions and its backend is never forced.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ssmkit.train.plots import save_figure


def _limits(positions: np.ndarray) -> tuple[np.ndarray, float]:
    """(centre (3,), half-width) of a cube holding every frame."""
    low, high = positions.reshape(-1, 3).min(0), positions.reshape(-1, 3).max(0)
    return (low + high) / 2, max(float((high - low).max()) / 2, 1e-3)


def _bones(parents: list[int]) -> list[tuple[int, int]]:
    return [(j, p) for j, p in enumerate(parents) if p >= 0]


def write_gif(positions: np.ndarray, parents: list[int], path: str | Path, fps: float, title: str = "") -> Path:
    """positions: (T, J, 3) -> an animated GIF at `fps` (folders created); returns the path."""
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation, PillowWriter

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = plt.figure(figsize=(3, 3))
    ax = fig.add_subplot(projection="3d")
    centre, half = _limits(positions)
    ax.set(xlim=(centre[0] - half, centre[0] + half), ylim=(centre[2] - half, centre[2] + half))
    ax.set(zlim=(centre[1] - half, centre[1] + half), xticklabels=[], yticklabels=[], zticklabels=[])
    ax.set_title(title, fontsize=8)
    lines = [ax.plot([], [], [], color="tab:blue", lw=2)[0] for _ in _bones(parents)]

    def draw(t: int) -> list:
        for line, (j, p) in zip(lines, _bones(parents), strict=True):
            seg = positions[t, [j, p]]
            line.set_data(seg[:, 0], seg[:, 2])
            line.set_3d_properties(seg[:, 1])
        return lines

    animation = FuncAnimation(fig, draw, frames=len(positions), blit=False)
    animation.save(path, writer=PillowWriter(fps=max(1, round(fps))), dpi=60)
    plt.close(fig)
    return path


def plot_strips(motions: list[np.ndarray], parents: list[int], titles: list[str], out: str | Path) -> Path:
    """One row per motion (T, J, 3): 6 poses evenly spaced in time, each centred on its root, viewed along z."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(motions), 1, figsize=(8, 1.6 * len(motions)), squeeze=False)
    for ax, positions, title in zip(axes[:, 0], motions, titles, strict=True):
        spacing = 1.3 * float(np.ptp(positions[0, :, 1])) or 1.0
        for k, t in enumerate(np.linspace(0, len(positions) - 1, 6).round().astype(int)):
            pose = positions[t] - np.array([positions[t, 0, 0] - k * spacing, 0, 0])
            for j, p in _bones(parents):
                ax.plot(pose[[j, p], 0], pose[[j, p], 1], color=plt.cm.viridis(k / 6), lw=1.5)
        ax.set_aspect("equal")
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    return save_figure(fig, out)
