"""ssmkit: state-space sequence models as a transformer alternative.

`import ssmkit` is cheap: it imports no torch. The model-building names below load on first use, so
`ssmkit.plugins` (plugin discovery) stays torch-free.

Imported before torch (as the `ssmkit` command does), it sets `OMP_WAIT_POLICY=PASSIVE` unless the environment
says otherwise: OpenMP threads that spin while waiting (the default) starve each other and everything else on a
busy machine; see the README's "Threads" choice for the measurement.
"""

from __future__ import annotations

import os
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read once, when torch (or numba) loads OpenMP

try:
    __version__ = version("ssmkit")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

_LAZY = {
    "create_mixer": "ssmkit.registry",
    "list_mixers": "ssmkit.registry",
    "register_mixer": "ssmkit.registry",
    "create_model": "ssmkit.registry",
    "list_models": "ssmkit.registry",
    "register_model": "ssmkit.registry",
    "BackboneConfig": "ssmkit.models",
    "SequenceBackbone": "ssmkit.models",
    "LanguageModel": "ssmkit.models",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ssmkit' has no attribute {name!r}")
