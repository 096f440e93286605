"""The plugin contract: what every installed plugin, and each of its tasks, must do.

`check_plugin(info)` checks a discovered plugin's metadata. `PluginContract` runs one task's quick config
through the training commands in-process, as `ssmkit` would:

    fit -> validate --ckpt_path last -> test --ckpt_path last -> predict --ckpt_path last
        -> fit --ckpt_path last --trainer.max_epochs <one more epoch>

then each test method checks one thing the runs wrote under `runs/<plugin>/<task>/version_N/`. Subclass it
with a class-scoped `task_id` fixture (a plugin's own suite: one task id; the core suite: every id of
`task_ids()`), and list what is known to fail in `known_failures` as `{(task_id, check): reason}`, where
`check` is the test name without `test_`: such a test is a strict xfail that must raise `ContractError`.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import re
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, entry_points, version
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

import ssmkit
from ssmkit.plugins import GROUP, PluginInfo, discover, find_task

NAME = re.compile(r"[a-z][a-z0-9_]*")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A quick config is for the test suite: seconds per stage. The first fit of a process also pays for
# imports and JIT compilation, hence the margin over the 20 s a stage should take.
STAGE_BUDGET_S = 60.0


class ContractError(AssertionError):
    """A plugin or task breaks the contract; the message names the file or stage and what is wrong."""


def task_ids(infos: list[PluginInfo] | None = None) -> list[str]:
    """Every "plugin.task" of the working installed plugins, sorted."""
    infos = discover() if infos is None else infos
    return sorted(f"{info.name}.{task}" for info in infos if info.ok for task in info.plugin.tasks)


# ---- plugin metadata -------------------------------------------------------------------------------------


def check_plugin(info: PluginInfo) -> None:
    """A discovered plugin loads, and its name, description, version and requires_ssmkit are sane: the
    version is the installed distribution's, requires_ssmkit admits this ssmkit and is the range the
    distribution's own dependency on ssmkit states (so pip enforces it), and every task is described."""
    if not info.ok:
        raise ContractError(f"plugin {info.name!r} ({info.value}) is broken: {info.error}")
    plugin = info.plugin
    _check_name("plugin", plugin.name)
    _check_line(f"{plugin.name}: description", plugin.description)
    dist = _distribution(info.name)
    _check_version(info, dist)
    _check_requirement(plugin.name, plugin.requires_ssmkit, dist)
    if not plugin.tasks:
        raise ContractError(f"{plugin.name}: declares no tasks")
    for name, task in plugin.tasks.items():
        _check_name(f"{plugin.name}: task", name)
        _check_line(f"{plugin.name}.{name}: description", task.description)


def _check_name(what: str, name: str) -> None:
    if not NAME.fullmatch(name):
        raise ContractError(f"{what} name {name!r} is not lower-case letters, digits and '_' (as {NAME.pattern})")


def _check_line(what: str, text: str) -> None:
    if not isinstance(text, str) or not text.strip() or "\n" in text or text != text.strip():
        raise ContractError(f"{what} must be one non-empty line without surrounding spaces, got {text!r}")


def _distribution(name: str) -> Any:
    """The installed distribution that declares the `name` entry point of the plugin group."""
    found = [ep.dist for ep in entry_points(group=GROUP, name=name) if ep.dist is not None]
    if len(found) != 1:
        raise ContractError(f"{name}: expected one distribution declaring the entry point, found {len(found)}")
    return found[0]


def _check_version(info: PluginInfo, dist: Any) -> None:
    try:
        Version(info.version)
    except InvalidVersion:
        raise ContractError(f"{info.name}: version {info.version!r} is not a PEP 440 version") from None
    try:
        installed = version(dist.name)
    except PackageNotFoundError:
        raise ContractError(f"{info.name}: distribution {dist.name!r} is not installed") from None
    if info.version != installed:
        raise ContractError(f"{info.name}: reports version {info.version}, its distribution {installed}")


