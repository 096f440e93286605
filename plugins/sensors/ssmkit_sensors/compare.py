"""Rerun the README's comparisons: each model trained the same way through `ssmkit fit` (the task's default
config, the named overlay, the flags below), then tested with its best-validation checkpoint.

    python -m ssmkit_sensors.compare simulator                          HiSS vs flat models, simulated sensor
    python -m ssmkit_sensors.compare etth1 --root .../ETTh1.csv [--horizons 96 192 336 720]
    python -m ssmkit_sensors.compare air_quality --root .../AirQualityUCI_2004.csv
    python -m ssmkit_sensors.compare activity --root .../sp_sw_har     (or .../basicmotions)

Common flags: --models (a subset of the experiment's), --epochs, --seeds (each model trained once per seed;
the table gives mean +- standard deviation over seeds), --overrides (more `ssmkit fit` flags for every run,
one quoted string, e.g. "--model.low.mixer s4d"), --out (runs and results; default runs/compare).
--select FLAG VALUE ... picks one setting per model on validation, the same way for every model: each value is
trained on the first --select_seeds seeds, the value with the best mean best-validation score wins (the task's
monitor: lowest MSE, highest accuracy), and the remaining seeds run at it; the table gives the chosen value and
the runs at it. FLAG may name several settings joined by commas that take the same value, e.g. both of HiSS's
levels' dropout: `--select model.backbone.dropout,model.low.dropout 0 0.1 0.3 0.5 --seeds 0 1 2 3 4 5 6 7 8 9`.
Each finished run is appended to `<out>/<experiment>.jsonl`; the markdown table is printed and written to
`<out>/<experiment>.md`.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from ssmkit.plugins import find_task
from ssmkit.train.cli import run_task
from ssmkit.train.plots import markdown_table

# model name -> command-line flags, per task
ENCODERS = {
    "hiss": ["--model.encoder", "hiss"],
    "flat_mamba": ["--model.encoder", "flat", "--model.backbone.mixer", "mamba"],
    "flat_s4d": ["--model.encoder", "flat", "--model.backbone.mixer", "s4d"],
    "transformer": ["--model.encoder", "flat", "--model.backbone.mixer", "attention"],
    "lstm": ["--model.encoder", "lstm"],
}
FORECASTERS = {"ssm": ["--model.model", "ssm"], "dlinear": ["--model.model", "dlinear", "--model.lr", "0.005"]}
EXPERIMENTS = {
    # name: (task, overlay config or None, models, metrics)
    "simulator": ("seq2seq", None, ENCODERS, ("test/mse", "test/mae", "test/nmse")),
    "air_quality": ("seq2seq", "air_quality.yaml", ENCODERS, ("test/mse", "test/mae", "test/nmse")),
    "etth1": ("forecast", None, FORECASTERS, ("test/mse", "test/mae")),
    "activity": ("classify", None, {k: ENCODERS[k] for k in ("hiss", "flat_mamba", "lstm")}, ("test/acc",)),
}


def fit_and_test(spec: str, args: list[str], runs_dir: Path) -> dict[str, float]:
    """Train with `ssmkit fit` settings, test the best-validation checkpoint: test metrics, seconds, params."""
    start = time.perf_counter()
    cli = run_task("fit", spec, args, runs_dir=runs_dir)
    best_val = float(cli.trainer.checkpoint_callback.best_model_score)
    results = cli.trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path="best", verbose=False)[0]
    out = {k: float(v) for k, v in results.items()}
    out["val_best"] = best_val  # the monitored validation metric of the tested checkpoint
    out["val_mode"] = cli.model.monitor_mode
    out["seconds"] = time.perf_counter() - start
    out["params"] = sum(p.numel() for p in cli.model.parameters())
    out["run"] = cli.trainer.logger.log_dir
    return out


def train_seeds(
    task: str, base: list[str], out: Path, experiment: str, flags: list[str], seeds: list[int], **tags: str
) -> list[dict]:
    """One run per seed with `base + flags`; each run's results (with `tags`, e.g. the model's name) appended to
    `<out>/<experiment>.jsonl` as it finishes."""
    results = []
    for seed in seeds:
        run_flags = [*base, *flags, "--seed_everything", str(seed)]
        results.append({**tags, "seed": seed, **fit_and_test(f"sensors.{task}", run_flags, out / experiment)})
        with open(out / f"{experiment}.jsonl", "a") as f:
            f.write(json.dumps(results[-1]) + "\n")
    return results


def select_on_validation(
    train: Callable[..., list[dict]], flag: str, values: list[str], seeds: list[int], n_select: int
) -> list[dict]:
    """Train `--flag value` for every value on seeds[:n_select]; the value with the best mean best-validation
    score also runs the remaining seeds. Returns the chosen value's runs (each tagged `selected`). `flag` may
    be several flags joined by commas, all set to the value."""
    flags = [f.lstrip("-") for f in flag.split(",")]

    def run(value: str, run_seeds: list[int]) -> list[dict]:
        args = [arg for f in flags for arg in (f"--{f}", value)]
        return train(args, run_seeds, selected=f"{','.join(flags)}={value}")

    tried = {v: run(v, seeds[:n_select]) for v in values}
    sign = -1 if tried[values[0]][0]["val_mode"] == "max" else 1
    best = min(values, key=lambda v: sign * statistics.fmean(r["val_best"] for r in tried[v]))
    return tried[best] + run(best, seeds[n_select:])


def overlay_args(task: str, overlay: str | None, root: str | None) -> list[str]:
    args = []
    if overlay is not None:
        args += ["--config", str(find_task(f"sensors.{task}")[2].config_path().with_name(overlay))]
    if root is not None:
        args += ["--data.root", root]
    return args


def activity_args(root: str | None) -> list[str]:
    """The activity overlay that fits the folder: sp-sw-har subject folders or UEA BasicMotions."""
    if root is None:
        return []
    name = "basicmotions.yaml" if any(Path(root).glob("*_TRAIN.ts")) else "sp_sw_har.yaml"
    return overlay_args("classify", name, root)


def rows(experiment: str, root: str | None, models: list[str], horizons: list[int]) -> list[tuple[str, list[str]]]:
    """(row label, flags) for every run of the experiment."""
    task, overlay, table, _ = EXPERIMENTS[experiment]
    base = activity_args(root) if experiment == "activity" else overlay_args(task, overlay, root)
    if experiment != "etth1":
        return [(m, [*base, *table[m]]) for m in models]
    return [(f"{m} H={h}", [*base, *table[m], "--data.horizon", str(h)]) for h in horizons for m in models]


def summary(label: str, runs: list[dict], metrics: tuple[str, ...]) -> dict:
    """One row from a model's runs (one per seed): each metric's mean and standard deviation, mean seconds."""
    row = {"model": label, "seeds": [r["seed"] for r in runs], "params": runs[0]["params"]}
    if "selected" in runs[0]:
        row["model"] = f"{label} ({runs[0]['selected']})"
    for key in (*metrics, "val_best", "seconds"):
        values = [r[key] for r in runs]
        row[key], row[f"{key}_std"] = statistics.fmean(values), statistics.pstdev(values)
    return row


def markdown(rows: list[dict], metrics: tuple[str, ...]) -> str:
    """The table: mean (+- standard deviation over seeds, when more than one) of each metric."""
    shown = (*metrics, "val_best")
    header = ["model", *metrics, "best validation", "parameters", "train + test seconds"]
    spread = len(rows[0]["seeds"]) > 1
    cells = [
        [
            r["model"],
            *(f"{r[m]:.4f}" + (f" ± {r[m + '_std']:.4f}" if spread else "") for m in shown),
            f"{r['params']:,}",
            f"{r['seconds']:.0f}",
        ]
        for r in rows
    ]
    note = f"\n\nMean ± standard deviation over seeds {rows[0]['seeds']}." if spread else ""
    return markdown_table(header, cells) + note


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", choices=sorted(EXPERIMENTS))
    parser.add_argument("--root", help="the data file / folder (default: the task's bundled simulator)")
    parser.add_argument("--models", nargs="+", help="a subset of the experiment's models")
    parser.add_argument("--horizons", nargs="+", type=int, default=[96, 192, 336, 720])
    parser.add_argument("--epochs", type=int, help="trainer.max_epochs for every run (default: the config's)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="one run per seed and model")
    parser.add_argument("--overrides", default="", help="more ssmkit fit flags for every run, one quoted string")
    parser.add_argument("--out", default="runs/compare")
    parser.add_argument("--select", nargs="+", metavar="FLAG VALUE", help="a setting to pick per model on validation")
    parser.add_argument("--select_seeds", type=int, default=3, help="how many of --seeds pick the --select value")
    opts = parser.parse_args(argv)
    task, _, table, metrics = EXPERIMENTS[opts.experiment]
    models = opts.models or list(table)
    unknown = sorted(set(models) - set(table))
    if unknown:
        parser.error(f"unknown model(s) {unknown} for {opts.experiment}; choose from {list(table)}")
    if opts.select and (len(opts.select) < 3 or not 0 < opts.select_seeds <= len(opts.seeds)):
        parser.error("--select needs a flag and at least two values, and --select_seeds between 1 and len(--seeds)")
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    extra = ["--trainer.max_epochs", str(opts.epochs)] if opts.epochs else []
    extra += shlex.split(opts.overrides)
    results = []
    for label, args in rows(opts.experiment, opts.root, models, opts.horizons):
        train = partial(train_seeds, task, [*args, *extra], out, opts.experiment, model=label)
        if opts.select:
            runs = select_on_validation(train, opts.select[0], opts.select[1:], opts.seeds, opts.select_seeds)
        else:
            runs = train([], opts.seeds)
        results.append(summary(label, runs, metrics))
    table_md = markdown(results, metrics)
    (out / f"{opts.experiment}.md").write_text(table_md + "\n")
    print(table_md)


if __name__ == "__main__":
    main()
