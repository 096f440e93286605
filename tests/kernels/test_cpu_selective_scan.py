"""The fused numba selective scan against the reference `selective_scan_ref` (outputs, last state and every gradient),
and the fused decoding step against `selective_state_update_ref`.

Tolerance (stated per dtype): the largest absolute difference, divided by the largest magnitude of the reference
tensor, must be <= 1e-12 in float64 and <= 1e-5 in float32 (both sides compute in float32 there, in a different
order, and the fast path's float32 exp is a <= 3 ulp polynomial). Shapes are tiny and only two dtypes are
compiled, so the file runs in seconds once numba's on-disk cache is warm.
"""

import pytest
import torch

from ssmkit.ops import backends, selective_scan, selective_scan_ref, selective_state_update_ref
from ssmkit.testing.backend_contract import assert_matches
from ssmkit_kernels.cpu.selective_scan import selective_scan_numba, selective_state_update_numba

TOL = {torch.float64: 1e-12, torch.float32: 1e-5}
NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


def make_bc(layout: str, b: int, d: int, n: int, length: int, g: torch.Generator, dtype) -> torch.Tensor:
    shape = {"invariant": (d, n), "variable": (b, n, length), "grouped": (b, 2, n, length)}[layout]
    return torch.randn(shape, generator=g, dtype=dtype)


def make_inputs(b, d, length, n, dtype, layouts=("variable", "variable"), optional=True, seed=0) -> dict:
    g = torch.Generator().manual_seed(seed)
    args = {
        "u": torch.randn(b, d, length, generator=g, dtype=dtype),
        "delta": torch.rand(b, d, length, generator=g, dtype=dtype),
        "A": -torch.rand(d, n, generator=g, dtype=dtype) * 2,
        "B": make_bc(layouts[0], b, d, n, length, g, dtype),
        "C": make_bc(layouts[1], b, d, n, length, g, dtype),
    }
    if optional:
        bias = torch.randn(d, generator=g, dtype=dtype)
        bias[0] = 25.0  # past softplus's threshold of 20: the linear branch
        args |= {"D": torch.randn(d, generator=g, dtype=dtype), "z": torch.randn_like(args["u"]), "delta_bias": bias}
    return {k: v.requires_grad_() for k, v in args.items()}


def run_with_grads(fn, inputs: dict, softplus: bool, seed: int = 1) -> dict:
    """Output, last state and the gradient of every input for a fixed random cotangent of both outputs."""
    y, last = fn(**inputs, delta_softplus=softplus, return_last_state=True)
    g = torch.Generator().manual_seed(seed)
    dy, dlast = torch.randn(y.shape, generator=g, dtype=y.dtype), torch.randn(last.shape, generator=g, dtype=last.dtype)
    grads = torch.autograd.grad((y * dy).sum() + (last * dlast).sum(), list(inputs.values()))
    return {"y": y, "last_state": last} | {f"d{k}": gr for k, gr in zip(inputs, grads, strict=True)}


