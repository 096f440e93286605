"""The Triton SSD scan against the reference `ssd_scan_ref`, run by the Triton interpreter on CPU tensors.

Each case compares y, the final state and the gradients of every input (x, dt, A, B, C, D, z, dt_bias,
initial_states) for a fixed weighted loss. Tolerance, relative to each reference tensor's largest magnitude:
1e-12 in float64 (same math, another order); in float32 the kernel's output must be within 3e-5 of the float64
truth, as for the torch chunked backend: both take differences of within-chunk cumulative decays, whose rounding
differs from the sequential loop's (measured <= 2e-6). Chunks are 16 steps under the interpreter.
"""

import pytest
import torch

from ssmkit.ops import backends, ssd_scan, ssd_scan_ref
from ssmkit_kernels.triton.ssd_scan import ssd_scan_triton

NAMES = ("y", "final", "x", "dt", "A", "B", "C", "D", "z", "dt_bias", "initial_states")


def make_leaves(b: int, length: int, h: int, p: int, g: int, n: int, d_shape: tuple, seed: int) -> list:
    """x, dt, A, B, C, D, z, dt_bias, initial_states in float64; dt > 0 and A < 0, a decaying recurrence."""
    gen = torch.Generator().manual_seed(seed)
    shapes = [(b, length, h, p), (b, length, h), (h,), (b, length, g, n), (b, length, g, n)]
    shapes += [d_shape, (b, length, h, p), (h,), (b, h, p, n)]
    leaves = [torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes]
    leaves[1], leaves[2] = leaves[1].abs(), -leaves[2].abs() * 2
    return leaves


def run_with_grads(fn, leaves: list, dtype: torch.dtype, chunk: int) -> dict:
    leaves = [t.to(dtype).requires_grad_() for t in leaves]
    y, final = fn(*leaves[:5], chunk, *leaves[5:], dt_softplus=True, return_final_states=True)
    weights = torch.linspace(-1, 1, y.numel(), dtype=dtype).view_as(y)
    grads = torch.autograd.grad((y * weights).sum() + final.square().sum(), leaves)
    return dict(zip(NAMES, (y, final, *grads), strict=True))


def assert_close_to_truth(leaves: list, dtype: torch.dtype, chunk: int, tol: float) -> None:
    truth = run_with_grads(ssd_scan_ref, leaves, torch.float64, chunk)
    fast = run_with_grads(ssd_scan_triton, leaves, dtype, chunk)
    for name, t in truth.items():
        assert fast[name].dtype == dtype and fast[name].shape == t.shape, name
        err = (fast[name].double() - t).abs().max() / t.abs().max()
        assert err <= tol, f"{name}: relative error {err:.2e}"


@pytest.mark.parametrize(
    ("b", "length", "h", "p", "g", "n", "d_shape"),
    [
        (1, 16, 1, 1, 1, 1, (1,)),  # B=1, one head, p=n=1, L one whole chunk
        (1, 1, 3, 17, 3, 7, (3,)),  # one step; p past one 16-wide tile, n not a power of two
    ],
)
def test_float64_matches_reference(b, length, h, p, g, n, d_shape):
    assert_close_to_truth(make_leaves(b, length, h, p, g, n, d_shape, seed=length), torch.float64, 16, 1e-12)


def test_float32_error_against_float64_truth():
    assert_close_to_truth(make_leaves(2, 40, 2, 4, 1, 3, (2, 4), seed=1), torch.float32, 64, 3e-5)


def test_final_state_continues_the_scan():
    x, dt, A, B, C = make_leaves(1, 30, 2, 2, 2, 3, (2,), seed=3)[:5]
    y_full = ssd_scan_ref(x, dt, A, B, C)
    y1, s = ssd_scan_triton(x[:, :19], dt[:, :19], A, B[:, :19], C[:, :19], return_final_states=True)
    y2 = ssd_scan_triton(x[:, 19:], dt[:, 19:], A, B[:, 19:], C[:, 19:], initial_states=s)
    torch.testing.assert_close(torch.cat([y1, y2], 1), y_full)


def test_triton_is_registered_for_cuda_only():
    assert "triton" in backends()["ssd_scan"]["registered"]
    assert backends()["ssd_scan"]["default"]["cpu"] != "triton"
    with pytest.raises(RuntimeError, match="unavailable on device 'cpu'.*CUDA"):
        ssd_scan(*make_leaves(1, 3, 1, 1, 1, 1, (1,), seed=0)[:5], backend="triton")


def test_state_tile_past_shared_memory_raises_clear_error():
    x, dt, A, B, C = make_leaves(1, 2, 1, 100, 1, 100, (1,), seed=0)[:5]
    with pytest.raises(ValueError, match=r"\(p, n\) = \(100, 100\).*padded to \(128, 128\).*backend='chunked'"):
        ssd_scan_triton(x, dt, A, B, C)


def test_dispatch_picks_triton_on_cuda(cuda_visible):
    assert backends()["ssd_scan"]["default"]["cuda"] == "triton"
