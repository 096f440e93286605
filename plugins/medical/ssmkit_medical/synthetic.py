"""Synthetic organs: a documented generator of 2D grey images with organ masks, the plugin's bundled default.

Each image (size x size, values in [0, 1]) holds, over a textured background under a smooth bias field:
- organ 1 ("liver"): a large rotated ellipse (semi-axes 22-40 % of the side) of mid intensity and coarse texture;
- organ 2 ("kidney"): one or two small bright ellipses (semi-axes 8-15 % of the side), drawn over organ 1.
Then Rician-like noise: |image + N(0, s) + i N(0, s)|, s = `noise`.

Masks: 0 background, 1 organ 1, 2 organ 2 (the segment task's three classes). Labels (the classify task's three
classes, `CLASSES`): which organs an image holds: 0 organ 1 only, 1 organ 2 only, 2 both.

The long-range variant (`synthetic_long_range`, masks 0 background, 1 target): two identical bright blobs, mirror
images of each other across the vertical midline in the lower half, and a small bright square marker in the top
row band, on the left or the right; only the blob on the marker's side is foreground. Nothing near a blob says which
one it is, so a model must relate it to the marker half an image away.

Images are a pure function of the arguments: the same arguments give the same arrays on every machine.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

CLASSES = ["liver", "kidney", "both"]
ORGANS = ["background", "liver", "kidney"]
LONG_RANGE = ["background", "target"]
# what each label draws: (organ 1, organ 2)
CONTENTS = {0: (True, False), 1: (False, True), 2: (True, True)}


def synthetic_organs(
    n: int, size: int = 64, seed: int = 0, noise: float = 0.05
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images (n, size, size) float32 in [0, 1], masks (n, size, size) int64 in {0, 1, 2}, labels (n,) int64),
    the labels cycling 0, 1, 2 so every class gets a third."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n, dtype=np.int64) % len(CLASSES)
    images, masks = zip(*(_organ_image(rng, size, int(label), noise) for label in labels), strict=True)
    return np.stack(images).astype(np.float32), np.stack(masks), labels


def synthetic_long_range(n: int, size: int = 64, seed: int = 0, noise: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """(images (n, size, size) float32 in [0, 1], masks (n, size, size) int64 in {0, 1}); the marker sits on the
    left in even images, on the right in odd ones."""
    rng = np.random.default_rng(seed)
    pairs = [_long_range_image(rng, size, right=bool(i % 2), noise=noise) for i in range(n)]
    images, masks = zip(*pairs, strict=True)
    return np.stack(images).astype(np.float32), np.stack(masks)


def _long_range_image(rng: np.random.Generator, size: int, right: bool, noise: float) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    a, b = rng.uniform(0.15, 0.25, size=2)
    cy, cx = rng.uniform(0.3, 0.7), rng.uniform(0.35, 0.65)
    left, right_blob = (((xx - x0) / a) ** 2 + ((yy - cy) / b) ** 2 <= 1 for x0 in (-cx, cx))
    image = 0.2 + 0.05 * _texture(rng, size, sigma=size / 16)
    image[left | right_blob] = 0.8
    side = size // 8
    row, col = rng.integers(side, 2 * side), rng.integers(side, 2 * side)
    col = size - col - side if right else col
    image[row : row + side, col : col + side] = 0.9
    image = np.hypot(image + rng.normal(0, noise, image.shape), rng.normal(0, noise, image.shape))
    return np.clip(image, 0, 1), (right_blob if right else left).astype(np.int64)


def _organ_image(rng: np.random.Generator, size: int, label: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    image = 0.2 + 0.08 * _texture(rng, size, sigma=size / 16)
    mask = np.zeros((size, size), np.int64)
    liver, kidney = CONTENTS[label]
    if liver:
        inside = _ellipse(rng, yy, xx, (0.45, 0.8))
        image[inside] = 0.5 + 0.1 * _texture(rng, size, sigma=size / 24)[inside]
        mask[inside] = 1
    for _ in range(rng.integers(1, 3) if kidney else 0):
        inside = _ellipse(rng, yy, xx, (0.16, 0.3))
        image[inside] = 0.85 + 0.05 * _texture(rng, size, sigma=size / 32)[inside]
        mask[inside] = 2
    bias = 1 + rng.uniform(-0.15, 0.15) * xx + rng.uniform(-0.15, 0.15) * yy
    image = image * bias
    image = np.hypot(image + rng.normal(0, noise, image.shape), rng.normal(0, noise, image.shape))
    return np.clip(image, 0, 1), mask


def _ellipse(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, axes: tuple[float, float]) -> np.ndarray:
    """A random rotated ellipse inside the image: semi-axes in `axes` (fractions of the [-1, 1] extent)."""
    a, b = rng.uniform(*axes, size=2)
    cy, cx = rng.uniform(-1 + max(a, b), 1 - max(a, b), size=2)
    angle = rng.uniform(0, np.pi)
    u = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)
    v = -(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)
    return (u / a) ** 2 + (v / b) ** 2 <= 1


def _texture(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    """Smooth noise with unit standard deviation, correlated over about `sigma` pixels."""
    field = gaussian_filter(rng.normal(size=(size, size)), sigma)
    return field / max(float(field.std()), 1e-8)
