"""HiSS is chunk-local at its low level and causal end to end; every encoder and forecaster keeps its contract."""

import pytest
import torch

from ssmkit.models.backbone import BackboneConfig
from ssmkit_sensors.forecasting import DLinear, RevIN, SSMForecaster
from ssmkit_sensors.models import LOW, HiSS, build_encoder

TINY = BackboneConfig(d_model=8, n_layers=1, mixer="mamba")
FLAT_MIXERS = ("mamba", "s4d", "attention")


def hiss(chunk_size=4, low_mixer="mamba", high_mixer="mamba"):
    return HiSS(
        3, chunk_size, BackboneConfig.of(TINY, mixer=low_mixer), BackboneConfig.of(TINY, d_model=12, mixer=high_mixer)
    )


@pytest.mark.parametrize("low_mixer", ["mamba", "s5", "s4d"])
def test_low_level_sees_only_its_own_chunk(low_mixer):
    model = hiss(low_mixer=low_mixer).eval()
    x = torch.randn(2, 20, 3)
    before = model.chunk_features(x)
    x2 = x.clone()
    x2[:, 8:12] += torch.randn(2, 4, 3)  # chunk 2 of 5
    after = model.chunk_features(x2)
    assert before.shape == (2, 5, 8)
    changed = (before - after).abs().amax(dim=(0, 2)) > 1e-6
    assert changed.tolist() == [False, False, True, False, False]


@pytest.mark.parametrize("encoder", ["hiss", "flat", "lstm"])
def test_changing_future_inputs_never_changes_past_outputs(encoder):
    model = build_encoder(encoder, 3, BackboneConfig.of(TINY, d_model=12), chunk_size=4, low=TINY).eval()
    x = torch.randn(2, 24, 3)
    for t0 in (1, 7, 8, 13):
        x2 = x.clone()
        x2[:, t0:] = torch.randn(2, 24 - t0, 3)
        y, y2 = model(x), model(x2)
        assert y.shape == (2, 24, 12)
        torch.testing.assert_close(y[:, :t0], y2[:, :t0], rtol=0, atol=1e-6)
        assert (y[:, t0:] - y2[:, t0:]).abs().max() > 1e-4  # the future does reach later outputs


def test_hiss_output_holds_the_last_completed_chunk():
    model = hiss(chunk_size=4).eval()
    x = torch.randn(1, 12, 3)
    dense, states = model(x), model.chunk_states(x)
    assert states.shape == (1, 4, 12)
    for t in range(12):
        torch.testing.assert_close(dense[0, t], states[0, (t + 1) // 4])


def test_hiss_low_level_is_its_own_setting_with_a_default():
    model = build_encoder("hiss", 3, TINY)
    assert model.high.config == TINY and model.low.config == LOW == BackboneConfig(d_model=32, n_layers=1)
    assert model.start.shape == (32,) and model.d_output == 8
    low = BackboneConfig.of(TINY, d_model=6, dropout=0.5)
    assert build_encoder("hiss", 3, TINY, low=low).low.config == low  # not the high level's settings


@pytest.mark.parametrize("mixer", FLAT_MIXERS)
def test_flat_baselines_are_causal_registry_mixers(mixer):
    model = build_encoder("flat", 3, BackboneConfig.of(TINY, mixer=mixer)).eval()
    x = torch.randn(1, 16, 3)
    x2 = x.clone()
    x2[:, 10:] += 1.0
    torch.testing.assert_close(model(x)[:, :10], model(x2)[:, :10], rtol=0, atol=1e-6)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="not a multiple of chunk_size 4"):
        hiss(chunk_size=4)(torch.randn(1, 10, 3))
    with pytest.raises(ValueError, match="HiSS needs causal"):
        HiSS(3, 4, BackboneConfig.of(TINY, bidirectional=True), TINY)
    with pytest.raises(ValueError, match="not causal"):
        build_encoder("flat", 3, BackboneConfig.of(TINY, mixer="attention", mixer_kwargs={"causal": False}))
    with pytest.raises(ValueError, match="encoder must be one of"):
        build_encoder("gru", 3, TINY)


def test_revin_round_trip_and_per_series_statistics():
    revin = RevIN(3)
    with torch.no_grad():
        revin.weight.uniform_(0.5, 2.0)
        revin.bias.normal_()
    x = torch.randn(4, 30, 3) * 5 + 2
    mean, std = revin.stats(x)
    z = (x - mean) / std
    torch.testing.assert_close(z.mean(1), torch.zeros(4, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(revin.denormalise(revin.normalise(x, mean, std), mean, std), x, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("fourier", [None, {"n_bins": 16, "n_freqs": 3, "low": -4.0, "high": 4.0, "d_head": 4}])
def test_ssm_forecaster_is_channel_independent_and_scale_equivariant(fourier):
    model = SSMForecaster(3, 32, 8, TINY, patch_len=8, stride=4, fourier=fourier).eval()
    x = torch.randn(2, 32, 3)
    y = model(x)
    assert y.shape == (2, 8, 3)
    x2 = x.clone()
    x2[..., 1] = torch.randn(2, 32) * 3
    torch.testing.assert_close(model(x2)[..., [0, 2]], y[..., [0, 2]])
    torch.testing.assert_close(model(x * 10 + 5), y * 10 + 5, rtol=1e-4, atol=1e-3)  # RevIN
    assert torch.isfinite(model.loss(x, torch.randn(2, 8, 3)))
    if fourier:
        assert model.sample(x, 5).shape == (5, 2, 8, 3)
    else:
        with pytest.raises(ValueError, match="needs the Fourier head"):
            model.sample(x, 5)


def test_dlinear_decomposition_adds_up_and_trend_is_the_moving_average():
    model = DLinear(40, 10, kernel_size=5)
    x = torch.randn(2, 40, 3)
    trend, remainder = model.decompose(x)
    torch.testing.assert_close(trend + remainder, x.transpose(1, 2))
    torch.testing.assert_close(trend[..., 10], x[:, 8:13].mean(1))
    assert model(x).shape == (2, 10, 3)
    with pytest.raises(ValueError, match="must be odd"):
        DLinear(40, 10, kernel_size=4)
