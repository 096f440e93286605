"""Triton kernels are tested on CPU tensors under the Triton interpreter (`TRITON_INTERPRET=1`); no GPU needed.

The interpreter has to be on before triton is first imported: `triton.jit` decides when a function is decorated,
triton's own library functions included. This conftest turns it on when it is loaded before anything imported
triton (`pytest tests/kernels`, `pytest tests/kernels tests/core/ops`) on a machine without a GPU. Lightning imports
triton, so a session that collected other tests first may already hold triton without it, and on a GPU machine
the rest of the session should keep compiled Triton; there each module that runs Triton kernels (`test_triton_*.py`
and the backend contract, `test_backends.py`) runs as one test, in a fresh `python -m pytest` subprocess with the
variable set, and fails with that run's report.
"""

from __future__ import annotations

import fnmatch
import os
import subprocess
import sys

import pytest
import torch

# Turning the interpreter on is process-wide: only where nothing else could use compiled Triton (no GPU).
INTERPRETED_HERE = os.environ.get("TRITON_INTERPRET") == "1" or (
    "triton" not in sys.modules and not torch.cuda.is_available()
)
if INTERPRETED_HERE:
    os.environ["TRITON_INTERPRET"] = "1"
TRITON_MODULES = ("test_triton_*.py", "test_backends.py")


@pytest.fixture
def cuda_visible(monkeypatch):
    """`torch.cuda.is_available()` says True, as on a GPU machine: what the dispatcher would pick there (it asks
    torch at every call)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    yield


def pytest_pycollect_makemodule(module_path, parent):
    if not INTERPRETED_HERE and any(fnmatch.fnmatch(module_path.name, p) for p in TRITON_MODULES):
        return InterpretedModule.from_parent(parent, path=module_path)
    return None


class InterpretedModule(pytest.File):
    def collect(self):
        yield InterpretedRun.from_parent(self, name="interpreted_in_subprocess")


class InterpretedRun(pytest.Item):
    def runtest(self) -> None:
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(self.path)]
        env = os.environ | {"TRITON_INTERPRET": "1"}
        run = subprocess.run(command, env=env, cwd=self.config.rootpath, capture_output=True, text=True)
        if run.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed:\n{run.stdout[-6000:]}{run.stderr[-2000:]}")

    def repr_failure(self, excinfo):
        return str(excinfo.value)

    def reportinfo(self):
        return self.path, None, f"{self.path.name} in a TRITON_INTERPRET=1 subprocess"
