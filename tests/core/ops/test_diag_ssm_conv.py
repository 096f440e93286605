import pytest
import torch

from ssmkit.ops import fft_conv, s4d_kernel
from ssmkit.ops.diag_ssm_conv import diag_ssm_conv


def ssm(H=3, N=4, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    A = torch.complex(-torch.rand(H, N, generator=g, dtype=dtype) - 0.1, torch.randn(H, N, generator=g, dtype=dtype))
    C = torch.complex(torch.randn(H, N, generator=g, dtype=dtype), torch.randn(H, N, generator=g, dtype=dtype))
    log_dt = torch.log(torch.rand(H, generator=g, dtype=dtype) * 0.5 + 0.05)
    return log_dt, A, C


def test_reference_is_the_convolution_with_the_s4d_kernel_and_its_state_the_recurrence():
    log_dt, A, C = ssm()
    u, D = torch.randn(2, 3, 30, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    y, h = diag_ssm_conv(u, log_dt, A, C, D, return_final_state=True, backend="reference")
    torch.testing.assert_close(y, fft_conv(u, s4d_kernel(log_dt, A, C, 30), D))
    # continuing from the state equals running the concatenation
    u2 = torch.randn(2, 3, 11, dtype=torch.float64)
    y2 = diag_ssm_conv(u2, log_dt, A, C, D, initial_state=h, backend="reference")
    torch.testing.assert_close(
        y2, diag_ssm_conv(torch.cat([u, u2], -1), log_dt, A, C, D, backend="reference")[..., 30:]
    )


def test_errors():
    log_dt, A, C = ssm()
    with pytest.raises(ValueError, match="complex"):
        diag_ssm_conv(torch.randn(1, 3, 5), log_dt, A.real, C)
    with pytest.raises(ValueError, match=r"initial_state must have shape \(B, H, N\)"):
        diag_ssm_conv(torch.randn(1, 3, 5, dtype=torch.float64), log_dt, A, C, initial_state=torch.zeros(1, 3, 5))
