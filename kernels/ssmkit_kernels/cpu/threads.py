"""numba's parallel kernels beside torch: both run on OpenMP, and numba's layer sets the process-wide OpenMP thread
count to its own when a parallel kernel starts, which silently undid `torch.set_num_threads(1)`. Kernels wrapped by
`with_torch_threads` run on torch's thread count (at most numba's) and leave torch's count as it was."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import numba
import torch

F = TypeVar("F", bound=Callable)


def with_torch_threads(kernel: F) -> F:
    @functools.wraps(kernel)
    def run(*args):
        threads = torch.get_num_threads()
        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
        try:
            return kernel(*args)
        finally:
            torch.set_num_threads(threads)

    return run  # type: ignore[return-value]
