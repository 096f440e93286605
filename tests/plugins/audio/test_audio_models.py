"""The classifiers' pieces honour `lengths`: whatever fills the padding, a clip in a padded batch gets the logits
it gets alone, for raw samples (S4D, Mamba, S4, with pooling between stages; behind the learned convolution or
filterbank stem, with or without the band convolution), log-mel frames and the CNN. The filterbank stem's own
shape, band placement, gradients and settings, and the band convolution's shapes and settings are tested too."""

import math

import pytest
import torch

from ssmkit.models import BackboneConfig
from ssmkit_audio.models import PCEN, BandCNN, ConvStem, FilterbankStem, LogMel, StagedSSM, pool_time
from ssmkit_audio.tasks import SpokenDigitClassifier

LENGTHS = torch.tensor([700, 333, 517])
VARIANTS = {
    "raw-s4d": dict(backbone={"d_model": 4, "n_layers": 1, "mixer": "s4d", "mixer_kwargs": {"d_state": 4}}),
    "raw-mamba": dict(backbone={"d_model": 4, "n_layers": 1, "mixer": "mamba", "mixer_kwargs": {"d_state": 4}}),
    "raw-s4": dict(backbone={"d_model": 4, "n_layers": 1, "mixer": "s4", "mixer_kwargs": {"d_state": 4}}),
    "logmel-s4d": dict(features="logmel", n_mels=8, pools=[], backbone={"d_model": 4, "n_layers": 1, "mixer": "s4d"}),
    "raw-stem-s4d": dict(
        stem_stride=4, stem_channels=3, backbone={"d_model": 4, "n_layers": 1, "mixer": "s4d", "mixer_kwargs": {}}
    ),
    "raw-filterbank-s4d": dict(
        stem="filterbank", stem_stride=16, stem_channels=6, backbone={"d_model": 4, "n_layers": 1, "mixer": "s4d"}
    ),
    "raw-filterbank-bandconv-s4d": dict(
        stem="filterbank",
        stem_stride=16,
        stem_channels=7,
        band_conv_channels=[3, 2],
        backbone={"d_model": 4, "n_layers": 1, "mixer": "s4d"},
    ),
    "raw-filterbank-cmvn-pcen-s4d": dict(
        stem="filterbank",
        stem_stride=8,
        stem_channels=6,
        logmel_norm="meanvar",
        stem_compression="pcen",
        backbone={"d_model": 4, "n_layers": 1, "mixer": "s4d"},
    ),
    "logmel-cmvn-s4d": dict(
        features="logmel", logmel_norm="meanvar", n_mels=8, pools=[], backbone={"d_model": 4, "mixer": "s4d"}
    ),
    "raw-stem-s4d-meanmax": dict(
        stem_stride=4, stem_channels=3, pooling="meanmax", backbone={"d_model": 4, "n_layers": 1, "mixer": "s4d"}
    ),
    "cnn": dict(model="cnn", features="logmel", n_mels=8, cnn_channels=[4, 4], cnn_keep_bands=True),
    "cnn-mean-bands": dict(model="cnn", features="logmel", n_mels=8, cnn_channels=[4, 4]),
}


def classifier(**settings) -> SpokenDigitClassifier:
    torch.manual_seed(0)
    settings = {"pools": [4, 2], "expand": 2, **settings}
    return SpokenDigitClassifier(n_classes=3, sample_rate=8000, max_length=800, **settings).double().eval()


