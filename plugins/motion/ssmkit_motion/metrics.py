"""Generation metrics on evaluator features, as the HumanML3D / T2M protocol (Guo et al. 2022) computes them.

- `fid(a, b)`: Frechet distance between Gaussians fitted to two feature sets (N, D).
- `per_label_fid(f, labels, real, real_labels, shift)`: the mean over labels c of FID(generated for label
  c + shift, real of label c); shift 0 is a class-conditional FID, shift 1 that of a label-shuffled generator
  (each label's samples compared with the next label's real windows).
- `diversity(f, n_pairs)`: mean Euclidean distance between `n_pairs` random pairs of samples (T2M: 300 pairs).
- `multimodality(f, labels, n_pairs)`: per label, the mean distance between random pairs of samples of that label
  (T2M: 10 pairs of the samples generated for one text), averaged over labels.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg


def fid(a: np.ndarray, b: np.ndarray) -> float:
    """a: (N, D), b: (M, D) -> ||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(root).all():  # singular product: regularise as the T2M code does
        eps = 1e-6 * np.eye(len(cov_a))
        root = linalg.sqrtm((cov_a + eps) @ (cov_b + eps))
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root.real))


def diversity(features: np.ndarray, n_pairs: int = 300, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    first, second = rng.integers(len(features), size=(2, n_pairs))
    return float(np.linalg.norm(features[first] - features[second], axis=1).mean())


def multimodality(features: np.ndarray, labels: np.ndarray, n_pairs: int = 10, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    per_label = []
    for label in np.unique(labels):
        members = features[labels == label]
        if len(members) < 2:
            continue
        first, second = rng.integers(len(members), size=(2, n_pairs))
        per_label.append(np.linalg.norm(members[first] - members[second], axis=1).mean())
    return float(np.mean(per_label)) if per_label else float("nan")


def per_label_fid(
    features: np.ndarray, labels: np.ndarray, real: np.ndarray, real_labels: np.ndarray, shift: int = 0
) -> float:
    """See the module doc; labels without two samples on both sides are skipped."""
    classes = np.unique(real_labels)
    scores = []
    for i, label in enumerate(classes):
        generated = features[labels == classes[(i + shift) % len(classes)]]
        reference = real[real_labels == label]
        if len(generated) > 1 and len(reference) > 1:
            scores.append(fid(generated, reference))
    return float(np.mean(scores)) if scores else float("nan")
