"""Name -> constructor registries for sequence mixers and whole models (timm-style).

@register_mixer("mamba")
class Mamba(Mixer): ...

ssmkit.create_mixer("mamba", d_model=64, d_state=16)
ssmkit.list_mixers()
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from importlib import import_module
from typing import Any, TypeVar

T = TypeVar("T")

# Modules whose import registers the built-in mixers and models.
_BUILTIN_MODULES = ("ssmkit.layers", "ssmkit.models")
_MIXERS: dict[str, type] = {}
_MODELS: dict[str, Callable[..., Any]] = {}


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        import_module(module)


def _register(table: dict[str, Any], kind: str, name: str) -> Callable[[T], T]:
    def add(obj: T) -> T:
        if name in table:
            raise ValueError(f"{kind} {name!r} is already registered (by {table[name].__module__})")
        table[name] = obj
        return obj

    return add


def register_mixer(name: str) -> Callable[[T], T]:
    """Class decorator registering a mixer under `name`; registering a name twice is an error."""
    return _register(_MIXERS, "mixer", name)


def register_model(name: str) -> Callable[[T], T]:
    """Decorator registering a model factory `fn(**kwargs) -> nn.Module` under `name`."""
    return _register(_MODELS, "model", name)


def list_mixers(pattern: str = "*") -> list[str]:
    _load_builtins()
    return sorted(fnmatch.filter(_MIXERS, pattern))


def list_models(pattern: str = "*") -> list[str]:
    _load_builtins()
    return sorted(fnmatch.filter(_MODELS, pattern))


def mixer_class(name: str) -> type:
    _load_builtins()
    if name not in _MIXERS:
        raise ValueError(f"unknown mixer {name!r}; registered mixers: {', '.join(sorted(_MIXERS))}")
    return _MIXERS[name]


def create_mixer(name: str, d_model: int, **kwargs: Any) -> Any:
    """Instantiate the mixer registered as `name`: `(B, L, d_model) -> (B, L, d_model)`."""
    return mixer_class(name)(d_model, **kwargs)


def with_l_max(mixer_name: str, kwargs: dict[str, Any], l_max: int) -> dict[str, Any]:
    """`kwargs` for the mixer `mixer_name` with `l_max` filled in where its family takes one (`takes_l_max`) and
    `kwargs` do not set it; otherwise `kwargs` unchanged (a copy)."""
    if mixer_class(mixer_name).takes_l_max:
        return {"l_max": l_max, **kwargs}
    return dict(kwargs)


def create_model(name: str, **kwargs: Any) -> Any:
    _load_builtins()
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; registered models: {', '.join(sorted(_MODELS))}")
    return _MODELS[name](**kwargs)
