"""The fused numba linear scan against the reference `linear_scan_ref`: outputs, last state and every gradient.

Tolerance: the largest absolute difference, divided by the largest magnitude of the reference tensor, must be
<= 1e-12 in (complex) double and <= 1e-5 in (complex) single precision (both compute in the same precision; the
fast path's fused multiply-adds round differently).
"""

import pytest
import torch

from ssmkit.ops import backends, linear_scan, linear_scan_ref
from ssmkit.testing.backend_contract import assert_matches
from ssmkit_kernels.cpu.linear_scan import linear_scan_numba

TOL = {torch.float64: 1e-12, torch.complex128: 1e-12, torch.float32: 1e-5, torch.complex64: 1e-5}


def randn(shape: tuple[int, ...], g: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    if dtype.is_complex:
        return torch.complex(*(torch.randn(shape, generator=g, dtype=torch.float64) for _ in "ri")).to(dtype)
    return torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)


def make_inputs(batch, length, dim, dtype, with_h0=True, reset_rate=0.2, seed=0) -> dict:
    """|a| < 1 (a stable recurrence, as in S5 / LRU); resets at random steps, and always at step 0 of row 0."""
    g = torch.Generator().manual_seed(seed)
    inputs = {"a": randn((batch, length, dim), g, dtype) * 0.6, "b": randn((batch, length, dim), g, dtype)}
    if with_h0:
        inputs["h0"] = randn((batch, dim), g, dtype)
    for t in inputs.values():
        t.requires_grad_()
    resets = torch.rand(batch, length, generator=g) < reset_rate
    resets[0, 0] = reset_rate > 0
    return inputs | {"resets": resets if reset_rate > 0 else None}


def run_with_grads(fn, inputs: dict, seed: int = 1) -> dict:
    """h, last state and the gradient of every input for a fixed random cotangent of both outputs."""
    h, last = fn(**inputs, return_last_state=True)
    g = torch.Generator().manual_seed(seed)
    dh, dlast = randn(h.shape, g, h.dtype), randn(last.shape, g, last.dtype)
    leaves = [t for t in inputs.values() if t is not None and t.requires_grad]
    loss = (h * dh.conj()).real.sum() + (last * dlast.conj()).real.sum()
    grads = torch.autograd.grad(loss, leaves)
    return {"h": h, "last": last} | {f"d{k}": gr for k, gr in zip(inputs, grads, strict=False)}


def assert_matches_reference(inputs: dict, fast_fn=linear_scan_numba) -> None:
    fast, ref = run_with_grads(fast_fn, inputs), run_with_grads(linear_scan_ref, inputs)
    assert_matches(fast, ref, TOL[inputs["b"].dtype])


@pytest.mark.parametrize(("batch", "length", "dim"), [(1, 1, 1), (1, 7, 3), (3, 129, 1), (2, 5, 130)])
def test_odd_shapes(batch, length, dim):
    assert_matches_reference(make_inputs(batch, length, dim, torch.float64, seed=batch + length + dim))


def test_every_step_a_reset_leaves_h_equal_to_b():
    inputs = make_inputs(2, 9, 4, torch.float64, reset_rate=1.0)
    torch.testing.assert_close(linear_scan_numba(**inputs), inputs["b"].detach())
    assert_matches_reference(inputs)


def test_dtypes_promote_like_the_reference():
    """Real a with complex b gives complex h (and a real gradient for a); bfloat16 runs in float32 and comes back."""
    g = torch.Generator().manual_seed(3)
    a = torch.rand(1, 6, 2, generator=g, dtype=torch.float64).requires_grad_()
    b = randn((1, 6, 2), g, torch.complex128).requires_grad_()
    fast, ref = run_with_grads(linear_scan_numba, {"a": a, "b": b}), run_with_grads(linear_scan_ref, {"a": a, "b": b})
    for name in ref:
        torch.testing.assert_close(fast[name], ref[name])
    assert fast["da"].dtype == torch.float64
    a16, b16 = a.detach().bfloat16(), b.detach().real.bfloat16()
    h = linear_scan_numba(a16, b16)
    assert h.dtype == torch.bfloat16
    torch.testing.assert_close(h.float(), linear_scan_ref(a16.float(), b16.float()), atol=2e-2, rtol=2e-2)


def test_is_the_cpu_default_and_dispatches():
    assert backends()["linear_scan"]["default"]["cpu"] == "numba"
    inputs = make_inputs(1, 10, 3, torch.float64)
    torch.testing.assert_close(linear_scan(**inputs), linear_scan(**inputs, backend="reference"))
