"""The Triton linear scan against the reference `linear_scan_ref`, run by the Triton interpreter on CPU tensors.

Inputs and the check are the CPU kernel tests' `make_inputs` (|a| < 1, random resets and one at step 0) and
`assert_matches_reference` (h, last state and every gradient for a random cotangent of both). Tolerance there:
largest absolute difference / largest magnitude of the reference <= 1e-12 in (complex) double and 1e-5 in
(complex) single precision; the kernel composes steps as a parallel scan within chunks of BLOCK_L=8 (under the
interpreter), so it rounds differently from the loop. Shapes are tiny because the interpreter is slow.
"""

import pytest
import torch
from test_cpu_linear_scan import assert_matches_reference as assert_matches
from test_cpu_linear_scan import make_inputs

from ssmkit.ops import backends, linear_scan, linear_scan_ref
from ssmkit_kernels.triton.linear_scan import linear_scan_triton


def assert_matches_reference(inputs: dict) -> None:
    assert_matches(inputs, fast_fn=linear_scan_triton)


@pytest.mark.parametrize(
    ("batch", "length", "dim", "with_h0", "reset_rate"),
    [(1, 1, 1, True, 0.0), (1, 9, 1, False, 0.3), (3, 16, 6, False, 0.0), (2, 7, 9, True, 0.5)],
)
def test_odd_shapes_match_reference(batch, length, dim, with_h0, reset_rate):
    """One step, one channel, L a multiple of the block, D past one block, with and without h0 / resets."""
    assert_matches_reference(make_inputs(batch, length, dim, torch.complex64, with_h0, reset_rate, seed=length))


def test_real_decay_with_complex_input_gives_real_gradient():
    g = torch.Generator().manual_seed(0)
    a = (torch.rand(2, 10, 3, generator=g) * 0.9).requires_grad_()
    b = torch.randn(2, 10, 3, generator=g, dtype=torch.complex64).requires_grad_()
    (da_fast,) = torch.autograd.grad(linear_scan_triton(a, b).abs().sum(), a)
    (da_ref,) = torch.autograd.grad(linear_scan_ref(a, b).abs().sum(), a)
    assert da_fast.dtype == torch.float32
    torch.testing.assert_close(da_fast, da_ref, rtol=1e-5, atol=1e-5)


def test_triton_is_registered_for_cuda_only():
    assert "triton" in backends()["linear_scan"]["registered"]
    assert backends()["linear_scan"]["default"]["cpu"] != "triton"
    with pytest.raises(RuntimeError, match="unavailable on device 'cpu'.*CUDA"):
        linear_scan(torch.rand(1, 3, 2), torch.rand(1, 3, 2), backend="triton")


def test_dispatch_picks_triton_on_cuda(cuda_visible):
    assert backends()["linear_scan"]["default"]["cuda"] == "triton"
