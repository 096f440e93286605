"""The segment task's picture: images with their true and predicted masks overlaid (the confusion matrix and loss
curves are ssmkit's, `ssmkit.train.plots`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ssmkit.train.plots import save_figure


def middle_slice(x: np.ndarray) -> np.ndarray:
    """(H, W) as is; a volume (H, W, D) -> its middle slice along the last axis."""
    return x if x.ndim == 2 else x[..., x.shape[-1] // 2]


def plot_overlays(
    images: list[np.ndarray],
    masks: list[np.ndarray | None],
    predicted: list[np.ndarray],
    classes: list[str],
    out: Path,
    title: str = "",
) -> Path:
    """One row per image (H, W) or volume (middle slice): the image, the true mask over it (when known), the
    predicted mask over it; class 0 (background) is left clear."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    colours = ListedColormap(plt.get_cmap("tab10").colors[: max(len(classes) - 1, 1)])
    fig, axes = plt.subplots(len(images), 3, figsize=(7.5, 2.6 * len(images)), squeeze=False)
    for row, image, mask, pred in zip(axes, images, masks, predicted, strict=True):
        for ax, overlay, name in zip(row, (None, mask, pred), ("image", "true", "predicted"), strict=True):
            ax.imshow(middle_slice(image), cmap="gray")
            if overlay is not None:
                shown = np.ma.masked_equal(middle_slice(overlay), 0)
                ax.imshow(shown - 1, cmap=colours, vmin=0, vmax=max(len(classes) - 2, 1), alpha=0.5)
            ax.set_title(name if overlay is not None or name == "image" else "true: unknown", fontsize=9)
            ax.axis("off")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours(k)) for k in range(len(classes) - 1)]
    fig.legend(handles, classes[1:], loc="lower center", ncol=min(len(classes) - 1, 6))
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return save_figure(fig, out)
