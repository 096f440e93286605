"""The genomics runs' own pictures: bits per base against the position in the window (the context a prediction
had), and the context scan's bits per base against the trained context length. Saved with
`ssmkit.train.plots.save_figure`; matplotlib is imported when a picture is drawn."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ssmkit.train.plots import save_figure


def plot_context_curve(bits: np.ndarray, out: Path, title: str = "") -> Path:
    """bits: (L,) mean bits per base of the prediction at each window position, i.e. with that much context."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    edges = np.unique(np.geomspace(1, len(bits), num=40).astype(int))
    centres = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:], strict=True)]
    means = [bits[a - 1 : b - 1].mean() for a, b in zip(edges[:-1], edges[1:], strict=True)]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(centres, means, marker="o", ms=3)
    ax.set(xscale="log", xlabel="context (bases before the predicted one)", ylabel="bits per base", title=title)
    ax.xaxis.set_major_formatter(ScalarFormatter())  # 1, 10, 100 (not 10^k), and no crowded minor labels
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, out)


def plot_context_scan(
    contexts: list[int],
    series: dict[str, list[float]],
    entropy_rate: float,
    out: Path,
    title: str = "",
    dashed: tuple[str, ...] = (),
) -> Path:
    """Held-out bits per base of each group of bases (`series`: label -> one value per context) against the
    models' context lengths; the series named in `dashed` are drawn dashed."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.4))
    for label, values in series.items():
        style = {"linewidth": 2.5 if label == "all bases" else 1.5, "linestyle": "--" if label in dashed else "-"}
        ax.plot(contexts, values, marker="o", label=label, **style)
    ax.axhline(entropy_rate, color="grey", linestyle="--", linewidth=1, label=f"background H* = {entropy_rate:.3f}")
    ax.set(xscale="log", xticks=contexts, xlabel="context length (trained and evaluated)", ylabel="bits per base")
    ax.set_xticklabels([f"{c:,}" for c in contexts])
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out)