def _check_requirement(name: str, requirement: str, dist: Any) -> None:
    try:
        spec = SpecifierSet(requirement)
    except InvalidSpecifier:
        raise ContractError(f"{name}: requires_ssmkit {requirement!r} is not a version specifier") from None
    if not str(spec):
        raise ContractError(f"{name}: requires_ssmkit is empty; state the core versions the plugin works with")
    if not spec.contains(Version(ssmkit.__version__), prereleases=True):
        raise ContractError(f"{name}: requires_ssmkit {requirement} excludes the installed ssmkit {ssmkit.__version__}")
    if dist.name == "ssmkit":  # the core distribution's own plugin
        return
    stated = [Requirement(r) for r in dist.requires or []]
    stated = [r for r in stated if r.name == "ssmkit" and r.marker is None]
    if [r.specifier for r in stated] != [spec]:
        shown = [str(r) for r in stated] or "nothing"
        raise ContractError(
            f"{name}: requires_ssmkit {requirement!r}, but distribution {dist.name} depends on {shown}; "
            "state the same range in its dependencies so pip checks it"
        )


def check_task_loads(task_id: str) -> None:
    """`ssmkit plugins --check` for one task: its classes import, and model, data and trainer instantiate
    from its default config and from its quick config."""
    from ssmkit.cli import _check_task

    with warnings.catch_warnings():  # the args are handed over on purpose, as in ssmkit.train.cli
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
        errors = _check_task(find_task(task_id)[2])
    if errors:
        raise ContractError(f"{task_id}: " + "; ".join(errors))


def undocumented_settings(task_id: str) -> list[str]:
    """The model and data settings that `ssmkit fit TASK --help` shows without a description (a Google-style
    `Args:` entry in the class's `__init__` docstring, or `Attributes:` for a dataclass, gives one)."""
    from ssmkit.train.cli import run_task

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        run_task("fit", task_id, ["--help"])
    entries = re.findall(r"^  (--(?:model|data)\.\S+)(.*\n(?: {20,}.*\n)*)", out.getvalue(), re.M)
    bare = []
    for option, text in entries:
        words = " ".join(text.split())
        described = re.sub(r"^([A-Z_]+|\{\S*\}|\[ITEM,\.\.\.\]) ?", "", words)  # drop the metavar
        if not option.endswith(".help") and described.startswith("(type:"):
            bare.append(option)
    return bare


def check_help(task_id: str) -> None:
    """`ssmkit fit TASK --help` describes every model and data setting."""
    bare = undocumented_settings(task_id)
    if bare:
        raise ContractError(f"{task_id}: --help shows no description for {' '.join(bare)} (an Args: entry)")


# ---- running a task's quick config through the commands --------------------------------------------------


@dataclass
class Stage:
    """One command of the sequence: the LightningCLI object, or the exception it ended in."""

    name: str
    seconds: float
    cli: Any = None
    error: BaseException | None = None


@dataclass
class TaskRun:
    """The stages of one task run in `runs_dir`, and the fit's state before it was resumed."""

    task_id: str
    runs_dir: Path
    stages: dict[str, Stage] = field(default_factory=dict)
    fit_dir: Path | None = None
    fit_epochs: int = 0
    fit_global_step: int = 0

    def stage(self, name: str) -> Any:
        """The stage's CLI object; a ContractError with the stage's exception if it failed."""
        stage = self.stages[name]
        if stage.error is not None:
            raise ContractError(f"{self.task_id}: `{name}` failed: {type(stage.error).__name__}: {stage.error}")
        return stage.cli

    @property
    def run_dir(self) -> Path:
        """The fit's folder, `runs/<plugin>/<task>/version_N`."""
        self.stage("fit")
        if self.fit_dir is None:
            raise ContractError(f"{self.task_id}: `fit` ran without a logger, so it wrote no run folder")
        return self.fit_dir


def run_stages(task_id: str, runs_dir: Path) -> TaskRun:
    """Run fit, validate, test, predict and the resumed fit of `task_id` on its quick config; never raises
    for a failing stage (its exception is kept in the stage), so each check reports on its own."""
    run = TaskRun(task_id, runs_dir)
    last = ["--ckpt_path", "last"]
    _run_stage(run, "fit", "fit", [])
    for subcommand in ("validate", "test", "predict"):
        _run_stage(run, subcommand, subcommand, last)
    _run_stage(run, "resume", "fit", [*last, "--trainer.max_epochs", str(run.fit_epochs + 1)])
    return run


