"""FourierHead: a Fourier-series categorical over bins of a continuous value."""

import math

import pytest
import torch

from ssmkit.models.heads import FourierHead


def test_logits_are_the_stated_fourier_series_of_the_bin_centres():
    head = FourierHead(8, n_bins=16, n_freqs=3, low=-2.0, high=2.0)
    h = torch.randn(5, 8)
    coeffs = head.proj(h)  # (5, 6): a_1..a_3, b_1..b_3
    centres = -2.0 + 0.25 * (torch.arange(16) + 0.5)
    unit = centres / 2.0
    expected = sum(
        coeffs[:, k - 1, None] * torch.cos(math.pi * k * unit) + coeffs[:, 2 + k, None] * torch.sin(math.pi * k * unit)
        for k in (1, 2, 3)
    )
    torch.testing.assert_close(head(h), expected, rtol=1e-5, atol=1e-5)


def test_mean_sample_and_bins_respect_the_range():
    head = FourierHead(4, n_bins=10, n_freqs=2, low=0.0, high=5.0)
    logits = head(torch.randn(3, 7, 4))
    assert logits.shape == (3, 7, 10)
    mean = head.mean(logits)
    samples = head.sample(logits, generator=torch.Generator().manual_seed(0))
    assert mean.shape == samples.shape == (3, 7)
    assert bool((mean > 0).all() and (mean < 5).all() and (samples >= 0).all() and (samples <= 5).all())
    assert head.bin_index(torch.tensor([-3.0, 0.0, 0.49, 0.5, 4.99, 9.0])).tolist() == [0, 0, 0, 1, 9, 9]


def test_fitting_a_bimodal_target_lowers_the_nll_and_puts_mass_on_both_modes():
    torch.manual_seed(0)
    head = FourierHead(1, n_bins=32, n_freqs=6, low=-3.0, high=3.0)
    y = torch.cat([torch.randn(256) * 0.2 - 1.5, torch.randn(256) * 0.2 + 1.5])
    h = torch.ones(512, 1)
    opt = torch.optim.Adam(head.parameters(), lr=0.1)
    first = head.nll(head(h), y).item()
    for _ in range(200):
        opt.zero_grad()
        loss = head.nll(head(h), y)
        loss.backward()
        opt.step()
    assert loss.item() < first - 0.5
    probs = head(h[:1]).softmax(-1)[0]
    near = lambda v: probs[head.bin_index(torch.tensor(v))].item()  # noqa: E731
    assert near(-1.5) > 4 * near(0.0) and near(1.5) > 4 * near(0.0)


def test_bad_configuration_is_named():
    with pytest.raises(ValueError, match="low < high"):
        FourierHead(4, low=1.0, high=1.0)
    with pytest.raises(ValueError, match="n_freqs >= 1"):
        FourierHead(4, n_freqs=0)