def padded_batch(fill: float) -> torch.Tensor:
    waveforms = torch.randn(3, int(LENGTHS.max()), dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for b, n in enumerate(LENGTHS.tolist()):
        waveforms[b, n:] = fill * torch.randn(waveforms.shape[1] - n, dtype=torch.float64)
    return waveforms


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_padding_never_leaks(variant):
    model = classifier(**VARIANTS[variant])
    with torch.no_grad():
        clean, noisy = model(padded_batch(0.0), LENGTHS), model(padded_batch(100.0), LENGTHS)
        torch.testing.assert_close(noisy, clean, atol=1e-9, rtol=0)
        for b, n in enumerate(LENGTHS.tolist()):
            alone = model(padded_batch(0.0)[b : b + 1, :n], LENGTHS[b : b + 1])
            torch.testing.assert_close(clean[b : b + 1], alone, atol=1e-9, rtol=0)


def test_pool_time_rounds_lengths_up_and_zeroes_padding():
    x = torch.ones(2, 10, 3)
    x[1, 5:] = 7.0  # padding
    pooled, lengths = pool_time(x, torch.tensor([10, 5]), 4)
    assert pooled.shape == (2, 3, 3) and lengths.tolist() == [3, 2]
    assert pooled[0, :, 0].tolist() == [1.0, 1.0, 0.5]  # the last window: 2 samples and 2 zeros
    assert pooled[1, :, 0].tolist() == [1.0, 0.25, 0.0]


def test_logmel_frames_every_10_ms_mean_normalised():
    logmel = LogMel(8000, n_mels=16)
    waveforms = torch.randn(2, 1600)
    frames, lengths = logmel(waveforms, torch.tensor([1600, 800]))
    assert frames.shape == (2, 21, 16) and lengths.tolist() == [21, 11]
    assert frames[0].mean(0).abs().max() < 1e-4 and frames[1, :11].mean(0).abs().max() < 1e-4
    assert bool((frames[1, 11:] == 0).all())


def test_stages_widen_and_shorten():
    staged = StagedSSM(BackboneConfig(d_model=4, n_layers=1, mixer="s4"), 1, [4, 4], l_max=1000, expand=2)
    assert [s.d_model for s in staged.stages] == [4, 8, 16] and staged.d_model == 16
    assert [int(s.layers[0].mixer.l_kernel) for s in staged.stages] == [1000, 250, 63]
    h, lengths = staged(torch.randn(2, 1000, 1), torch.tensor([1000, 999]))
    assert h.shape == (2, 63, 16) and lengths.tolist() == [63, 63]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="the CNN baseline reads log-mel frames"):
        classifier(model="cnn")
    with pytest.raises(ValueError, match="model must be one of"):
        classifier(model="rnn")
    with pytest.raises(ValueError, match="pools and expand must be >= 1"):
        StagedSSM(None, 1, [0], 100)


def test_logmel_cmvn_gives_each_band_unit_variance_and_masks_only_in_training():
    logmel = LogMel(8000, n_mels=16, norm="meanvar", masks=2)
    waveforms, lengths = torch.randn(4, 1600), torch.tensor([1600, 800, 1600, 1200])
    frames, frame_lengths = logmel.eval()(waveforms, lengths)
    assert torch.allclose(frames[1, :11].square().mean(0), torch.ones(16), atol=1e-2)
    torch.manual_seed(0)
    masked, _ = logmel.train()(waveforms, lengths)
    zeroed = (masked == 0) & (frames != 0)
    assert zeroed.any() and bool((masked[~zeroed] == frames[~zeroed]).all())  # masking only sets values to 0
    assert bool((masked[1, 11:] == 0).all())  # padding stays zero
    with pytest.raises(ValueError, match="norm must be one of"):
        LogMel(8000, norm="max")


def test_stem_and_cnn_shapes():
    stem = ConvStem(5, 8)
    h, lengths = stem(torch.randn(2, 100, 1), torch.tensor([100, 17]))
    assert h.shape == (2, 13, 5) and lengths.tolist() == [13, 3] and bool((h[1, 3:] == 0).all())
    with pytest.raises(ValueError, match="stride >= 2"):
        ConvStem(4, 1)
    frames = torch.randn(2, 21, 40)
    assert BandCNN((4, 8, 6), 40, keep_bands=True)(frames, torch.tensor([21, 9]))[0].shape == (2, 3, 6 * 5)
    assert BandCNN((4, 8, 6), 40)(frames, torch.tensor([21, 9]))[0].shape == (2, 3, 6)


