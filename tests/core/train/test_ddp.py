"""Two CPU processes (gloo) train two steps through the real command."""

import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_fit_with_ddp_on_two_cpu_processes(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "ssmkit.cli",
        "fit",
        "synthetic.selective_copy",
        "--quick",
        "--runs_dir",
        str(tmp_path),
        "--trainer.accelerator",
        "cpu",
        "--trainer.devices",
        "2",
        "--trainer.strategy",
        "ddp",
        "--trainer.max_steps",
        "2",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "CI": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "distributed_backend=gloo" in result.stderr + result.stdout
    assert "All distributed processes registered" in result.stderr + result.stdout
    assert (tmp_path / "synthetic" / "selective_copy" / "version_0" / "checkpoints" / "last.ckpt").is_file()
