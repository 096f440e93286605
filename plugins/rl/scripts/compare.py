"""Runs of `rl.ppo` side by side: one learning-curve plot and a markdown table.

    python plugins/rl/scripts/compare.py runs/rl/ppo/version_0 runs/rl/ppo/version_1 ... --out curves.png

Per run (its config.yaml, learning_curve.csv and metrics.csv): the agent, the environment steps and training seconds
reached, the mean training return of the last `--last` rollouts (sampled actions), the first environment step at
which a rollout's mean return reached `--threshold`, and the last greedy validation return (`val/episode_return`).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import yaml

from ssmkit.train.plots import markdown_table
from ssmkit_rl.plots import plot_learning_curves, plot_trial_returns


def label(config: dict) -> str:
    """ "s5 x2 (d_model 32)", "gru 32", "s5 x2 (d_model 32) seed 1", ... from a run's resolved config."""
    model, seed = config["model"], config.get("seed_everything")
    suffix = f" seed {seed}" if seed else ""
    if model["agent"] != "ssm":
        return f"{model['agent']} {model['hidden']}{suffix}"
    backbone = model["backbone"]
    return f"{backbone['mixer']} x{backbone['n_layers']} (d_model {backbone['d_model']}){suffix}"


def read_columns(path: Path) -> dict[str, list[float]]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: [float(r[k]) for r in rows if r.get(k)] for k in rows[0]} if rows else {}


def summary(run: Path, last: int, threshold: float) -> tuple[str, list, tuple[list, list]]:
    config = yaml.safe_load((run / "config.yaml").read_text())
    curve = read_columns(run / "learning_curve.csv")
    val = read_columns(run / "metrics.csv").get("val/episode_return", [float("nan")])
    steps, returns = curve["env_steps"], curve["episode_return"]
    reached = next((int(s) for s, r in zip(steps, returns, strict=True) if r >= threshold), None)
    name = label(config)
    row = [
        name,
        f"{int(steps[-1]):,}",
        f"{curve['train_seconds'][-1]:.0f}",
        f"{np.mean(returns[-last:]):.3f}",
        f"{val[-1]:.3f}",
        f"{reached:,}" if reached else "not reached",
        f"{curve['train_seconds'][-1] / curve['update'][-1]:.2f}",
    ]
    return name, row, (steps, returns)


def trial_returns(run: Path) -> dict[str, list[float]]:
    """source -> mean return per trial, from a meta-RL run's trial_returns.csv ({} without one)."""
    path = run / "trial_returns.csv"
    if not path.is_file():
        return {}
    out: dict[str, list[float]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            out.setdefault(row["source"], []).append(float(row["return"]))
    return out


def trials_table(runs: list[Path]) -> dict[str, list[float]]:
    """Print per-trial returns of the meta-RL runs and plot their greedy validation returns per trial."""
    rows, lines = [], {}
    for run in runs:
        name = label(yaml.safe_load((run / "config.yaml").read_text()))
        for source, returns in trial_returns(run).items():
            rows.append([name, source, *(f"{r:.3f}" for r in returns), f"{returns[-1] - returns[0]:+.3f}"])
            if source.startswith("val"):
                lines[name] = returns
    if rows:
        n = max(len(r) for r in rows) - 3
        print(markdown_table(["agent", "episodes", *(f"trial {k + 1}" for k in range(n)), "last - first"], rows))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("learning_curves.png"))
    parser.add_argument("--title", default="RepeatPreviousEasy, PPO")
    parser.add_argument("--last", type=int, default=5)
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--trials-out", type=Path, default=Path("trial_returns.png"))
    args = parser.parse_args()
    rows, curves = [], {}
    for run in args.runs:
        name, row, curve = summary(run, args.last, args.threshold)
        rows.append(row)
        curves[name] = curve
    header = [
        "agent",
        "env steps",
        "train s",
        f"train return (last {args.last})",
        "greedy val return",
        f"steps to {args.threshold}",
        "s / update",
    ]
    print(markdown_table(header, rows))
    print(plot_learning_curves(curves, args.out, args.title))
    lines = trials_table(args.runs)
    if lines:
        print(plot_trial_returns(lines, args.trials_out, f"{args.title}: greedy return per trial"))


if __name__ == "__main__":
    main()