def _run_stage(run: TaskRun, name: str, subcommand: str, args: list[str]) -> None:
    from ssmkit.train.cli import run_task

    start = time.perf_counter()
    try:
        cli = run_task(subcommand, run.task_id, args, runs_dir=run.runs_dir, quick=True)
    except (Exception, SystemExit) as exc:  # LightningCLI exits on a bad config
        run.stages[name] = Stage(name, time.perf_counter() - start, error=exc)
        return
    run.stages[name] = Stage(name, time.perf_counter() - start, cli=cli)
    if name == "fit":
        log_dir = cli.trainer.logger.log_dir if cli.trainer.logger is not None else None
        run.fit_dir = Path(log_dir) if log_dir is not None else None
        run.fit_epochs, run.fit_global_step = cli.trainer.current_epoch, cli.trainer.global_step


# ---- what the runs wrote ---------------------------------------------------------------------------------


def metric_rows(path: Path) -> list[dict[str, str]]:
    """metrics.csv as rows (CSVLogger writes one sparse row per logging call); ContractError if missing."""
    if not path.is_file():
        raise ContractError(f"no metrics file {path}")
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def loss_epochs(rows: list[dict[str, str]], prefix: str) -> set[int]:
    """Epochs with a finite value in a `<prefix>/...loss...` column (`train/loss`, `train/loss_epoch`, ...)."""
    epochs = set()
    for row in rows:
        for key, value in row.items():
            if key.startswith(f"{prefix}/") and "loss" in key and value and math.isfinite(float(value)):
                epochs.add(int(float(row["epoch"])))
    return epochs


def check_config(run: TaskRun) -> None:
    """`config.yaml`: the resolved config, a YAML mapping with model, data and trainer sections and the seed."""
    path = run.run_dir / "config.yaml"
    if not path.is_file():
        raise ContractError(f"{run.task_id}: no resolved config {path}")
    config = yaml.safe_load(path.read_text())
    if not isinstance(config, dict):
        raise ContractError(f"{path} holds a {type(config).__name__}, not a mapping")
    missing = [key for key in ("model", "data", "trainer") if key not in config]
    if missing:
        raise ContractError(f"{path} lacks {missing}")
    seed = config.get("seed_everything")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ContractError(f"{path}: seed_everything is {seed!r}; the seed must be logged as an integer")


def check_checkpoints(run: TaskRun) -> None:
    """`checkpoints/last.ckpt` and one `best-*.ckpt` load with weights_only=True and hold the same weights."""
    from ssmkit.train.checkpoint import CheckpointError, load_checkpoint

    folder = run.run_dir / "checkpoints"
    best = sorted(folder.glob("best-*.ckpt"))
    if not best:
        raise ContractError(f"{run.task_id}: no best-*.ckpt in {folder}")
    try:
        last_keys, best_keys = (set(load_checkpoint(p)["state_dict"]) for p in (folder / "last.ckpt", best[-1]))
    except CheckpointError as exc:
        raise ContractError(f"{run.task_id}: {exc}") from None
    if not last_keys or last_keys != best_keys:
        raise ContractError(f"{run.task_id}: last.ckpt and {best[-1].name} hold different (or no) weights")


def check_metrics(run: TaskRun) -> None:
    """`metrics.csv` has rows with a finite train loss and rows with a finite validation loss."""
    path = run.run_dir / "metrics.csv"
    rows = metric_rows(path)
    for prefix in ("train", "val"):
        if not loss_epochs(rows, prefix):
            header = sorted(rows[0]) if rows else []
            raise ContractError(f"{path}: no row with a finite {prefix}/ loss value (columns: {header})")


def check_plots(run: TaskRun) -> None:
    """`plots/` holds PNG files, the loss curves `loss.png` among them."""
    folder = run.run_dir / "plots"
    pngs = sorted(folder.glob("*.png"))
    if folder / "loss.png" not in pngs:
        raise ContractError(f"{run.task_id}: no loss.png in {folder} (found {[p.name for p in pngs]})")
    for png in pngs:
        if not png.read_bytes().startswith(PNG_SIGNATURE):
            raise ContractError(f"{png} is not a PNG file")


def check_evaluated(run: TaskRun, stage: str, prefix: str) -> None:
    """`validate` / `test` from `--ckpt_path last` loaded the fit's last checkpoint and logged a finite
    `<prefix>/...` metric."""
    trainer = _from_last(run, stage)
    values = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(f"{prefix}/")}
    if not any(math.isfinite(v) for v in values.values()):
        raise ContractError(f"{run.task_id}: `{stage}` logged no finite {prefix}/ metric (got {values})")


