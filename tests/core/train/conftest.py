"""The multi-process training tests' runner: `ssmkit fit` in a subprocess (Lightning launches the other processes
by running the same command again), and what the run left: its metrics.csv rows and its last checkpoint."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch


@dataclass
class Run:
    folder: Path
    rows: list[dict[str, str]]
    weights: dict[str, torch.Tensor]
    seconds: float
    output: str

    def series(self, key: str) -> list[float]:
        """Every logged value of `key`, in order."""
        return [float(row[key]) for row in self.rows if row.get(key)]

    def final(self, key: str) -> float:
        return self.series(key)[-1]

    def weight_difference(self, other: Run) -> float:
        """The largest absolute difference between the two runs' final floating-point weights."""
        assert self.weights.keys() == other.weights.keys()
        floats = [k for k in self.weights if self.weights[k].is_floating_point()]
        return max(float((self.weights[k] - other.weights[k]).abs().max()) for k in floats)


def run_command(spec: str, runs_dir: Path, *flags: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """`ssmkit fit spec --quick` on CPU with `flags` -> (exit status, stdout + stderr)."""
    command = [sys.executable, "-m", "ssmkit.cli", "fit", spec, "--quick", "--runs_dir", str(runs_dir)]
    result = subprocess.run(
        [*command, "--trainer.accelerator", "cpu", *flags],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "CI": "1", **(env or {})},
    )
    return result.returncode, result.stdout + result.stderr


def run_fit(spec: str, runs_dir: Path, *flags: str, env: dict[str, str] | None = None) -> Run:
    """`run_command`, which must succeed, and the run it left."""
    start = time.perf_counter()
    status, output = run_command(spec, runs_dir, *flags, env=env)
    seconds = time.perf_counter() - start
    assert status == 0, output[-3000:]
    (folder,) = runs_dir.glob("*/*/version_0")
    with open(folder / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    weights = torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    return Run(folder, rows, weights, seconds, output)


@pytest.fixture
def fit() -> Callable[..., Run]:
    return run_fit


@pytest.fixture
def fit_command() -> Callable[..., tuple[int, str]]:
    return run_command
