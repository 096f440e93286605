"""`ssmkit fit|validate|test|predict PLUGIN.TASK [...]`: LightningCLI with the task's classes.

The task's default (or, with `--quick`, quick) config is applied first, the user's `--config` files and
flags over it. Runs land in `<runs_dir>/<plugin>/<task>/version_N/` with the resolved config, metrics.csv,
checkpoints (last + best, written atomically) and plots. `--ckpt_path last` resumes the newest run's last
checkpoint in that same folder, and is an error when there is none (Lightning alone would train from
scratch with a warning).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import sys
import traceback
import warnings
from datetime import timedelta
from importlib import import_module
from pathlib import Path
from typing import Any, NoReturn

import yaml
from jsonargparse import lazy_instance
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from ssmkit.parser_cache import ParserCache, ParserFacts, closest_keys
from ssmkit.plugins import PluginInfo, find_task
from ssmkit.train.callbacks import EpochSummary, FinalCheckpoint, LossCurvePlot, Throughput, progress_bar
from ssmkit.train.checkpoint import AtomicCheckpointIO, CheckpointError, load_checkpoint
from ssmkit.train.logging import ResumableCSVLogger

SUBCOMMANDS = ("fit", "validate", "test", "predict")
LAST_EVERY = timedelta(minutes=1)


class RunError(RuntimeError):
    """A training command that cannot start; the message says why."""


def run_task(
    subcommand: str, spec: str, args: list[str], runs_dir: str | Path = "runs", quick: bool = False
) -> LightningCLI:
    """Run one LightningCLI subcommand for `spec` ("plugin.task") in-process and return the CLI object.

    validate / test / predict from a checkpoint of one of this task's runs write into that run's folder
    (`version_N/<subcommand>/`) and read the data as that run was fitted (its config.yaml's `data` section, under
    the user's flags). A command that fails before it wrote a checkpoint leaves no folder behind."""
    if subcommand not in SUBCOMMANDS:
        raise RunError(f"unknown subcommand {subcommand!r}; expected one of {SUBCOMMANDS}")
    info, task_name, task = find_task(spec)
    module_cls, datamodule_cls = task.load()
    task_dir = Path(runs_dir) / info.name / task_name
    quiet_lightning()
    weights_only, _ = _flag_value(list(args), "--weights_only")
    if weights_only is not None and weights_only.lower() in ("false", "0", "no"):
        raise RunError(
            "--weights_only false is refused: ssmkit loads checkpoints with weights_only=True only, so that a "
            "checkpoint from elsewhere cannot run code; convert it to plain tensors and data first"
        )
    args, ckpt, resume_last = _resolve_ckpt_path(subcommand, list(args), task_dir)
    run_dir = _run_folder(ckpt, task_dir)
    version, fitted, resume_step = None, [], None
    if run_dir is not None and subcommand == "fit" and resume_last:
        version, resume_step = run_dir.name, int(load_checkpoint(ckpt)["global_step"])
    elif run_dir is not None and subcommand != "fit":
        version, fitted = f"{run_dir.name}/{subcommand}", _fitted_data_config(run_dir)
    existing = _folders(task_dir)
    try:
        return SsmkitCLI(
            module_cls,
            datamodule_cls,
            args=[subcommand, *fitted, *args],
            # the task's config as the parser's defaults: `--help` shows what the run would use
            parser_kwargs={
                "allow_abbrev": False,  # a typo is an error, never another setting's abbreviation
                subcommand: {"default_config_files": [str(task.config_path(quick))], "allow_abbrev": False},
            },
            trainer_defaults=_trainer_defaults(
                info, task_name, module_cls, Path(runs_dir), version, quick, resume_step
            ),
            seed_everything_default=0,
            save_config_kwargs={"overwrite": True},
            subclass_mode_model=False,
            subclass_mode_data=False,
            parser_class=SsmkitArgumentParser,
            parser_cache=ParserCache.of_task(subcommand, spec, quick, task),
        )
    except (MisconfigurationException, ValueError) as exc:
        _remove_new_folders(task_dir, existing)
        if not _lightning_configuration_error(exc):
            raise
        raise RunError(f"{spec}: the trainer settings do not fit this run: {exc}") from None
    except BaseException:
        _remove_new_folders(task_dir, existing)
        raise


# What Lightning prints that is not the user's business: advertising, hardware lines that say nothing on a
# CPU machine, echoes of the user's own limits, and warnings about Lightning's own internals.
NOT_FOR_THE_USER = (
    "💡 Tip:",
    "GPU available:",
    "TPU available:",
    "Loading `train_dataloader` to estimate",
    "`Trainer(limit_",
)
SILENCED_WARNINGS = (
    "LightningCLI's args parameter is intended",  # the args are the user's command line, handed over on purpose
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    ".*does not have many workers",
)


class _NotForTheUser(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(NOT_FOR_THE_USER)


def quiet_lightning() -> None:
    """Drop Lightning's tips, empty hardware lines and internal deprecation warnings from a run's output."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        log = logging.getLogger(name)
        if not any(isinstance(f, _NotForTheUser) for f in log.filters):
            log.addFilter(_NotForTheUser())
    for message in SILENCED_WARNINGS:
        warnings.filterwarnings("ignore", message=message)


def run_summary(cli: LightningCLI) -> str:
    """One line saying where a finished command left its outputs: run folder, best checkpoint, plots."""
    trainer = cli.trainer
    log_dir = None if trainer.logger is None else trainer.logger.log_dir
    parts = [f"outputs in {log_dir}"] if log_dir else ["no run folder (logger off)"]
    best = getattr(trainer.checkpoint_callback, "best_model_path", "")
    if cli.subcommand == "fit" and best:
        parts.append(f"best checkpoint {best}")
    if log_dir and (Path(log_dir) / "plots").is_dir():
        parts.append(f"plots in {Path(log_dir) / 'plots'}")
    return "; ".join(parts)


def _run_folder(ckpt: Path | None, task_dir: Path) -> Path | None:
    """The run folder (`<task_dir>/version_N`) holding `ckpt` in its checkpoints/, or None."""
    if ckpt is None or ckpt.parent.name != "checkpoints":
        return None
    run_dir = ckpt.parent.parent
    return run_dir if run_dir.parent.resolve() == task_dir.resolve() else None


def _fitted_data_config(run_dir: Path) -> list[str]:
    """`--config` args giving the data section of the run's resolved config (none if it has no config.yaml)."""
    config = run_dir / "config.yaml"
    if not config.is_file():
        return []
    data = yaml.safe_load(config.read_text()).get("data")
    return ["--config", yaml.safe_dump({"data": data})] if data else []


def _folders(task_dir: Path) -> set[Path]:
    """Every run folder and per-command folder under `task_dir` now."""
    return set(task_dir.glob("version_*")) | set(task_dir.glob("version_*/*/"))


def _remove_new_folders(task_dir: Path, existing: set[Path]) -> None:
    """Delete the folders a failed command made (never one holding a checkpoint)."""
    for folder in sorted(_folders(task_dir) - existing, key=lambda p: len(p.parts), reverse=True):
        if folder.is_dir() and not any(folder.rglob("*.ckpt")):
            shutil.rmtree(folder)


class SsmkitArgumentParser(LightningArgumentParser):
    """A mistake in the flags or a config file is three lines, not the 65-line usage: the error, the closest
    valid keys, and the command that lists them all."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error:  # jsonargparse probing a type: it catches this one
            super().error(message, ex)
        lines = [f"error: {message}"]
        suggestions = closest_keys(message, self.known_keys())
        if suggestions:
            lines.append(f"did you mean: {', '.join(suggestions)}?")
        lines.append("all options: the same command with --help")
        sys.stderr.write("\n".join(lines) + "\n")
        raise SystemExit(2)

    def known_keys(self) -> set[str]:
        """Every settable key: the flags, and the fields of nested settings objects (model.backbone.d_model)."""
        keys = {o.lstrip("-") for action in self._actions for o in action.option_strings if o.startswith("--")}
        try:
            defaults = self.get_defaults().keys()
        except Exception:  # the defaults themselves may be what is wrong
            defaults = []
        nested = (k.replace(".init_args.", ".") for k in defaults if not k.endswith(("class_path", "__")))
        return keys | set(nested)

    def facts(self) -> ParserFacts:
        """Help text and keys for the parser cache. Open keys: the leaves (a dict or a list takes any sub-key) and
        the settings whose class is chosen at run time (those with a `.help` or a class_path), unless the class is a
        dataclass such as BackboneConfig, whose fields are listed."""
        keys = self.known_keys()
        settings = {k for k in keys if not k.endswith((".help", "+"))}
        leaves = {k for k in settings if not any(other.startswith(k + ".") for other in settings)}
        class_paths = {
            key.removesuffix(".class_path").replace(".init_args.", "."): value
            for key, value in self.get_defaults().items()
            if key.endswith(".class_path")
        }
        chosen = {k.removesuffix(".help") for k in keys if k.endswith(".help")} | set(class_paths)
        fixed = {k for k in chosen if _names_a_dataclass(class_paths.get(k))}
        return ParserFacts(self.format_help(), frozenset(keys), frozenset(leaves | chosen - fixed))


def _names_a_dataclass(class_path: object) -> bool:
    if not isinstance(class_path, str) or "." not in class_path:
        return False
    module, _, name = class_path.rpartition(".")
    try:
        return dataclasses.is_dataclass(getattr(import_module(module), name))
    except (ImportError, AttributeError):
        return False


class SsmkitCLI(LightningCLI):
    """LightningCLI whose trainer writes checkpoints atomically and loads them with weights_only=True, and whose
    model takes the values its task declares in `data_links` from the data module (given once, never twice).
    Given a `parser_cache` without a current entry, it stores the command's help and keys there."""

    def __init__(self, *args: Any, parser_cache: ParserCache | None = None, **kwargs: Any) -> None:
        self.parser_cache = parser_cache
        super().__init__(*args, **kwargs)

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        cache = self.parser_cache
        if cache is not None and cache.load() is None:
            cache.store(self._subcommand_parsers[cache.verb].facts())
        self.model_flags = [a.removeprefix("--model.").split("=")[0] for a in args or [] if a.startswith("--model.")]
        super().parse_arguments(parser, args)

    def _parse_ckpt_path(self) -> None:
        """Lightning parses a checkpoint's hyper-parameters over the whole parsed config, which silently undid the
        command line's own `--model.*` flags (predict's `--model.temperature`, say); here those flags win."""
        sub = self.config.get("subcommand")
        given = {key: self.config[f"{sub}.model.{key}"] for key in self.model_flags} if sub else {}
        super()._parse_ckpt_path()
        for key, value in given.items():
            self.config[f"{sub}.model.{key}"] = value

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for source, target in getattr(self.model_class, "data_links", {}).items():
            parser.link_arguments(f"data.{source}", f"model.{target}", apply_on="instantiate")

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        trainer = super().instantiate_trainer(**kwargs)
        trainer.strategy.checkpoint_io = AtomicCheckpointIO()
        return trainer


def _trainer_defaults(
    info: PluginInfo,
    task_name: str,
    module_cls: type,
    runs_dir: Path,
    version: str | None,
    quick: bool,
    resume_step: int | None,
) -> dict[str, Any]:
    """The trainer every run gets unless its config says otherwise. A quick run (a handful of steps) logs every
    step, so its metrics.csv and loss curve have training rows."""
    return {
        "logger": lazy_instance(
            ResumableCSVLogger,
            save_dir=str(runs_dir),
            name=f"{info.name}/{task_name}",
            version=version,
            resume_step=resume_step,
        ),
        "callbacks": [
            ModelCheckpoint(
                monitor=module_cls.monitor,
                mode=module_cls.monitor_mode,
                save_top_k=1,
                save_last=True,
                filename="best-{epoch}-{step}",
                auto_insert_metric_name=False,
                enable_version_counter=False,  # both callbacks write the one last.ckpt (never last-v1.ckpt)
            ),
            # last.ckpt also every LAST_EVERY of training, so a killed run loses at most that much work
            ModelCheckpoint(save_top_k=0, save_last=True, train_time_interval=LAST_EVERY, enable_version_counter=False),
            FinalCheckpoint(),
            progress_bar(),
            Throughput(),
            EpochSummary(),
            LossCurvePlot(title=f"{info.name}.{task_name}"),
        ],
        "gradient_clip_val": 1.0,
        "log_every_n_steps": 1 if quick else 10,
    }


def _resolve_ckpt_path(subcommand: str, args: list[str], task_dir: Path) -> tuple[list[str], Path | None, bool]:
    """Replace `--ckpt_path last` by the newest run's last.ckpt; check the file loads. Returns the args, the
    checkpoint (None without one) and whether it was given as `last`."""
    value, where = _flag_value(args, "--ckpt_path")
    if value is None:
        if subcommand != "fit":
            raise RunError(f"`{subcommand}` needs --ckpt_path (a checkpoint file, or 'last')")
        return args, None, False
    if value == "last":
        candidates = sorted(
            task_dir.glob("version_*/checkpoints/last.ckpt"), key=lambda p: _version_number(p.parents[1])
        )
        if not candidates:
            raise RunError(f"--ckpt_path last: no run with a last.ckpt under {task_dir}; nothing to resume")
        path = candidates[-1]
    else:
        path = Path(value)
    try:
        load_checkpoint(path)
    except CheckpointError as exc:
        raise RunError(str(exc)) from None
    args[where] = f"--ckpt_path={path}"
    return args, path, value == "last"


def _lightning_configuration_error(exc: Exception) -> bool:
    """Whether Lightning itself rejected the settings (e.g. a `val_check_interval` longer than an epoch of this data):
    its misconfiguration error, or a ValueError raised inside the lightning package."""
    if isinstance(exc, MisconfigurationException):
        return True
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and f"{os.sep}lightning{os.sep}" in frames[-1].filename


def _flag_value(args: list[str], flag: str) -> tuple[str | None, int]:
    """Find `flag VALUE` or `flag=VALUE` in args; normalise it to one `flag=VALUE` element at the index."""
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            value = args.pop(i + 1)
            args[i] = f"{flag}={value}"
            return value, i
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1], i
    return None, -1


def _version_number(run_dir: Path) -> int:
    match = re.fullmatch(r"version_(\d+)", run_dir.name)
    return int(match.group(1)) if match else -1