def check_predicted(run: TaskRun) -> None:
    """`predict --ckpt_path last` (no other flag) loaded the fit's last checkpoint and predicted a batch."""
    trainer = _from_last(run, "predict")
    if sum(trainer.num_predict_batches) == 0:
        raise ContractError(f"{run.task_id}: `predict` ran over no batch")


def _from_last(run: TaskRun, stage: str) -> Any:
    trainer = run.stage(stage).trainer
    expected = run.run_dir / "checkpoints" / "last.ckpt"
    if trainer.ckpt_path is None or Path(trainer.ckpt_path) != expected:
        raise ContractError(f"{run.task_id}: `{stage} --ckpt_path last` loaded {trainer.ckpt_path}, not {expected}")
    return trainer


def check_resumed(run: TaskRun) -> None:
    """`fit --ckpt_path last` with one more epoch continued the same version folder from its last checkpoint:
    a larger global step in last.ckpt, the earlier epochs' metrics kept, no checkpoints in another folder."""
    from ssmkit.train.checkpoint import load_checkpoint

    trainer = _from_last(run, "resume")
    run_dir = run.run_dir
    log_dir = trainer.logger.log_dir if trainer.logger is not None else None
    if log_dir is None or Path(log_dir) != run_dir:
        raise ContractError(f"{run.task_id}: the resumed fit wrote to {log_dir}, not {run_dir}")
    step = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["global_step"]
    if step <= run.fit_global_step:
        raise ContractError(f"{run.task_id}: last.ckpt global_step {step} after resuming, {run.fit_global_step} before")
    epochs = loss_epochs(metric_rows(run_dir / "metrics.csv"), "val")
    if not set(range(run.fit_epochs + 1)) <= epochs:
        raise ContractError(f"{run.task_id}: val loss of epochs {sorted(epochs)}, expected 0..{run.fit_epochs}")
    others = [p for p in run_dir.parent.glob("version_*/checkpoints") if p.parent != run_dir]
    if others:
        raise ContractError(f"{run.task_id}: the resumed fit left checkpoints in another run folder: {others}")


def check_quick(run: TaskRun) -> None:
    """Every stage of the quick config took under STAGE_BUDGET_S seconds."""
    slow = {name: round(stage.seconds, 1) for name, stage in run.stages.items() if stage.seconds > STAGE_BUDGET_S}
    if slow:
        raise ContractError(f"{run.task_id}: quick-config stages over {STAGE_BUDGET_S:.0f} s: {slow}")


# ---- the pytest contract ---------------------------------------------------------------------------------


class PluginContract:
    """The contract's tests for the task named by a class-scoped `task_id` fixture the subclass provides."""

    known_failures: ClassVar[Mapping[tuple[str, str], str]] = {}

    @pytest.fixture(scope="class")
    @classmethod
    def task_run(cls, task_id: str, tmp_path_factory: pytest.TempPathFactory) -> TaskRun:
        return run_stages(task_id, tmp_path_factory.mktemp("runs"))

    @pytest.fixture(autouse=True)
    def _known_failure(self, request: pytest.FixtureRequest, task_id: str) -> None:
        check = request.node.originalname.removeprefix("test_")
        reason = self.known_failures.get((task_id, check))
        if reason is not None:
            request.applymarker(pytest.mark.xfail(reason=reason, raises=ContractError, strict=True))

    def test_loads(self, task_id: str) -> None:
        check_task_loads(task_id)

    def test_help(self, task_id: str) -> None:
        check_help(task_id)

    def test_config(self, task_run: TaskRun) -> None:
        check_config(task_run)

    def test_checkpoints(self, task_run: TaskRun) -> None:
        check_checkpoints(task_run)

    def test_metrics(self, task_run: TaskRun) -> None:
        check_metrics(task_run)

    def test_plots(self, task_run: TaskRun) -> None:
        check_plots(task_run)

    def test_validate(self, task_run: TaskRun) -> None:
        check_evaluated(task_run, "validate", "val")

    def test_test(self, task_run: TaskRun) -> None:
        check_evaluated(task_run, "test", "test")

    def test_predict(self, task_run: TaskRun) -> None:
        check_predicted(task_run)

    def test_resume(self, task_run: TaskRun) -> None:
        check_resumed(task_run)

    def test_quick(self, task_run: TaskRun) -> None:
        check_quick(task_run)
