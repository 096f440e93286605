import pytest
import torch

from ssmkit.ops import fft_conv, fft_conv_ref
from ssmkit.ops.fft_conv import fast_fft_size


def direct(u, k, D):
    """The definition, as a double loop."""
    B, H, L = u.shape
    y = torch.zeros_like(u)
    for t in range(L):
        for s in range(min(t + 1, k.shape[1])):
            y[..., t] += k[:, s] * u[..., t - s]
    return y + D[:, None] * u


@pytest.mark.parametrize(("L", "Lk"), [(1, 1), (17, 17), (33, 5), (64, 64)])
def test_reference_matches_definition(L, Lk):
    u, k, D = (
        torch.randn(2, 3, L, dtype=torch.float64),
        torch.randn(3, Lk, dtype=torch.float64),
        torch.randn(3, dtype=torch.float64),
    )
    torch.testing.assert_close(fft_conv_ref(u, k, D), direct(u, k, D))


def test_fast_size_is_5_smooth_and_large_enough():
    for n in (1, 7, 127, 1000, 4097):
        m = fast_fft_size(n)
        assert m >= n
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        assert r == 1


def test_errors():
    with pytest.raises(ValueError, match="k is longer than the input"):
        fft_conv(torch.randn(1, 2, 4), torch.randn(2, 5))
    with pytest.raises(ValueError, match=r"k must have shape \(H, Lk\) with H=2"):
        fft_conv(torch.randn(1, 2, 4), torch.randn(3, 4))
