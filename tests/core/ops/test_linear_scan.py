import pytest
import torch

from ssmkit.ops import linear_scan


def test_matches_closed_form():
    a, b = torch.rand(2, 9, 3, dtype=torch.float64), torch.randn(2, 9, 3, dtype=torch.float64)
    h = linear_scan(a, b)
    for t in range(9):
        expected = sum(torch.prod(a[:, s + 1 : t + 1], dim=1) * b[:, s] for s in range(t + 1))
        torch.testing.assert_close(h[:, t], expected)


def test_resets_equal_running_pieces_separately():
    a = torch.complex(torch.rand(2, 12, 3), torch.rand(2, 12, 3)).to(torch.cdouble) * 0.5
    b = torch.randn(2, 12, 3, dtype=torch.cdouble)
    h0 = torch.randn(2, 3, dtype=torch.cdouble)
    resets = torch.zeros(2, 12, dtype=torch.bool)
    resets[:, 5] = True
    resets[1, 9] = True
    h = linear_scan(a, b, h0, resets)
    first = linear_scan(a[:, :5], b[:, :5], h0)
    torch.testing.assert_close(h[:, :5], first)
    torch.testing.assert_close(h[0, 5:], linear_scan(a[:1, 5:], b[:1, 5:])[0])
    torch.testing.assert_close(h[1, 5:9], linear_scan(a[1:, 5:9], b[1:, 5:9])[0])
    torch.testing.assert_close(h[1, 9:], linear_scan(a[1:, 9:], b[1:, 9:])[0])


def test_last_state_gradients_and_errors():
    a, b = torch.rand(1, 4, 2, requires_grad=True), torch.randn(1, 4, 2, requires_grad=True)
    h, last = linear_scan(a, b, return_last_state=True)
    torch.testing.assert_close(last, h[:, -1])
    (h.sum() + last.sum()).backward()
    assert a.grad is not None and b.grad is not None
    with pytest.raises(ValueError, match="resets must be a bool tensor"):
        linear_scan(a, b, resets=torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"a must have shape \(B, L, D\)"):
        linear_scan(a[:, :3], b)
