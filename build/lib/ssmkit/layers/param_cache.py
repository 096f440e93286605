"""`ParameterCache`: a value derived from a module's parameters (an SSM kernel, discretised matrices) kept between
calls while gradients are off (inference, generation) and recomputed once any parameter or buffer changed: optimiser
steps and `load_state_dict` bump tensor versions, `.to()` makes new tensors. With gradients on it never caches, so
autograd always sees a fresh graph."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import torch
from torch import nn


class ParameterCache:
    def __init__(self) -> None:
        self._key: tuple | None = None
        self._value: Any = None

    def get(self, module: nn.Module, compute: Callable[[], Any], reusable: Callable[[Any], bool] | None = None) -> Any:
        """The cached value if `module`'s tensors are unchanged (and `reusable(value)`), else `compute()`."""
        if torch.is_grad_enabled():
            self._key = self._value = None
            return compute()
        key = tuple((t.data_ptr(), t._version) for t in itertools.chain(module.parameters(), module.buffers()))
        if key != self._key or (reusable is not None and not reusable(self._value)):
            self._key, self._value = key, compute()
        return self._value
