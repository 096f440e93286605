"""`medical.segment` runs side by side: several models, several seeds, the same settings; a markdown table.

    python plugins/medical/scripts/side_by_side.py --models umamba_bot dynunet --seeds 0 1 2 -- \\
        --data.synthetic long_range --data.synthetic_size 128 --data.patch_size "[128, 128]"

Everything after `--` goes to every `ssmkit fit medical.segment` run; `--model_kwargs NAME=YAML` gives one model its
own `--model.model_kwargs` (default `{filters: [16, 32, 64, 128]}`). Per model: the last validation's foreground
Dice per seed, their mean and standard deviation, IoU and HD95 means, the parameter count and the mean wall and CPU
(user + sys) seconds of a whole run, measured around each `ssmkit fit` command run one after another.
`--report RUN ...` prints the table of finished runs (grouped by model, in the order given) without training.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

from ssmkit.train.logging import read_metrics
from ssmkit.train.plots import markdown_table
from ssmkit_medical.tasks import Segmenter

DEFAULT_KWARGS = "{filters: [16, 32, 64, 128]}"
RUN_FOLDER = re.compile(r"outputs in (\S+?);")


def fit(model: str, seed: int, model_kwargs: str, settings: list[str]) -> tuple[Path, float, float]:
    """One run; (its folder, wall seconds, CPU seconds)."""
    command = ["ssmkit", "fit", "medical.segment", "--model.model_name", model, "--model.model_kwargs", model_kwargs]
    command += ["--seed_everything", str(seed), *settings]
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "CI": "true"})
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    found = RUN_FOLDER.search(done.stdout + done.stderr)
    if done.returncode != 0 or found is None:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return Path(found.group(1)), wall, cpu


def last_validation(run: Path) -> dict[str, float]:
    """The last logged value of val/dice, val/iou and val/hd95."""
    metrics = read_metrics(run / "metrics.csv")
    return {key: metrics[f"val/{key}"][-1][1] for key in ("dice", "iou", "hd95")}


def parameters(run: Path) -> int:
    """Parameters of the run's model, rebuilt from its hparams.yaml (a state dict counts DynUNet's shared skip
    modules twice)."""
    hparams = yaml.safe_load((run / "hparams.yaml").read_text())
    model = Segmenter(**{k: v for k, v in hparams.items() if not k.startswith("_")})
    return sum(p.numel() for p in model.parameters())


def table_row(model: str, runs: list[tuple[Path, float, float]]) -> list[str]:
    """One model's row from its runs: (folder, wall s, CPU s) each, one per seed."""
    scores = [last_validation(run) for run, _, _ in runs]
    dice = [s["dice"] for s in scores]
    return [
        model,
        f"{parameters(runs[0][0]):,}",
        " / ".join(f"{d:.4f}" for d in dice),
        f"**{statistics.mean(dice):.4f}** +- {statistics.pstdev(dice):.4f}",
        f"{statistics.mean(s['iou'] for s in scores):.4f}",
        f"{statistics.mean(s['hd95'] for s in scores):.1f}",
        f"{statistics.mean(w for _, w, _ in runs):.0f} / {statistics.mean(c for _, _, c in runs):.0f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["umamba_bot", "umamba_enc", "vmunet", "dynunet"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--model_kwargs", nargs="*", default=[], help="NAME=YAML, a model's own model_kwargs")
    parser.add_argument("--report", nargs="*", type=Path, help="finished run folders: only the table")
    args, settings = parser.parse_known_args()
    settings = [s for s in settings if s != "--"]
    own = dict(item.split("=", 1) for item in args.model_kwargs)
    runs: dict[str, list[tuple[Path, float, float]]] = {}
    for run in args.report or []:
        model = yaml.safe_load((run / "hparams.yaml").read_text())["model_name"]
        runs.setdefault(model, []).append((run, float("nan"), float("nan")))
    for model in [] if args.report else args.models:
        runs[model] = [fit(model, seed, own.get(model, DEFAULT_KWARGS), settings) for seed in args.seeds]
        print(model, [str(run) for run, _, _ in runs[model]], flush=True)
    header = ["model", "parameters", "val Dice per seed", "mean +- std", "IoU", "HD95 (px)", "run wall / CPU s"]
    print(markdown_table(header, [table_row(model, model_runs) for model, model_runs in runs.items()]))


if __name__ == "__main__":
    main()
