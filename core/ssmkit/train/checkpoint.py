"""Checkpoint I/O: atomic writes (a temporary file in the same folder, fsync, then rename, so a crash never
leaves a half-written checkpoint) and safe loads (`weights_only=True`, with a clear error for a file that is
corrupt or is not an ssmkit / Lightning checkpoint)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO


class CheckpointError(ValueError):
    pass


def write_atomic(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Write `path` through `write(temporary path)`: a file in the same folder, fsynced, then renamed over `path`, so
    a crash never leaves a half-written file. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a checkpoint is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_atomic(obj: Any, path: str | os.PathLike) -> None:
    write_atomic(path, lambda tmp: torch.save(obj, tmp))


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a Lightning-format checkpoint with `weights_only=True`; raise `CheckpointError` if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"{path} is not a readable checkpoint (corrupt, truncated, or holding objects other than tensors "
            f"and plain data; {type(exc).__name__})"
        ) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        found = sorted(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path} is not a Lightning checkpoint (no 'state_dict'; found {found})")
    return ckpt


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning CheckpointIO plugin using `save_atomic` and `load_checkpoint`."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        save_atomic(checkpoint, path)

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict:
        return load_checkpoint(path, map_location=map_location or "cpu")
