"""The dispatch table: one reference per op, priorities that decide, visible choices, forced backends that raise.
Every backend against its reference: tests/kernels/test_backends.py (the backend contract)."""

import re
from pathlib import Path

import pytest
import torch

import ssmkit_kernels
from ssmkit.ops import backends, dispatch, fft_conv
from ssmkit.ops.dispatch import BACKENDS, REFERENCE, REQUIREMENTS


def test_every_op_has_one_reference_that_runs_everywhere_and_needs_nothing():
    for op in {b.op for b in BACKENDS}:
        (ref,) = [b for b in BACKENDS if b.op == op and b.name == REFERENCE]
        assert (ref.priority, ref.devices, ref.requires) == (0, ("cpu", "cuda"), None)


def test_priorities_decide_between_the_backends_of_an_op_on_a_device():
    for op in {b.op for b in BACKENDS}:
        for device in ("cpu", "cuda"):
            priorities = [b.priority for b in BACKENDS if b.op == op and device in b.devices]
            assert len(priorities) == len(set(priorities)), f"{op} on {device}: tied priorities {priorities}"


def test_rows_are_unique_and_name_known_requirements():
    assert len({(b.op, b.name) for b in BACKENDS}) == len(BACKENDS)
    assert {b.requires for b in BACKENDS} <= {None, *REQUIREMENTS}


def test_available_backends_import_to_functions():
    for backend in (b for b in BACKENDS if b.available()):
        assert callable(backend.function()), backend


def test_report_names_every_op_and_its_default_per_device():
    report = backends()
    assert set(report) == {b.op for b in BACKENDS}
    assert report["fft_conv"] == {
        "registered": ["fft", "reference"],
        "available": ["fft", "reference"],
        "default": {"cpu": "fft", "cuda": "fft"},
    }
    assert report["dplr_kernel"]["default"] == {"cpu": "reference", "cuda": "reference"}


def test_forced_backend_off_its_device_raises_instead_of_falling_back():
    with pytest.raises(RuntimeError, match="'triton' for op 'ssd_scan' is unavailable on device 'cpu'"):
        dispatch.resolve("ssd_scan", "cpu", "triton")
    with pytest.raises(ValueError, match=r"unknown backend 'never' for op 'fft_conv'; known: \['fft', 'reference'\]"):
        fft_conv(torch.randn(1, 2, 4), torch.randn(2, 4), backend="never")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA device")
def test_forced_backend_whose_requirement_is_missing_raises_with_the_reason():
    with pytest.raises(RuntimeError, match="unavailable on device 'cuda': Triton kernels need .* a CUDA GPU"):
        dispatch.resolve("ssd_scan", "cuda", "triton")


def test_kernels_never_import_ssmkit():
    for path in Path(ssmkit_kernels.__file__).parent.rglob("*.py"):
        assert not re.search(r"^\s*(from|import) ssmkit\b(?!_)", path.read_text(), re.M), path
