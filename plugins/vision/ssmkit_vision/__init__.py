"""ssmkit's vision plugin: Vim, Hydra and matched ViT image models in timm's registry, and image classification.

Importing `ssmkit_vision` registers the models (`vim_*`, `hydra_*`, `vit_matched_*`) in timm's registry, so
`timm.create_model("vim_tiny_patch16_224", num_classes=10)` works after it. The registration needs torch and
timm, while plugin discovery (which imports `ssmkit_vision.plugin`, hence this package) must not import them:
so the models module is imported here when timm is already loaded, and otherwise right after timm finishes
loading, through a one-shot import hook.
"""

from __future__ import annotations

import importlib.util
import sys
from importlib import import_module
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType


class _RegisterAfterTimm(MetaPathFinder):
    """Finds `timm` as usual, then imports `ssmkit_vision.models` once timm's own import has finished."""

    def find_spec(self, name: str, path: object = None, target: ModuleType | None = None) -> ModuleSpec | None:
        if name != "timm":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("timm")
        if spec is None or spec.loader is None:
            return spec
        load_timm = spec.loader.exec_module

        def load_then_register(module: ModuleType) -> None:
            load_timm(module)
            import_module("ssmkit_vision.models")

        spec.loader.exec_module = load_then_register
        return spec


if "timm" in sys.modules:
    import_module("ssmkit_vision.models")
else:
    sys.meta_path.insert(0, _RegisterAfterTimm())
