"""Argument checks shared by ops and mixers: clear `ValueError`s that name the argument and the expected
shape, raised before any torch kernel sees a bad tensor."""

from __future__ import annotations

import torch


def check_float(name: str, t: torch.Tensor) -> None:
    """Raise unless `t` is a floating-point (or complex) tensor."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not (t.is_floating_point() or t.is_complex()):
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")


def check_shape(name: str, t: torch.Tensor, expected: str, *sizes: int | None) -> None:
    """Raise unless `t` has `len(sizes)` dims and each given size matches (None matches anything).

    `expected` is the human-readable layout, e.g. "(B, D, L)".
    """
    check_float(name, t)
    if t.dim() != len(sizes) or any(s is not None and s != n for s, n in zip(sizes, t.shape, strict=True)):
        want = expected + ("" if all(s is None for s in sizes) else f" with {', '.join(_known(expected, sizes))}")
        raise ValueError(f"{name} must have shape {want}, got {tuple(t.shape)}")


def check_lengths(lengths: torch.Tensor | None, batch: int, seq_len: int) -> None:
    """`lengths: (B,)` integer tensor with 1 <= lengths <= L."""
    if lengths is None:
        return
    if lengths.dim() != 1 or lengths.shape[0] != batch:
        raise ValueError(f"lengths must have shape (B,) = ({batch},), got {tuple(lengths.shape)}")
    if lengths.is_floating_point() or lengths.is_complex():
        raise ValueError(f"lengths must be an integer tensor, got dtype {lengths.dtype}")
    if bool((lengths < 1).any()) or bool((lengths > seq_len).any()):
        raise ValueError(f"lengths must lie in [1, L={seq_len}], got {lengths.tolist()}")


def check_resets(resets: torch.Tensor | None, batch: int, seq_len: int) -> None:
    """`resets: (B, L)` bool tensor (where true, a recurrence restarts before that step)."""
    if resets is not None and (resets.shape != (batch, seq_len) or resets.dtype != torch.bool):
        raise ValueError(
            f"resets must be a bool tensor of shape (B, L) = ({batch}, {seq_len}), got {resets.dtype} "
            f"{tuple(resets.shape)}"
        )


def _known(expected: str, sizes: tuple[int | None, ...]) -> list[str]:
    letters = [s.strip() for s in expected.strip("()").split(",")]
    return [f"{a}={s}" for a, s in zip(letters, sizes, strict=False) if s is not None]
