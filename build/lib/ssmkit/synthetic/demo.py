"""`ssmkit demo` (the main job): Mamba, S4D and attention of about the same size trained on selective copying
with the same budget (steps, data, optimiser), then a table and a plot.

The point reproduced is the Mamba paper's (section 3.1 / table 1): a selective, input-dependent SSM solves
selective copying, while a time-invariant SSM (S4D) has to learn one convolution kernel per possible gap
and does markedly worse at the same budget. Each model is an ordinary `ssmkit fit` run (checkpoints,
metrics.csv, loss plot) under `<out_dir>/synthetic/selective_copy/`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ssmkit.plugins import resource_path
from ssmkit.train.callbacks import Throughput
from ssmkit.train.cli import run_task
from ssmkit.train.logging import read_metrics
from ssmkit.train.plots import markdown_table, save_figure

DEMO_CONFIG = "ssmkit.synthetic:configs/demo_selective_copy.yaml"


def run_demo(out_dir: Path, config: str | Path = DEMO_CONFIG) -> str:
    """Train every model of the demo config under `<out_dir>/synthetic/selective_copy/`; write
    `<out_dir>/selective_copy.{md,png}`; return the table."""
    out_dir = Path(out_dir)
    spec = yaml.safe_load(Path(resource_path(config) if isinstance(config, str) else config).read_text())
    results = []
    for label, backbone in spec["models"].items():
        run_config = {
            "model": {**spec["model"], "backbone": {**spec["model"]["backbone"], **backbone}},
            "data": spec["data"],
            "trainer": spec["trainer"],
        }
        config_file = out_dir / "configs" / f"{label}.yaml"
        config_file.parent.mkdir(parents=True, exist_ok=True)
        config_file.write_text(yaml.safe_dump(run_config, sort_keys=False))
        print(f"\n=== demo: training {label} ===", flush=True)
        cli = run_task("fit", spec["task"], ["--config", str(config_file)], runs_dir=out_dir)
        results.append(_summarise(label, cli))
    table = _table(results, spec)
    (out_dir / "selective_copy.md").write_text(table + "\n")
    _plot(results, out_dir / "selective_copy.png")
    return table + f"\n\nplot: {out_dir / 'selective_copy.png'}\nruns: {out_dir / 'synthetic' / 'selective_copy'}"


def _summarise(label: str, cli: Any) -> dict[str, Any]:
    trainer = cli.trainer
    throughput = next(c for c in trainer.callbacks if isinstance(c, Throughput))
    curve = read_metrics(Path(trainer.logger.log_dir) / "metrics.csv").get("val/acc", [])
    return {
        "label": label,
        "mixer": cli.model.backbone.config.mixer,
        "params": sum(p.numel() for p in cli.model.parameters()),
        "accuracy": curve[-1][1] if curve else float("nan"),
        "tokens_per_s": throughput.tokens_per_s,
        "curve": curve,
        "run": trainer.logger.log_dir,
    }


def _table(results: list[dict[str, Any]], spec: dict[str, Any]) -> str:
    data = spec["data"]
    intro = (
        f"Selective copying: {data['n_tokens']} tokens among {data['seq_len']} positions, "
        f"{spec['trainer']['max_steps']} steps of batch {data['batch_size']} for every model."
    )
    rows = [
        [r["label"], r["mixer"], f"{r['params']:,}", f"{r['accuracy']:.3f}", f"{r['tokens_per_s']:,.0f}"]
        for r in results
    ]
    header = ["model", "mixer", "parameters", "token accuracy", "train tokens/s"]
    return intro + "\n\n" + markdown_table(header, rows)


def _plot(results: list[dict[str, Any]], out: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in results:
        if r["curve"]:
            steps, acc = zip(*r["curve"], strict=True)
            ax.plot(steps, acc, marker="o", label=f"{r['label']} ({r['params'] / 1e3:.0f}k params)")
    ax.axhline(0.95, color="grey", linestyle="--", linewidth=1, label="0.95")
    ax.set(
        xlabel="training step",
        ylabel="validation token accuracy",
        ylim=(0, 1.02),
        title="Selective copying: same budget for every mixer",
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    save_figure(fig, out, dpi=120)
