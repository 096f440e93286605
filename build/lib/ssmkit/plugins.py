"""The plugin protocol and entry-point discovery. Imports no torch, lightning or domain library.

A plugin is a distribution that declares, in its pyproject.toml,

    [project.entry-points."ssmkit.plugins"]
    vision = "ssmkit_vision.plugin:plugin"

where `plugin` is a `Plugin`. Its tasks name their LightningModule / LightningDataModule by import string,
so listing plugins imports only the small `plugin.py` modules. Discovery loads each entry point inside a
guard: a plugin that fails to import, is not a `Plugin`, names itself differently from its entry point,
clashes with another, or needs another core version is reported broken with the reason, and the rest go on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import import_module, resources
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

import ssmkit

GROUP = "ssmkit.plugins"


def load_object(spec: str) -> Any:
    """Import "package.module:attr" and return the attribute."""
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"expected an import string 'package.module:attribute', got {spec!r}")
    return getattr(import_module(module), attr)


def resource_path(spec: str) -> Path:
    """Resolve "package:relative/path" to a file shipped inside an installed package."""
    package, sep, rel = spec.partition(":")
    if not sep:
        raise ValueError(f"expected 'package:relative/path', got {spec!r}")
    return Path(str(resources.files(package).joinpath(rel)))


@dataclass(frozen=True)
class Task:
    """One trainable task: import strings for its Lightning classes and "package:path" configs."""

    module: str
    datamodule: str
    config: str
    quick_config: str
    description: str

    @classmethod
    def in_package(cls, package: str, module: str, datamodule: str, config: str, description: str) -> Task:
        """A task laid out as DESIGN.md's plugins are: `<package>.tasks:<module>`,
        `<package>.datamodules:<datamodule>`, configs `<package>/configs/<config>{,_quick}.yaml`."""
        return cls(
            module=f"{package}.tasks:{module}",
            datamodule=f"{package}.datamodules:{datamodule}",
            config=f"{package}:configs/{config}.yaml",
            quick_config=f"{package}:configs/{config}_quick.yaml",
            description=description,
        )

    def load(self) -> tuple[type, type]:
        """(LightningModule class, LightningDataModule class); imports torch and the plugin's libraries."""
        return load_object(self.module), load_object(self.datamodule)

    def config_path(self, quick: bool = False) -> Path:
        return resource_path(self.quick_config if quick else self.config)


@dataclass(frozen=True)
class Plugin:
    """What a plugin's entry point points at."""

    name: str
    description: str
    requires_ssmkit: str
    tasks: Mapping[str, Task] = field(default_factory=dict)
    # "module:function" running the plugin's demo: fn(out_dir: Path) -> str (a report to print).
    demo: str | None = None


@dataclass
class PluginInfo:
    """A discovered entry point: the loaded plugin, or the reason it is broken."""

    name: str
    version: str
    value: str
    plugin: Plugin | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def discover(eps: Iterable[EntryPoint] | None = None) -> list[PluginInfo]:
    """Load every entry point of the `ssmkit.plugins` group (or the given ones), each inside a guard."""
    found = list(entry_points(group=GROUP) if eps is None else eps)
    infos = [_load(ep) for ep in found]
    counts: dict[str, int] = {}
    for info in infos:
        counts[info.name] = counts.get(info.name, 0) + 1
    for info in infos:
        if counts[info.name] > 1 and info.ok:
            info.plugin, info.error = (
                None,
                f"name clash: {counts[info.name]} installed plugins are named {info.name!r}",
            )
    return sorted(infos, key=lambda i: i.name)


def _load(ep: EntryPoint) -> PluginInfo:
    dist = getattr(ep, "dist", None)
    info = PluginInfo(ep.name, dist.version if dist is not None else "unknown", ep.value)
    try:
        obj = ep.load()
    except Exception as exc:  # a plugin that cannot import must not take the host down
        info.error = f"import failed: {type(exc).__name__}: {exc}"
        return info
    if not isinstance(obj, Plugin):
        info.error = f"entry point {ep.value!r} is a {type(obj).__name__}, not an ssmkit.plugins.Plugin"
    elif obj.name != ep.name:
        info.error = f"plugin names itself {obj.name!r} but its entry point is {ep.name!r}"
    else:
        info.error = _core_incompatibility(obj.requires_ssmkit)
    if info.error is None:
        info.plugin = obj
    return info


def _core_incompatibility(requirement: str) -> str | None:
    try:
        spec = SpecifierSet(requirement)
    except InvalidSpecifier:
        return f"requires_ssmkit {requirement!r} is not a version specifier"
    core = Version(ssmkit.__version__)
    if not spec.contains(core, prereleases=True):
        return f"needs ssmkit{requirement}, but ssmkit {core} is installed"
    return None


class UnknownTaskError(LookupError):
    pass


def find_task(spec: str, infos: list[PluginInfo] | None = None) -> tuple[PluginInfo, str, Task]:
    """Look up "plugin.task"; the error lists what is installed."""
    infos = discover() if infos is None else infos
    plugin_name, _, task_name = spec.partition(".")
    available = [f"{i.name}.{t}" for i in infos if i.ok for t in i.plugin.tasks]
    for info in infos:
        if info.name != plugin_name:
            continue
        if not info.ok:
            raise UnknownTaskError(f"plugin {plugin_name!r} is installed but broken: {info.error}")
        if task_name in info.plugin.tasks:
            return info, task_name, info.plugin.tasks[task_name]
    raise UnknownTaskError(f"unknown task {spec!r}; installed tasks: {', '.join(available) or '(none)'}")
