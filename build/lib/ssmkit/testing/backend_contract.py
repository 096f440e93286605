"""`BackendContract`: every backend of every op in the dispatch table against the op's reference, with nothing
written per backend.

In a pytest module, `class TestEveryBackend(BackendContract): pass` runs, in float64 and in float32, each example
call of an op (declared once, `@example_inputs(op)` in the op's module) through every row of
`ssmkit.ops.dispatch.BACKENDS` that can run on CPU tensors here, and through the op's reference. Those rows are the
available CPU backends and the GPU ones whose requirement has an interpreter that is on: the Triton kernels under
`TRITON_INTERPRET=1` (which must be set before triton is first imported, as tests/kernels/conftest.py does).

Compared, for a fixed random cotangent of the outputs: every output, every floating-point argument after the call
(a state updated in place) and the gradient of every input that requires grad. Dtypes and shapes must be equal,
and max |backend - reference| / max |reference| at most `TOLERANCE[dtype]`: 1e-12 in float64 (the same math in
another order: rounding only; measured <= 5e-15 on the examples), 3e-5 in float32 (both sides round in float32,
in different orders, and the fast paths' float32 exp may be a few ulp off; measured <= 5e-6 on the examples).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable

import pytest
import torch

from ssmkit.ops.dispatch import BACKENDS, REFERENCE, REQUIREMENTS, Backend, examples, reference

Tensor = torch.Tensor
TOLERANCE = {torch.float64: 1e-12, torch.float32: 3e-5}


def cpu_backends() -> list[Backend]:
    """The rows of the dispatch table, references left out, that run on CPU tensors in this process."""
    return [b for b in BACKENDS if b.name != REFERENCE and _runs_on_cpu_tensors(b)]


def _runs_on_cpu_tensors(backend: Backend) -> bool:
    if "cpu" in backend.devices:
        return backend.available()
    requirement = REQUIREMENTS.get(backend.requires or "")
    return (
        requirement is not None
        and requirement.interpreter is not None
        and os.environ.get(requirement.interpreter) == "1"
        and importlib.util.find_spec(requirement.package) is not None
    )


def outputs_and_gradients(fn: Callable[..., Tensor | tuple[Tensor, ...]], args: tuple) -> dict[str, Tensor | None]:
    """`fn(*args)`: its outputs, its floating-point arguments after the call, and the gradient of each argument that
    requires grad for a fixed random cotangent of the outputs (None where none flows), by name."""
    out = fn(*args)
    outputs = out if isinstance(out, tuple) else (out,)
    results: dict[str, Tensor | None] = {f"output {i}": o for i, o in enumerate(outputs)}
    tensors = {i: a for i, a in enumerate(args) if isinstance(a, Tensor) and (a.is_floating_point() or a.is_complex())}
    results |= {f"argument {i} after the call": a for i, a in tensors.items() if not a.requires_grad}
    leaves = {i: a for i, a in tensors.items() if a.requires_grad}
    if leaves:
        g = torch.Generator().manual_seed(1)
        loss = sum((o * torch.randn(o.shape, generator=g, dtype=o.dtype).conj()).real.sum() for o in outputs)
        grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
        results |= {f"gradient of argument {i}": grad for i, grad in zip(leaves, grads, strict=True)}
    return results


def assert_matches(fast: dict[str, Tensor | None], reference: dict[str, Tensor | None], tolerance: float) -> None:
    """Same names, dtypes and shapes; each tensor within `tolerance` of the reference's, relative to its largest
    magnitude."""
    assert fast.keys() == reference.keys()
    for name, r in reference.items():
        f = fast[name]
        if f is None or r is None:
            assert f is None and r is None, f"{name}: a gradient on one side only"
            continue
        assert (f.dtype, f.shape) == (r.dtype, r.shape), f"{name}: {f.dtype} {tuple(f.shape)}, reference {r.dtype}"
        error = (f - r).abs().max() / r.abs().max().clamp_min(1e-30)
        assert error <= tolerance, f"{name}: relative error {error:.2e} > {tolerance:g}"


class BackendContract:
    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "backend" in metafunc.fixturenames:
            rows = cpu_backends()
            metafunc.parametrize("backend", rows, ids=[f"{b.op}-{b.name}" for b in rows])
        if "op" in metafunc.fixturenames:
            metafunc.parametrize("op", sorted({b.op for b in BACKENDS}))
        metafunc.parametrize("dtype", list(TOLERANCE), ids=str)

    def test_reference_runs_on_the_examples(self, op: str, dtype: torch.dtype) -> None:
        """Every op declares example inputs; its reference gives finite outputs and gradients on them."""
        for args in examples(op, torch.Generator().manual_seed(0), dtype):
            for name, t in outputs_and_gradients(reference(op), args).items():
                assert t is None or bool(torch.isfinite(t).all()), f"{op}: {name} is not finite"

    def test_matches_the_reference(self, backend: Backend, dtype: torch.dtype) -> None:
        calls = zip(*(examples(backend.op, torch.Generator().manual_seed(0), dtype) for _ in "ab"), strict=True)
        for index, (ours, theirs) in enumerate(calls):  # the same inputs, made twice: in-place updates stay apart
            fast = outputs_and_gradients(backend.function(), ours)
            ref = outputs_and_gradients(reference(backend.op), theirs)
            try:
                assert_matches(fast, ref, TOLERANCE[dtype])
            except AssertionError as error:
                raise AssertionError(f"{backend.op} example {index}, backend {backend.name!r}: {error}") from None
