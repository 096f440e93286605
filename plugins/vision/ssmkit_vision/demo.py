"""`ssmkit demo vision`: Vim, Hydra and the matched ViT trained on scikit-learn's digits with one budget, then a
table (parameters, validation top-1, fit time) and a plot of validation top-1 per epoch.

Each model is an ordinary `ssmkit fit vision.classify` run (checkpoints, metrics.csv, confusion matrix, mistakes)
under `<out_dir>/vision/classify/`; the table and plot are `<out_dir>/vision_digits.{md,png}`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from ssmkit.plugins import resource_path
from ssmkit.train.cli import run_task
from ssmkit.train.logging import read_metrics
from ssmkit.train.plots import markdown_table
from ssmkit_vision.plots import plot_runs

DEMO_CONFIG = "ssmkit_vision:configs/demo.yaml"


def run_demo(out_dir: Path, config: str | Path = DEMO_CONFIG) -> str:
    """Fit every model of the demo config on digits; write `<out_dir>/vision_digits.{md,png}`; return the table."""
    out_dir = Path(out_dir)
    spec = yaml.safe_load((resource_path(config) if isinstance(config, str) else Path(config)).read_text())
    overrides = out_dir / "configs" / "vision_demo.yaml"
    overrides.parent.mkdir(parents=True, exist_ok=True)
    overrides.write_text(yaml.safe_dump(spec["overrides"], sort_keys=False))
    results = [_fit(label, name, spec["task"], overrides, out_dir) for label, name in spec["models"].items()]
    table = _table(results)
    (out_dir / "vision_digits.md").write_text(table + "\n")
    plot_runs(results, out_dir / "vision_digits.png", "Digits: one budget per model")
    return f"{table}\n\nplot: {out_dir / 'vision_digits.png'}\nruns: {out_dir / 'vision' / 'classify'}"


def _fit(label: str, model_name: str, task: str, overrides: Path, out_dir: Path) -> dict[str, Any]:
    """One `ssmkit fit` run of `model_name`; its size, final validation top-1, per-epoch curve and wall time."""
    print(f"\n=== demo: training {label} ({model_name}) ===", flush=True)
    start = time.perf_counter()
    cli = run_task("fit", task, ["--config", str(overrides), "--model.model_name", model_name], runs_dir=out_dir)
    seconds = time.perf_counter() - start
    curve = read_metrics(Path(cli.trainer.logger.log_dir) / "metrics.csv").get("val/acc", [])
    return {
        "label": label,
        "model": model_name,
        "params": sum(p.numel() for p in cli.model.parameters()),
        "top1": curve[-1][1] if curve else float("nan"),
        "curve": curve,
        "seconds": seconds,
        "epochs": cli.trainer.current_epoch,
    }


def _table(results: list[dict[str, Any]]) -> str:
    header = ("model", "timm name", "parameters", "val top-1", "fit time (s)")
    rows = [
        (r["label"], f"`{r['model']}`", f"{r['params']:,}", f"{r['top1']:.3f}", f"{r['seconds']:.0f}") for r in results
    ]
    epochs = f"Digits (scikit-learn, 16 px, patch 4): {results[0]['epochs']} epochs of the same data for every model."
    return f"{epochs}\n\n{markdown_table(header, rows)}"
