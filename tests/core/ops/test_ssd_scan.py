import pytest
import torch

from ssmkit.ops import selective_scan, ssd_scan


def rand_args(b=2, length=37, h=4, p=3, g=2, n=5, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(b, length, h, p, generator=gen, dtype=dtype)
    dt = torch.randn(b, length, h, generator=gen, dtype=dtype)
    A = -torch.rand(h, generator=gen, dtype=dtype) * 3
    B = torch.randn(b, length, g, n, generator=gen, dtype=dtype)
    C = torch.randn(b, length, g, n, generator=gen, dtype=dtype)
    return x, dt, A, B, C


@pytest.mark.parametrize(("backend", "gated"), [("reference", False), ("reference", True), ("chunked", True)])
def test_equals_selective_scan_with_tied_A(backend, gated):
    """SSD is Mamba-1's selective scan with A shared by a head's channels and B, C by a group's heads. `gated` adds
    dt_bias and softplus before the recurrence and the D skip (per head and channel) and silu(z) after it, which the
    selective scan's CPU kernel fuses (it does not share SSD's torch code for them)."""
    x, dt, A, B, C = rand_args(g=1)
    b, length, h, p = x.shape
    D = z = bias = None
    if gated:
        gen = torch.Generator().manual_seed(3)
        D, z, bias = (torch.randn(shape, generator=gen, dtype=x.dtype) for shape in ((h, p), x.shape, (h,)))
        bias[0] = 25.0  # past softplus's threshold of 20
    else:
        dt = torch.nn.functional.softplus(dt)
    y = ssd_scan(x, dt, A, B, C, 16, D, z, bias, dt_softplus=gated, backend=backend)
    as_s6 = selective_scan(
        x.flatten(2).transpose(1, 2),  # (b, h*p, l)
        dt.repeat_interleave(p, dim=2).transpose(1, 2),
        A.repeat_interleave(p)[:, None].expand(h * p, B.shape[-1]),
        B[:, :, 0].transpose(1, 2),
        C[:, :, 0].transpose(1, 2),
        *((D.flatten(), z.flatten(2).transpose(1, 2), bias.repeat_interleave(p)) if gated else ()),
        delta_softplus=gated,
    )
    torch.testing.assert_close(y, as_s6.transpose(1, 2).unflatten(2, (h, p)))


def run_with_grads(backend, dtype, length, chunk):
    """Outputs and every gradient of a weighted loss, inputs made in float64 then cast to `dtype`."""
    x, dt, A, B, C = rand_args(length=length, seed=length)
    gen = torch.Generator().manual_seed(7)
    D, z, bias, s0 = (
        torch.randn(shape, generator=gen, dtype=torch.float64) for shape in ((4, 3), x.shape, (4,), (2, 4, 3, 5))
    )
    leaves = [t.to(dtype).requires_grad_() for t in (x, dt, A, B, C, D, z, bias, s0)]
    y, final = ssd_scan(*leaves[:5], chunk, *leaves[5:], dt_softplus=True, return_final_states=True, backend=backend)
    weights = torch.linspace(-1, 1, y.numel(), dtype=dtype).view_as(y)
    ((y * weights).sum() + final.square().sum()).backward()
    return [y, final] + [t.grad for t in leaves]


@pytest.mark.parametrize(("length", "chunk"), [(16, 16), (33, 64), (70, 32)])
def test_chunked_float32_error_against_float64_truth(length, chunk):
    """In float32 the chunked form takes differences of within-chunk cumulative decays (as mamba_ssm's
    kernels do), so its rounding differs from the sequential loop's: each output and gradient must be
    within 3e-5 of the float64 truth, relative to that tensor's largest magnitude."""
    truth = run_with_grads("reference", torch.float64, length, chunk)
    names = "y final x dt A B C D z dt_bias initial_states".split()
    for name, t, fast in zip(names, truth, run_with_grads("chunked", torch.float32, length, chunk), strict=True):
        error = (fast.double() - t).abs().max() / t.abs().max()
        assert error < 3e-5, f"{name}: relative error {error:.2e}"


def test_final_state_continues_the_scan():
    x, dt, A, B, C = rand_args(length=20)
    y_full = ssd_scan(x, dt, A, B, C, 8, dt_softplus=True)
    y1, s = ssd_scan(x[:, :13], dt[:, :13], A, B[:, :13], C[:, :13], 8, dt_softplus=True, return_final_states=True)
    y2 = ssd_scan(x[:, 13:], dt[:, 13:], A, B[:, 13:], C[:, 13:], 8, initial_states=s, dt_softplus=True)
    torch.testing.assert_close(torch.cat([y1, y2], 1), y_full)


def test_long_sequence_decays_without_overflow():
    """Large cumulative decay (dt*A summed over a chunk ~ -1e4) stays finite in float32."""
    x, dt, A, B, C = rand_args(length=256, dtype=torch.float32)
    y = ssd_scan(x, dt.abs() * 10 + 5, A - 5, B, C, 64)
    assert bool(torch.isfinite(y).all())
    torch.testing.assert_close(
        y, ssd_scan(x, dt.abs() * 10 + 5, A - 5, B, C, backend="reference"), atol=1e-4, rtol=1e-4
    )


def test_errors_name_the_argument():
    x, dt, A, B, C = rand_args()
    with pytest.raises(ValueError, match=r"dt must have shape \(b, l, h\) with b=2, l=37, h=4"):
        ssd_scan(x, dt[:, :5], A, B, C)
    with pytest.raises(ValueError, match="3 groups, which must divide the number of heads h=4"):
        ssd_scan(x, dt, A, B[:, :, :1].expand(-1, -1, 3, -1), C[:, :, :1].expand(-1, -1, 3, -1))
    with pytest.raises(ValueError, match=r"initial_states must have shape \(b, h, p, n\)"):
        ssd_scan(x, dt, A, B, C, initial_states=torch.zeros(2, 4, 3, 6))
