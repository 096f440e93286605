"""The numba kernels run on torch's thread count and leave it as it was (both share OpenMP)."""

import pytest
import torch

pytest.importorskip("numba")

from ssmkit_kernels.cpu.linear_scan import linear_scan_numba  # noqa: E402
from ssmkit_kernels.cpu.selective_scan import selective_scan_numba  # noqa: E402


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_torch_set_num_threads_survives_the_kernels(one_thread):
    a = (torch.rand(2, 16, 8) * 0.9).requires_grad_()
    b = torch.randn(2, 16, 8, requires_grad=True)
    linear_scan_numba(a, b, None, torch.rand(2, 16) < 0.2).sum().backward()
    assert torch.get_num_threads() == 1
    u, delta = torch.randn(2, 8, 16, requires_grad=True), torch.rand(2, 8, 16)
    A, B, C = -torch.rand(8, 4), torch.randn(2, 4, 16), torch.randn(2, 4, 16)
    selective_scan_numba(u, delta, A, B, C).sum().backward()
    assert torch.get_num_threads() == 1
