import math

import pytest
import torch

import ssmkit


def test_ring_initialisation_and_gamma_normalisation():
    torch.manual_seed(0)
    mixer = ssmkit.create_mixer("lru", 4, d_state=256, r_min=0.5, r_max=0.8, max_phase=math.pi / 4)
    lam, B, _ = mixer._dynamics()
    r = lam.abs()
    assert 0.5 <= r.min() and r.max() <= 0.8
    assert 0.0 <= lam.angle().min() and lam.angle().max() <= math.pi / 4
    # uniform in area on the ring: |λ|^2 is uniform on [r_min^2, r_max^2], so its mean is the midpoint
    assert abs(r.square().mean().item() - (0.25 + 0.64) / 2) < 0.03
    torch.testing.assert_close(torch.exp(mixer.gamma_log), torch.sqrt(1 - r.square()))


def test_gamma_normalisation_keeps_white_noise_variance():
    """With γ = sqrt(1 - |λ|^2), the stationary variance of h for white-noise B u equals that of B u."""
    torch.manual_seed(0)
    mixer = ssmkit.create_mixer("lru", 16, d_state=4, r_min=0.9, r_max=0.95).double()
    lam, B, _ = mixer._dynamics()
    x = torch.randn(64, 600, 16, dtype=torch.float64)
    bu = torch.einsum("blh,ph->blp", x.to(B.dtype), B)
    h = ssmkit.ops.linear_scan(lam.expand_as(bu), bu)
    ratio = h[:, 300:].abs().square().mean((0, 1)) / (B.abs().square().sum(1) / torch.exp(2 * mixer.gamma_log))
    torch.testing.assert_close(ratio, torch.ones_like(ratio), atol=0.1, rtol=0)


def test_rejects_an_unstable_ring():
    with pytest.raises(ValueError, match="r_max < 1"):
        ssmkit.create_mixer("lru", 4, r_min=0.5, r_max=1.0)
