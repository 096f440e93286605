"""`medical.segment` runs side by side: several models, several seeds, the same settings; a markdown table.

    python plugins/medical/scripts/side_by_side.py --models umamba_bot dynunet --seeds 0 1 2 -- \\
        --data.synthetic long_range --data.synthetic_size 128 --data.patch_size "[128, 128]"

Everything after `--` goes to every `ssmkit fit medical.segment` run; `--model_kwargs NAME=YAML` gives one model its
own `--model.model_kwargs` (default `{filters: [16, 32, 64, 128]}`). Per model: the last validation's foreground
Dice per seed, their mean and standard deviation, IoU and HD95 means, the parameter count and the mean wall and CPU
(user + sys) seconds of a whole run, measured around each `ssmkit fit` command run one after another.
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

import torch

from ssmkit.train.logging import read_metrics
from ssmkit.train.plots import markdown_table

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
    """Parameters of the run's last checkpoint."""
    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    return sum(v.numel() for k, v in state.items() if k.startswith("model.") and v.is_floating_point())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["umamba_bot", "umamba_enc", "vmunet", "dynunet"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--model_kwargs", nargs="*", default=[], help="NAME=YAML, a model's own model_kwargs")
    args, settings = parser.parse_known_args()
    settings = [s for s in settings if s != "--"]
    own = dict(item.split("=", 1) for item in args.model_kwargs)
    rows = []
    for model in args.models:
        runs = [fit(model, seed, own.get(model, DEFAULT_KWARGS), settings) for seed in args.seeds]
        scores = [last_validation(run) for run, _, _ in runs]
        dice = [s["dice"] for s in scores]
        print(model, [str(run) for run, _, _ in runs], dice, flush=True)
        rows.append(
            [
                model,
                f"{parameters(runs[0][0]):,}",
                " / ".join(f"{d:.4f}" for d in dice),
                f"**{statistics.mean(dice):.4f}** +- {statistics.pstdev(dice):.4f}",
                f"{statistics.mean(s['iou'] for s in scores):.4f}",
                f"{statistics.mean(s['hd95'] for s in scores):.1f}",
                f"{statistics.mean(w for _, w, _ in runs):.0f} / {statistics.mean(c for _, _, c in runs):.0f}",
            ]
        )
    seeds = ", ".join(map(str, args.seeds))
    header = ["model", "parameters", f"val Dice (seeds {seeds})", "mean +- std", "IoU", "HD95 (px)", "run wall / CPU s"]
    print(markdown_table(header, rows))


if __name__ == "__main__":
    main()
