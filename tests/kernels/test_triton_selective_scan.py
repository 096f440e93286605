"""The Triton selective scan and state update against the references, run by the Triton interpreter on CPU tensors.

Inputs and the check are the CPU kernel tests' `make_inputs` (every optional input, delta_bias past softplus's
linear threshold on one channel) and `assert_matches_reference` (y, last_state and every gradient for a random
cotangent of both). Tolerance there: largest absolute difference / largest magnitude of the reference <= 1e-12 in
float64 and 1e-5 in float32: both sides compute in that precision, the kernel in another order (a parallel scan
within chunks, gradients summed per chunk); it measured <= 5e-7 in float32. The interpreter is slow, so the
shapes are tiny; blocks are BLOCK_L=8 steps x BLOCK_D=2 channels under it, so they cover several chunks and
partial blocks.
"""

import pytest
import torch
from test_cpu_selective_scan import TOL, make_inputs, run_with_grads
from test_cpu_selective_scan import assert_matches_reference as assert_matches

from ssmkit.ops import backends, selective_scan, selective_scan_ref, selective_state_update_ref
from ssmkit_kernels.triton.selective_scan import selective_scan_triton, selective_state_update_triton


def assert_matches_reference(inputs: dict, softplus: bool = True) -> None:
    assert_matches(inputs, softplus, selective_scan_triton)


@pytest.mark.parametrize(
    ("dtype", "layouts"),
    [
        (torch.float32, ("variable", "variable")),
        (torch.float32, ("invariant", "grouped")),
        (torch.float32, ("grouped", "invariant")),
        (torch.float64, ("grouped", "variable")),
    ],
)
def test_layouts_match_reference(dtype, layouts):
    assert_matches_reference(make_inputs(2, 4, 13, 3, dtype, layouts))


@pytest.mark.parametrize(
    ("b", "d", "length", "n", "layouts"),
    [
        (1, 1, 9, 5, ("variable", "invariant")),  # B=1, D=1, L and n not multiples of a block
        (1, 3, 17, 7, ("invariant", "variable")),  # d not a multiple of BLOCK_D
        (2, 6, 5, 2, ("grouped", "grouped")),  # 3 channels per group: blocks of one channel
    ],
)
def test_odd_shapes_match_reference(b, d, length, n, layouts):
    assert_matches_reference(make_inputs(b, d, length, n, torch.float32, layouts, seed=d))


def test_strided_inputs_match_reference():
    """Views that are not contiguous: every input every other element of a larger tensor, A transposed."""
    inputs = make_inputs(2, 3, 9, 4, torch.float32, ("variable", "invariant"))
    strided = {k: torch.stack([v, v], -1)[..., 0] for k, v in inputs.items()}
    strided["A"] = inputs["A"].detach().t().contiguous().t().requires_grad_()
    assert not any(v.is_contiguous() for v in strided.values())
    assert_matches_reference(strided)


def test_bfloat16_inputs_keep_a_float32_state():
    """u, delta, z in bfloat16: y and their gradients come back in bfloat16, within one bfloat16 step (2^-7 of the
    largest magnitude) of the reference's; the last state and the float32 parameters' gradients to 1e-5."""
    inputs = make_inputs(2, 4, 13, 3, torch.float32)
    for name in ("u", "delta", "z"):
        inputs[name] = inputs[name].detach().bfloat16().requires_grad_()
    fast = run_with_grads(selective_scan_triton, inputs, True)
    for name, r in run_with_grads(selective_scan_ref, inputs, True).items():
        assert fast[name].dtype == r.dtype, name
        err = (fast[name].float() - r.float()).abs().max() / r.float().abs().max()
        assert err <= (2**-7 if r.dtype == torch.bfloat16 else 1e-5), f"{name}: relative error {err:.2e}"


def test_inference_forward_without_last_state():
    inputs = {k: v.detach() for k, v in make_inputs(1, 2, 10, 3, torch.float32).items()}
    y = selective_scan_triton(**inputs, delta_softplus=True)
    torch.testing.assert_close(y, selective_scan_ref(**inputs, delta_softplus=True), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("b", "d", "n"), [(1, 1, 1), (2, 5, 3), (3, 4, 16)])
def test_state_update_matches_reference(dtype, b, d, n):
    g = torch.Generator().manual_seed(n)
    state = torch.randn(b, d, n, generator=g, dtype=dtype)
    x, dt, z = (torch.randn(b, d, generator=g, dtype=dtype) for _ in range(3))
    A = -torch.rand(d, n, generator=g, dtype=dtype)
    B, C = (torch.randn(b, n, generator=g, dtype=dtype) for _ in range(2))
    D, bias = (torch.randn(d, generator=g, dtype=dtype) for _ in range(2))
    ref_state, fast_state = state.clone(), state.clone()
    y_ref = selective_state_update_ref(ref_state, x, dt, A, B, C, D, z, bias, True)
    y = selective_state_update_triton(fast_state, x, dt, A, B, C, D, z, bias, True)
    tol = {"rtol": TOL[dtype], "atol": TOL[dtype]}
    torch.testing.assert_close(y, y_ref, **tol)
    torch.testing.assert_close(fast_state, ref_state, **tol)


def test_state_update_continues_the_scan():
    inputs = {k: v.detach() for k, v in make_inputs(2, 3, 12, 5, torch.float32, optional=False).items()}
    u, delta, A, B, C = inputs.values()
    y_full = selective_scan_ref(u, delta, A, B, C)
    _, state = selective_scan_triton(u[..., :11], delta[..., :11], A, B[..., :11], C[..., :11], return_last_state=True)
    y_last = selective_state_update_triton(state, u[..., 11], delta[..., 11], A, B[..., 11], C[..., 11])
    torch.testing.assert_close(y_last, y_full[..., 11], rtol=1e-5, atol=1e-5)


def test_triton_is_registered_for_cuda_only():
    for op in ("selective_scan", "selective_state_update"):
        assert "triton" in backends()[op]["registered"]
        assert backends()[op]["default"]["cpu"] != "triton"
    with pytest.raises(RuntimeError, match="unavailable on device 'cpu'.*CUDA"):
        selective_scan(
            *(v.detach() for v in make_inputs(1, 2, 3, 2, torch.float32, optional=False).values()), backend="triton"
        )


@pytest.mark.parametrize("op", ("selective_scan", "selective_state_update"))
def test_dispatch_picks_triton_on_cuda(op, cuda_visible):
    assert backends()[op]["default"]["cuda"] == "triton"
