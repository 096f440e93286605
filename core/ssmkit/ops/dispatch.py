"""Backend dispatch for ops.

Every op has a `reference` backend (the readable spec). Faster backends register themselves with a
priority and an availability check; `resolve` picks the highest-priority available backend for the
tensor's device, and `backends()` reports that choice so it is never silent. A backend forced by name
that is unavailable raises instead of falling back.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

REFERENCE = "reference"
TRITON_UNAVAILABLE = (
    "Triton kernels need triton installed (pip install triton) and a CUDA GPU; they run on CUDA tensors"
)


@dataclass(frozen=True)
class Backend:
    name: str
    fn: Callable[..., Any]
    devices: tuple[str, ...] = ("cpu", "cuda")
    priority: int = 0
    available: Callable[[], bool] = field(default=lambda: True)
    why_unavailable: str = ""


_BACKENDS: dict[str, dict[str, Backend]] = {}


def register_backend(op: str, backend: Backend) -> None:
    table = _BACKENDS.setdefault(op, {})
    if backend.name in table:
        raise ValueError(f"backend {backend.name!r} is already registered for op {op!r}")
    table[backend.name] = backend


def resolve(op: str, device_type: str, backend: str | None = None) -> Callable[..., Any]:
    """The function that runs `op` on `device_type`: the named backend, or the best available one."""
    table = _BACKENDS[op]
    if backend is not None:
        if backend not in table:
            raise ValueError(f"unknown backend {backend!r} for op {op!r}; known: {sorted(table)}")
        chosen = table[backend]
        if device_type not in chosen.devices or not chosen.available():
            raise RuntimeError(
                f"backend {backend!r} for op {op!r} is unavailable on device {device_type!r}"
                + (f": {chosen.why_unavailable}" if chosen.why_unavailable else "")
            )
        return chosen.fn
    return _best(op, device_type).fn


def _best(op: str, device_type: str) -> Backend:
    usable = [b for b in _BACKENDS[op].values() if device_type in b.devices and b.available()]
    return max(usable, key=lambda b: b.priority)


def backends() -> dict[str, dict[str, Any]]:
    """For each op: the registered backends, which are available, and the default per device."""
    report: dict[str, dict[str, Any]] = {}
    for op, table in sorted(_BACKENDS.items()):
        report[op] = {
            "registered": sorted(table),
            "available": sorted(name for name, b in table.items() if b.available()),
            "default": {dev: _best(op, dev).name for dev in ("cpu", "cuda")},
        }
    return report


@functools.cache
def triton_on_cuda() -> bool:
    """Whether the Triton backends can run: triton is importable and torch sees a CUDA device (triton not imported)."""
    import torch

    return importlib.util.find_spec("triton") is not None and torch.cuda.is_available()
