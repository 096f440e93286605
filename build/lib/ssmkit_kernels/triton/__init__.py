"""Triton GPU kernels for ssmkit's scans: `selective_scan` and `selective_state_update` (Mamba-1), `ssd_scan`
(Mamba-2) and `linear_scan` (with resets). Each has the signature of its `ssmkit.ops` reference.

Under `TRITON_INTERPRET=1` (how they are tested, on CPU tensors) the kernels run with small blocks and a single
launch configuration, because the interpreter is slow and a multi-config autotune needs a GPU driver. The mode
is read once, at import, which is also when `triton.jit` decides whether to interpret.
"""

from __future__ import annotations

import contextlib

import torch
import triton

INTERPRET: bool = triton.knobs.runtime.interpret


def warp_configs(**meta: int) -> list[triton.Config]:
    """Autotune candidates that differ only in warps (they never change results): one under the interpreter."""
    return [triton.Config(meta, num_warps=w) for w in ((4,) if INTERPRET else (4, 8))]


def on_device(t: torch.Tensor) -> contextlib.AbstractContextManager:
    """Launches go to `t`'s GPU (Triton launches on the current device); nothing for CPU tensors (interpreter)."""
    return torch.cuda.device(t.device) if t.is_cuda else contextlib.nullcontext()