def assert_matches_reference(inputs: dict, softplus: bool = True, fast_fn=selective_scan_numba) -> None:
    fast = run_with_grads(fast_fn, inputs, softplus)
    assert_matches(fast, run_with_grads(selective_scan_ref, inputs, softplus), TOL[inputs["u"].dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("b_layout", ["invariant", "variable", "grouped"])
@pytest.mark.parametrize("c_layout", ["invariant", "variable", "grouped"])
def test_every_layout_matches_reference(dtype, b_layout, c_layout):
    assert_matches_reference(make_inputs(2, 4, 13, 5, dtype, (b_layout, c_layout)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    ("b", "d", "length", "n"),
    [
        (1, 1, 1, 1),
        (1, 1, 7, 3),
        (2, 6, 1, 2),
        (1, 8, 17, 7),
        (3, 10, 31, 5),
        (2, 64, 9, 4),
        (2, 6, 150, 5),
        (1, 2, 150, 70),
    ],
)
def test_odd_shapes_match_reference(dtype, b, d, length, n):
    """Batch or channels of 1, one step, n not a power of two, one or many channel blocks per group, and lengths
    past the backward's checkpoint chunk (max(64, n) steps): several chunks, the last one partial."""
    layouts = ("grouped", "variable") if d % 2 == 0 else ("variable", "invariant")
    assert_matches_reference(make_inputs(b, d, length, n, dtype, layouts, seed=b * 100 + d))


def test_bfloat16_inputs_compute_in_float32_and_keep_dtypes():
    inputs = {k: v.detach() for k, v in make_inputs(2, 4, 10, 3, torch.float32).items()}
    inputs["u"], inputs["z"] = inputs["u"].bfloat16().requires_grad_(), inputs["z"].bfloat16().requires_grad_()
    y, last = selective_scan_numba(**inputs, delta_softplus=True, return_last_state=True)
    y_ref, last_ref = selective_scan_ref(**inputs, delta_softplus=True, return_last_state=True)
    assert y.dtype == torch.bfloat16 and last.dtype == torch.float32
    torch.testing.assert_close(y, y_ref)  # bfloat16 tolerances
    torch.testing.assert_close(last, last_ref, rtol=1e-5, atol=1e-5)
    y.float().sum().backward()
    assert inputs["u"].grad.dtype == torch.bfloat16 and inputs["z"].grad.dtype == torch.bfloat16


def test_only_some_inputs_require_grad():
    inputs = {k: v.detach() for k, v in make_inputs(1, 2, 6, 3, torch.float64).items()}
    inputs["u"].requires_grad_()
    selective_scan_numba(**inputs, delta_softplus=True).sum().backward()
    expected = torch.autograd.grad(selective_scan_ref(**inputs, delta_softplus=True).sum(), inputs["u"])[0]
    torch.testing.assert_close(inputs["u"].grad, expected, rtol=0, atol=1e-12)


def test_dispatcher_picks_numba_on_cpu():
    assert backends()["selective_scan"]["default"]["cpu"] == "numba"
    assert backends()["selective_state_update"]["default"]["cpu"] == "numba"
    inputs = {k: v.detach() for k, v in make_inputs(1, 2, 5, 3, torch.float64).items()}
    torch.testing.assert_close(
        selective_scan(**inputs), selective_scan(**inputs, backend="reference"), rtol=0, atol=1e-12
    )


def step_inputs(b: int, d: int, n: int, dtype, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    bias = torch.randn(d, generator=g, dtype=dtype)
    bias[0] = 25.0  # softplus's linear branch
    return {
        "x": torch.randn(b, d, generator=g, dtype=dtype),
        "dt": torch.rand(b, d, generator=g, dtype=dtype),
        "A": -torch.rand(d, n, generator=g, dtype=dtype) * 2,
        "B": torch.randn(b, n, generator=g, dtype=dtype),
        "C": torch.randn(b, n, generator=g, dtype=dtype),
        "D": torch.randn(d, generator=g, dtype=dtype),
        "z": torch.randn(b, d, generator=g, dtype=dtype),
        "dt_bias": bias,
    }


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("b", "d", "n", "optional"), [(2, 6, 5, True), (1, 1, 1, True), (3, 4, 16, False)])
def test_state_update_matches_reference_over_steps(dtype, b, d, n, optional):
    """Three steps from a random state: outputs and the in-place state agree with the reference."""
    g = torch.Generator().manual_seed(7)
    state_ref = torch.randn(b, d, n, generator=g, dtype=dtype)
    state_fast = state_ref.clone()
    for step in range(3):
        inputs = step_inputs(b, d, n, dtype, seed=step)
        if not optional:
            inputs = {k: v for k, v in inputs.items() if k not in ("D", "z", "dt_bias")}
        y_ref = selective_state_update_ref(state_ref, **inputs, dt_softplus=optional)
        y = selective_state_update_numba(state_fast, **inputs, dt_softplus=optional)
        assert y.dtype == y_ref.dtype and y.shape == y_ref.shape
        for fast, ref in ((y, y_ref), (state_fast, state_ref)):
            err = (fast - ref).abs().max() / ref.abs().max()
            assert err <= TOL[dtype], f"step {step}: relative error {err:.2e}"


def test_state_update_keeps_a_bfloat16_state_in_place():
    inputs = step_inputs(2, 4, 3, torch.float32)
    state = torch.randn(2, 4, 3).bfloat16()
    expected_state = state.clone()
    y_ref = selective_state_update_ref(expected_state, **inputs, dt_softplus=True)
    y = selective_state_update_numba(state, **inputs, dt_softplus=True)
    torch.testing.assert_close(state, expected_state)  # bfloat16 tolerances
    torch.testing.assert_close(y, y_ref, rtol=1e-2, atol=1e-2)