@pytest.mark.parametrize("compression", ["log", "pcen"])
def test_filterbank_stem_frames_lengths_and_batch_independence(compression):
    stem = FilterbankStem(8, 32, 8000, compression=compression).double()
    assert (stem.analysis_stride, stem.decimation) == (8, 4)  # energies at 1 kHz, frames at 250 Hz
    lengths = torch.tensor([1000, 333, 64])
    x = torch.randn(3, 1000, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    noisy = x.clone()
    for b, n in enumerate(lengths.tolist()):
        x[b, n:], noisy[b, n:] = 0.0, 100.0
    frames, frame_lengths = stem(x, lengths)
    assert frames.shape == (3, 32, 8) and frame_lengths.tolist() == [32, 11, 2]
    assert bool((frames[1, 11:] == 0).all()) and bool((frames[2, 2:] == 0).all())
    torch.testing.assert_close(stem(noisy, lengths)[0], frames, atol=1e-10, rtol=0)
    for b, n in enumerate(lengths.tolist()):
        alone, alone_lengths = stem(x[b : b + 1, :n], lengths[b : b + 1])
        assert alone_lengths.tolist() == [frame_lengths[b].item()]
        torch.testing.assert_close(alone[0], frames[b, : frame_lengths[b]], atol=1e-10, rtol=0)
    assert frames[0].mean(0).abs().max() < 1e-10  # each band mean-normalised over the clip's own frames


def test_filterbank_stem_starts_as_a_mel_filterbank():
    stem = FilterbankStem(40, 80, 8000)
    centres_hz = stem.centres.detach() * 8000 / (2 * math.pi)
    assert bool((centres_hz.diff() > 0).all()) and 20 < centres_hz[0] < 60 and 3600 < centres_hz[-1] < 4000
    assert bool((centres_hz.diff()[20:] > centres_hz.diff()[:20].max()).all())  # mel: wider apart up high
    tone = torch.zeros(1, 8000, 1)
    tone[0, :4000, 0] = torch.sin(2 * math.pi * 1000 * torch.arange(4000) / 8000)  # 1 kHz, then silence
    frames, _ = stem(tone, torch.tensor([8000]))
    contrast = frames[0, 10:40].mean(0) - frames[0, 60:90].mean(0)  # tone frames minus silent frames, per band
    assert int(contrast.argmax()) == int((centres_hz - 1000).abs().argmin())


def test_filterbank_stem_learns_its_filters_and_pcen():
    stem = FilterbankStem(6, 32, 8000, compression="pcen")
    frames, _ = stem(torch.randn(2, 800, 1), torch.tensor([800, 500]))
    (frames * torch.randn_like(frames)).sum().backward()
    for name in ("centres", "widths", "lowpass_widths", "pcen.alpha", "pcen.delta", "pcen.root"):
        grad = stem.get_parameter(name).grad
        assert grad is not None and bool(grad.isfinite().all()) and bool((grad != 0).all()), name


def test_filterbank_stem_bad_settings_are_refused():
    with pytest.raises(ValueError, match="stem must be one of"):
        classifier(stem="gabor", stem_stride=8)
    with pytest.raises(ValueError, match="stride >= 2"):
        FilterbankStem(8, 1, 8000)
    with pytest.raises(ValueError, match="norm must be one of"):
        FilterbankStem(8, 32, 8000, norm="max")
    with pytest.raises(ValueError, match="compression must be one of"):
        FilterbankStem(8, 32, 8000, compression="cubic")
    with pytest.raises(ValueError, match="window_ms"):
        FilterbankStem(8, 32, 8000, window_ms=0.2)


def test_pcen_smoother_is_the_recursion():
    pcen = PCEN(1, 0.1, 1e-8).double()
    energy = torch.rand(1, 1, 30, dtype=torch.float64)
    alpha = float(pcen.alpha[0])  # 0.96 as a float32 parameter
    smooth, expected = energy[0, 0, 0], []
    for e in energy[0, 0]:
        smooth = 0.9 * smooth + 0.1 * e
        expected.append((e / (1e-8 + smooth) ** alpha + 2.0) ** 0.5 - 2.0**0.5)
    torch.testing.assert_close(pcen(energy)[0, 0], torch.stack(expected), atol=1e-12, rtol=0)


def test_band_conv_keeps_the_frame_rate_and_pools_bands():
    conv = BandCNN([4, 3], 7, keep_bands=True, pool_time=False).double()
    assert conv.d_model == 3 * 2  # 7 bands -> 4 -> 2
    frames = torch.randn(2, 9, 7, dtype=torch.float64)
    frames[1, 5:] = 0.0  # padding, as the stem leaves it
    h, lengths = conv(frames, torch.tensor([9, 5]))
    assert h.shape == (2, 9, 6) and lengths.tolist() == [9, 5] and bool((h[1, 5:] == 0).all())
    alone, _ = conv(frames[1:, :5], torch.tensor([5]))
    torch.testing.assert_close(alone[0], h[1, :5], atol=1e-12, rtol=0)


def test_band_conv_bad_settings_are_refused():
    with pytest.raises(ValueError, match="band_conv_channels needs the filterbank stem"):
        classifier(stem="conv", stem_stride=8, band_conv_channels=[4])
    with pytest.raises(ValueError, match="band_conv_channels needs the filterbank stem"):
        classifier(features="logmel", n_mels=8, band_conv_channels=[4])
    with pytest.raises(ValueError, match="band_conv_channels must be >= 1"):
        classifier(stem="filterbank", stem_stride=16, stem_channels=6, band_conv_channels=[4, 0])
    assert classifier(stem="filterbank", stem_stride=16, stem_channels=6, band_conv_channels=[]).band_conv is None
