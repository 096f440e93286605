"""`ssmkit bench --tasks`: the synthetic scoreboard, every mixer x every synthetic task at one fixed budget.

Each cell trains the task's default model (2 layers, d_model 64) with the mixer replaced, on board-sized
data (`scoreboard.yaml`), for `steps` optimiser steps, and reports the validation metric: token / class
accuracy, or for `icl_regression` the MSE beside least squares. A non-causal mixer is not scored on
`icl_regression`, whose targets sit in the next input position. Writes `scoreboard.json` and
`scoreboard.md` to the output folder; a mixer that fails is reported with the error rather than stopping
the board.
"""

from __future__ import annotations

import json
import time
from importlib import resources
from pathlib import Path
from typing import Any

import lightning as L
import yaml

from ssmkit.plugins import find_task
from ssmkit.registry import list_mixers, mixer_class
from ssmkit.train.plots import markdown_table

CONFIG = resources.files("ssmkit.bench") / "scoreboard.yaml"  # package data


def run_cell(task_name: str, mixer: str, mixer_kwargs: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """Train one (mixer, task) cell and return its validation metrics and wall time."""
    _, _, task = find_task(f"synthetic.{task_name}")
    module_cls, datamodule_cls = task.load()
    config = yaml.safe_load(task.config_path().read_text())
    steps = spec["steps"]
    L.seed_everything(0, verbose=False)
    data_kwargs = {**config.get("data", {}), **spec.get("data", {}).get(task_name, {})}
    if "n_val" in data_kwargs:
        data_kwargs.update(n_val=spec["n_val"], n_train=steps * data_kwargs.get("batch_size", 64))
    data = datamodule_cls(**data_kwargs)
    links = {target: getattr(data, source) for source, target in module_cls.data_links.items()}  # as the CLI links
    backbone = {**config["model"]["backbone"], "mixer": mixer, "mixer_kwargs": mixer_kwargs}
    model = module_cls(**{**config["model"], **links, "backbone": backbone})
    trainer = L.Trainer(
        max_steps=steps, max_epochs=-1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, gradient_clip_val=1.0, num_sanity_val_steps=0, limit_val_batches=1.0,
    )  # fmt: skip
    start = time.perf_counter()
    trainer.fit(model, data)
    seconds = time.perf_counter() - start
    metrics = trainer.validate(model, data, verbose=False)[0]
    return {**{k: float(v) for k, v in metrics.items()}, "seconds": seconds}


def main(
    out_dir: Path,
    quick: bool = False,
    mixers: list[str] | None = None,
    tasks: list[str] | None = None,
    steps: int | None = None,
) -> int:
    spec = yaml.safe_load(CONFIG.read_text())
    if quick:
        spec = {**spec, **spec["quick"]}
    if steps is not None:
        spec["steps"] = steps
    known = set(list_mixers())
    board_mixers = {m: kw for m, kw in spec["mixers"].items() if m in known and (mixers is None or m in mixers)}
    board_tasks = [t for t in spec["tasks"] if tasks is None or t in tasks]
    cells = []
    for mixer, kwargs in board_mixers.items():
        for task_name in board_tasks:
            cell = {"mixer": mixer, "task": task_name}
            if task_name == "icl_regression" and not mixer_class(mixer).causal:
                cell["skipped"] = "non-causal mixer: the targets are visible in the input"
            else:
                try:
                    cell.update(run_cell(task_name, mixer, kwargs, spec))
                except Exception as exc:  # one broken mixer must not stop the board
                    cell["error"] = f"{type(exc).__name__}: {exc}"
            print(json.dumps(cell), flush=True)
            cells.append(cell)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "scoreboard.json").write_text(json.dumps({"steps": spec["steps"], "cells": cells}, indent=2))
    (out_dir / "scoreboard.md").write_text(markdown(cells, board_tasks, spec["steps"]))
    print(f"wrote {out_dir / 'scoreboard.md'}")
    return 0


def _cell_text(cell: dict[str, Any]) -> str:
    if "skipped" in cell:
        return "n/a"
    if "error" in cell:
        return "error"
    if cell["task"] == "icl_regression":
        return f"{cell['val/mse']:.3f} (lstsq {cell['val/lstsq_mse']:.3f})"
    return f"{cell['val/acc']:.3f}"


def markdown(cells: list[dict[str, Any]], tasks: list[str], steps: int) -> str:
    by_mixer: dict[str, dict[str, dict[str, Any]]] = {}
    for cell in cells:
        by_mixer.setdefault(cell["mixer"], {})[cell["task"]] = cell
    intro = f"Validation accuracy after {steps} steps of batch 64 (icl_regression: MSE, least squares beside it)."
    table = [[mixer, *(_cell_text(row[t]) for t in tasks)] for mixer, row in by_mixer.items()]
    lines = [intro, "", markdown_table(["mixer", *tasks], table, align="l" + "r" * len(tasks))]
    errors = [f"- {c['mixer']} / {c['task']}: {c['error']}" for c in cells if "error" in c]
    return "\n".join(lines + ([""] + errors if errors else [])) + "\n"
