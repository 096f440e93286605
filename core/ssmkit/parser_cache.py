"""What a task command's parser knows, kept on disk, so that `ssmkit fit TASK --help` and a mistyped key answer
before torch and Lightning are imported (building the parser needs both: about 5 s on a laptop CPU).

Every training command builds its parser once anyway; when no entry matches, it stores the help text and the
settable keys under `$SSMKIT_CACHE_DIR` (default `~/.cache/ssmkit/parsers`), keyed by the command, the terminal's
width and a fingerprint of what the parser is built from: the files of ssmkit and of the task's plugin (path, size,
mtime) and the versions of lightning and jsonargparse. Any change to those makes a new entry. A missing, stale or
unwritable cache only means the slower answer; the cache never decides that a command is valid, only that a key
certainly is not.

This module imports nothing heavy.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from importlib import metadata, util
from pathlib import Path

from ssmkit.plugins import Task

PARSER_BUILT_FROM = ("lightning", "jsonargparse")


@dataclass(frozen=True)
class ParserFacts:
    """The help text of one command and its keys: `keys` every settable dotted key, `open_keys` those whose
    sub-keys the parser does not list (dicts, lists, classes chosen at run time): anything below them may be valid."""

    help: str
    keys: frozenset[str]
    open_keys: frozenset[str]

    def unknown_flags(self, args: Iterable[str]) -> list[str]:
        """The `--key` flags in `args` that name no setting, e.g. `--model.backbone.d_modl`."""
        unknown = []
        for arg in args:
            if not arg.startswith("--"):
                continue
            key = arg[2:].split("=", 1)[0].rstrip("+").replace(".init_args.", ".")
            parts = key.split(".")
            if key in self.keys or any(".".join(parts[:i]) in self.open_keys for i in range(1, len(parts))):
                continue
            unknown.append(arg.split("=", 1)[0])
        return unknown


@dataclass(frozen=True)
class ParserCache:
    """The cache entry of one command: `verb` (fit, test, ...) of task `spec` with its default or quick config."""

    verb: str
    spec: str
    quick: bool
    packages: tuple[str, ...]  # the importable packages the task's classes come from

    @classmethod
    def of_task(cls, verb: str, spec: str, quick: bool, task: Task) -> ParserCache:
        packages = {"ssmkit", task.module.partition(".")[0], task.datamodule.partition(".")[0]}
        return cls(verb, spec, quick, tuple(sorted(packages)))

    def load(self) -> ParserFacts | None:
        try:
            entry = json.loads(self.path.read_text())
            return ParserFacts(entry["help"], frozenset(entry["keys"]), frozenset(entry["open_keys"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def store(self, facts: ParserFacts) -> None:
        path = self.path
        entry = {"help": facts.help, "keys": sorted(facts.keys), "open_keys": sorted(facts.open_keys)}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.{os.getpid()}")
            partial.write_text(json.dumps(entry))
            partial.replace(path)  # atomic: a reader sees the whole entry or none
        except OSError:
            pass

    @cached_property
    def path(self) -> Path:
        """The entry's file (the fingerprint walks the packages' files once per command)."""
        root = os.environ.get("SSMKIT_CACHE_DIR") or Path.home() / ".cache" / "ssmkit"
        width = shutil.get_terminal_size().columns  # help is wrapped to the terminal
        name = f"{self.verb}-{self.spec}{'-quick' if self.quick else ''}-{width}-{fingerprint(self.packages)}.json"
        return Path(root) / "parsers" / name


def fingerprint(packages: Iterable[str]) -> str:
    """A digest of the packages' files (path, size, mtime) and of the versions of the parser's own libraries."""
    digest = hashlib.sha256()
    for name in PARSER_BUILT_FROM:
        digest.update(f"{name}={_version(name)};".encode())
    for package in sorted(set(packages)):
        spec = util.find_spec(package)  # finds a top-level package without importing it
        for root in (spec.submodule_search_locations or []) if spec else []:
            for folder, dirs, files in sorted(os.walk(root)):
                dirs[:] = sorted(d for d in dirs if d != "__pycache__")
                for file in sorted(files):
                    stat = os.stat(os.path.join(folder, file))
                    digest.update(f"{folder}/{file}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:16]


def closest_keys(message: str, keys: Iterable[str]) -> list[str]:
    """The valid keys nearest to the unknown ones that `message` names (`--model.d_modle`, option 'd_model'),
    compared by their last part: `--model.d_model` finds `--model.backbone.d_model`."""
    keys = set(keys)
    by_last: dict[str, list[str]] = {}
    for key in sorted(k for k in keys if "." in k):  # settings, not whole sections
        by_last.setdefault(key.rsplit(".", 1)[-1], []).append(key)
    found = []
    for groups in re.findall(r"--([\w.]+)|option '([\w.]+)'|key='([\w.]+)'", message):
        bad = next(g for g in groups if g)
        if bad in keys:
            continue
        for last in difflib.get_close_matches(bad.rsplit(".", 1)[-1], list(by_last), n=2, cutoff=0.75):
            found += by_last[last][:3]
    return [f"--{k}" for k in dict.fromkeys(found)]


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"
