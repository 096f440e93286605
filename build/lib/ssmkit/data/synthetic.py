"""Generators of the synthetic sequence tasks: the honest yardstick between mixers.

Every generator is a pure function of its arguments and a `torch.Generator`, so a seed fixes the data.
Token tasks return `(inputs (n, L) long, targets (n, L) long)` with `IGNORE` where nothing is scored.
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor
IGNORE = -100


def selective_copy(
    n: int, seq_len: int, n_tokens: int, vocab_size: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Selective copying (Mamba paper, section 3.1).

    `n_tokens` data tokens (ids 1..vocab_size) sit at random positions among `seq_len` noise tokens (id 0);
    then `n_tokens` marker tokens (id vocab_size + 1) ask for the data tokens in order. Only the marker
    positions are scored. Total length seq_len + n_tokens; vocabulary vocab_size + 2.
    """
    if n_tokens > seq_len:
        raise ValueError(f"n_tokens={n_tokens} must be <= seq_len={seq_len}")
    data = torch.randint(1, vocab_size + 1, (n, n_tokens), generator=generator)
    positions = torch.rand(n, seq_len, generator=generator).argsort(-1)[:, :n_tokens].sort(-1).values
    inputs = torch.zeros(n, seq_len + n_tokens, dtype=torch.long)
    inputs.scatter_(1, positions, data)
    inputs[:, seq_len:] = vocab_size + 1
    targets = torch.full_like(inputs, IGNORE)
    targets[:, seq_len:] = data
    return inputs, targets


def associative_recall(
    n: int, n_pairs: int, n_queries: int, vocab_size: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Multi-query associative recall (MQAR, Zoology).

    A context of `n_pairs` key-value pairs (k1 v1 k2 v2 ...; keys distinct, from the lower half of the
    vocabulary, values from the upper half), then `n_queries` keys drawn from the context; at each query the
    target is its value. Length 2 * n_pairs + n_queries; token 0 is unused.
    """
    half = vocab_size // 2
    if n_pairs > half - 1:
        raise ValueError(f"n_pairs={n_pairs} needs vocab_size >= {2 * (n_pairs + 1)}, got {vocab_size}")
    keys = torch.rand(n, half - 1, generator=generator).argsort(-1)[:, :n_pairs] + 1
    values = torch.randint(half, vocab_size, (n, n_pairs), generator=generator)
    which = torch.randint(0, n_pairs, (n, n_queries), generator=generator)
    context = torch.stack([keys, values], dim=-1).flatten(1)
    inputs = torch.cat([context, keys.gather(1, which)], dim=1)
    targets = torch.full_like(inputs, IGNORE)
    targets[:, 2 * n_pairs :] = values.gather(1, which)
    return inputs, targets


def induction_heads(n: int, seq_len: int, vocab_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Induction heads (H3 paper): random tokens 1..vocab_size-1 with a trigger token (id 0) at a random
    position in the first half followed by a token X; the sequence ends with the trigger, target X."""
    inputs = torch.randint(1, vocab_size, (n, seq_len), generator=generator)
    inputs[inputs == 0] = 1
    pos = torch.randint(0, seq_len // 2 - 1, (n,), generator=generator)
    rows = torch.arange(n)
    inputs[rows, pos] = 0
    inputs[:, -1] = 0
    targets = torch.full_like(inputs, IGNORE)
    targets[:, -1] = inputs[rows, pos + 1]
    return inputs, targets


def icl_regression(
    n: int, n_points: int, dim: int, noise: float, generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor]:
    """In-context linear regression (Garg et al., 2022): y_i = w . x_i + noise, a fresh w ~ N(0, I) per prompt.

    Returns `features (n, 2 * n_points, dim + 2)`: position 2i carries [x_i, 0, 0] and 2i+1 carries
    [0, y_i, 1] (the last channel flags a y slot); `xs (n, n_points, dim)` and `ys (n, n_points)`.
    The model predicts y_i at position 2i from the pairs before it.
    """
    w = torch.randn(n, dim, generator=generator)
    xs = torch.randn(n, n_points, dim, generator=generator)
    ys = torch.einsum("npd,nd->np", xs, w) + noise * torch.randn(n, n_points, generator=generator)
    features = torch.zeros(n, 2 * n_points, dim + 2)
    features[:, 0::2, :dim] = xs
    features[:, 1::2, dim] = ys
    features[:, 1::2, dim + 1] = 1.0
    return features, xs, ys


def least_squares_predictions(xs: Tensor, ys: Tensor) -> Tensor:
    """The least-squares baseline on the same prompts: for each i, fit w on pairs < i (minimum-norm
    solution when under-determined) and predict y_i. Prediction 0 uses no data and is 0. (n, n_points)."""
    preds = torch.zeros_like(ys)
    for i in range(1, xs.shape[1]):
        w = torch.linalg.pinv(xs[:, :i]) @ ys[:, :i, None]  # (n, dim, 1)
        preds[:, i] = (xs[:, i : i + 1] @ w)[:, 0, 0]
    return preds


def sequential_digits() -> tuple[Tensor, Tensor]:
    """scikit-learn's bundled 8x8 digits (1,797 images) read pixel by pixel: `(n, 64, 1)` in [0, 1], labels (n,)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    return images[..., None], torch.tensor(digits.target, dtype=torch.long)
