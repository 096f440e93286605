"""The `ssmkit` command.

    ssmkit plugins [--check]
    ssmkit fit|validate|test|predict PLUGIN.TASK [--quick] [--runs_dir DIR] [LightningCLI args ...]
    ssmkit demo [PLUGIN] [--runs_dir DIR]
    ssmkit bench [--quick] [--out DIR]

`plugins`, `demo` and `bench` are plain argparse verbs; the four training verbs hand everything after the
task to LightningCLI (see `ssmkit.train.cli`). Heavy imports happen only in the verb that needs them.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import import_module
from pathlib import Path

import ssmkit
from ssmkit.parser_cache import ParserCache, closest_keys
from ssmkit.plugins import PluginInfo, UnknownTaskError, discover, find_task, load_object

TRAIN_VERBS = ("fit", "validate", "test", "predict")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in TRAIN_VERBS:
        return _train(argv[0], argv[1:])
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return 2
    return args.handler(args)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ssmkit", description="State-space sequence models and their plugins.")
    p.add_argument("--version", action="version", version=f"ssmkit {ssmkit.__version__}")
    sub = p.add_subparsers(dest="command")
    plugins = sub.add_parser("plugins", help="list installed plugins, their tasks, and broken ones")
    plugins.add_argument("--check", action="store_true", help="import every task and load every shipped config")
    plugins.set_defaults(handler=_plugins)
    for verb in TRAIN_VERBS:
        sub.add_parser(verb, help=f"{verb} PLUGIN.TASK through LightningCLI (see `ssmkit {verb} PLUGIN.TASK -h`)")
    demo = sub.add_parser("demo", help="quick runs on bundled data with a report (default: the synthetic job)")
    demo.add_argument("plugin", nargs="?", default="synthetic")
    demo.add_argument("--runs_dir", default="runs")
    demo.set_defaults(handler=_demo)
    bench = sub.add_parser("bench", help="the benchmark suite: JSON + a markdown table")
    bench.add_argument("--quick", action="store_true", help="small shapes, for a smoke run")
    bench.add_argument("--out", default="runs/bench")
    bench.add_argument("--tasks", action="store_true", help="the synthetic scoreboard (mixer x task) instead")
    bench.add_argument("--mixers", help="scoreboard: comma-separated mixers (default: all in scoreboard.yaml)")
    bench.add_argument("--only", help="scoreboard: comma-separated synthetic tasks (default: all)")
    bench.add_argument("--steps", type=int, help="scoreboard: training steps per cell (default: scoreboard.yaml)")
    bench.set_defaults(handler=_bench)
    return p


def _train(verb: str, rest: list[str]) -> int:
    """A training verb. A user's mistake (bad data, a setting that cannot work, an unknown task) is one message and
    exit code 2; `--debug` (or SSMKIT_DEBUG=1) shows its traceback. Anything else is a bug: traceback, exit 1."""
    if not rest or rest[0].startswith("-"):
        asked = bool(rest) and rest[0] in ("-h", "--help")  # help asked for is an answer (0), not a mistake (2)
        print(
            f"usage: ssmkit {verb} PLUGIN.TASK [--quick] [--runs_dir DIR] [--debug] [LightningCLI args]",
            file=sys.stdout if asked else sys.stderr,
        )
        _print_tasks(discover())
        return 0 if asked else 2
    spec, rest = rest[0], rest[1:]
    quick, debug = "--quick" in rest, "--debug" in rest or os.environ.get("SSMKIT_DEBUG", "") not in ("", "0")
    rest = [a for a in rest if a not in ("--quick", "--debug")]
    runs_dir = "runs"
    if "--runs_dir" in rest:
        i = rest.index("--runs_dir")
        runs_dir = rest[i + 1]
        del rest[i : i + 2]
    answer = _answer_from_cache(verb, spec, rest, quick)
    if answer is not None:
        raise SystemExit(answer)  # as the parser itself answers help and mistakes
    from ssmkit.train.cli import RunError, run_summary, run_task

    try:
        cli = run_task(verb, spec, rest, runs_dir=runs_dir, quick=quick)
    except (UnknownTaskError, RunError, ValueError) as exc:  # ValueError: DataError and bad settings
        if debug:
            raise
        print(f"ssmkit {verb}: {exc}\n(the traceback: add --debug)", file=sys.stderr)
        return 2
    print(f"ssmkit {verb} {spec}: {run_summary(cli)}", file=sys.stderr)
    return 0


def _answer_from_cache(verb: str, spec: str, rest: list[str], quick: bool) -> int | None:
    """`--help` and unknown keys answered from the parser cache, before torch is imported; None: ask the parser."""
    try:
        _, _, task = find_task(spec)
    except UnknownTaskError:
        return None  # the full path says why, in its usual words
    facts = ParserCache.of_task(verb, spec, quick, task).load()
    if facts is None:
        return None
    if rest in (["-h"], ["--help"]):
        print(facts.help, end="")
        return 0
    unknown = facts.unknown_flags(rest)
    if not unknown:
        return None
    lines = [f"error: unrecognized arguments: {' '.join(unknown)}"]
    suggestions = closest_keys(" ".join(unknown), facts.keys)
    if suggestions:
        lines.append(f"did you mean: {', '.join(suggestions)}?")
    lines.append(f"all options: ssmkit {verb} {spec}{' --quick' if quick else ''} --help")
    print("\n".join(lines), file=sys.stderr)
    return 2


def _print_tasks(infos: list[PluginInfo]) -> None:
    for info in infos:
        if info.ok:
            print(f"{info.name} {info.version}  {info.plugin.description}")
            for name, task in info.plugin.tasks.items():
                print(f"  {info.name}.{name:<24} {task.description}")
    broken = [i for i in infos if not i.ok]
    if broken:
        print("broken:")
        for info in broken:
            print(f"  {info.name} ({info.value}): {info.error}")


def _plugins(args: argparse.Namespace) -> int:
    infos = discover()
    _print_tasks(infos)
    if not args.check:
        return 0
    failures = [f"{i.name}: {i.error}" for i in infos if not i.ok]
    for info in infos:
        if info.ok:
            for name, task in info.plugin.tasks.items():
                failures += [f"{info.name}.{name}: {e}" for e in _check_task(task)]
    for failure in failures:
        print(f"FAIL {failure}", file=sys.stderr)
    print(f"checked {sum(len(i.plugin.tasks) for i in infos if i.ok)} tasks: {len(failures)} failure(s)")
    return 1 if failures else 0


def _check_task(task) -> list[str]:
    """Import the task's classes and instantiate model, data and trainer from each shipped config."""
    from ssmkit.train.cli import SsmkitCLI, quiet_lightning

    quiet_lightning()
    try:
        module_cls, datamodule_cls = task.load()
    except Exception as exc:
        return [f"import failed: {type(exc).__name__}: {exc}"]
    errors = []
    for quick in (False, True):
        path = task.config_path(quick)
        try:
            SsmkitCLI(
                module_cls,
                datamodule_cls,
                run=False,
                args=["--config", str(path)],
                trainer_defaults={"logger": False, "enable_checkpointing": False},
                save_config_callback=None,
                seed_everything_default=False,  # nothing is trained: no "Seed set" line per config
            )
        except (Exception, SystemExit) as exc:
            errors.append(f"config {path.name}: {type(exc).__name__}: {exc}")
    return errors


def _demo(args: argparse.Namespace) -> int:
    infos = {i.name: i for i in discover()}
    info = infos.get(args.plugin)
    if info is None or not info.ok or info.plugin.demo is None:
        with_demo = sorted(n for n, i in infos.items() if i.ok and i.plugin.demo)
        reason = "not installed" if info is None else (info.error or "has no demo")
        print(f"ssmkit demo: plugin {args.plugin!r} {reason}; plugins with a demo: {with_demo}", file=sys.stderr)
        return 2
    report = load_object(info.plugin.demo)(Path(args.runs_dir) / "demo")
    print(report)
    return 0


def _bench(args: argparse.Namespace) -> int:
    module = import_module("ssmkit.bench.scoreboard" if args.tasks else "ssmkit.bench.suite")
    if args.tasks:
        split = lambda s: s.split(",") if s else None  # noqa: E731
        return module.main(
            Path(args.out), quick=args.quick, mixers=split(args.mixers), tasks=split(args.only), steps=args.steps
        )
    return module.main(quick=args.quick, out_dir=Path(args.out))


if __name__ == "__main__":
    raise SystemExit(main())
