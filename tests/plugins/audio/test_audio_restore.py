"""audio.restore's pieces: the band split and its exact inverse, the MP3 / low-pass degradations, the chunked
overlap-add (no seams), both band-sequence networks, the spectral metrics, and bad data refused by name."""

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from ssmkit.data import DataError
from ssmkit.models import BackboneConfig
from ssmkit_audio import degrade
from ssmkit_audio.apollo import (
    BandRestorer,
    DualPathSSM,
    RoformerConv,
    band_layout,
    chunk_window,
    gain_shape,
    restore_in_chunks,
)
from ssmkit_audio.datamodules import RestorationData
from ssmkit_audio.spectral import codec_cutoff, lsd, mrstft_loss
from ssmkit_audio.synthetic import synthetic_music
from ssmkit_audio.tasks import AudioRestorer
from ssmkit_audio.wavenet import n_parameters

RATE = 16000
LAYOUT = dict(sample_rate=RATE, n_fft=256, hop=128, splits_hz=[1000, 4000], widths_hz=[125, 500, 1000])
TINY = BackboneConfig(d_model=8, n_layers=1, mixer="s4d", mixer_kwargs={"d_state": 4})


def restorer(dtype: torch.dtype = torch.float64, zero: bool = False) -> BandRestorer:
    torch.manual_seed(0)
    model = BandRestorer(**LAYOUT, d_model=8, network=lambda k: DualPathSSM(TINY, k, 64)).to(dtype)
    if zero:
        model.merge.zero_()
    return model.eval()


@pytest.fixture(scope="module")
def music() -> np.ndarray:
    return synthetic_music(1, 0.5, RATE, seed=3)[0]


def test_bands_cover_every_bin_once_narrow_low_and_wide_high():
    for n_fft, rate in ((256, 16000), (512, 22050), (882, 44100)):
        widths = band_layout(n_fft, rate, [1000, 4000, 8000], [100, 250, 500, 1000])
        assert sum(widths) == n_fft // 2 + 1 and min(widths) >= 1
        assert widths[0] < widths[-1] and widths[:3] == sorted(widths[:3])
    with pytest.raises(ValueError, match="one more band width"):
        band_layout(256, RATE, [1000], [100])
    with pytest.raises(ValueError, match="must rise"):
        band_layout(256, RATE, [4000, 1000], [100, 200, 300])


def test_stft_bands_istft_with_identity_is_exact(music):
    model = restorer()
    x = torch.from_numpy(music).double()[None]
    spec = model.split.stft(x)
    bands = model.split.bands(spec)
    assert [b.shape[1] for b in bands] == model.widths
    for band in bands:
        gain, shape = gain_shape(band)
        assert torch.allclose(shape * gain[:, None], band, atol=1e-12)
    back = model.split.istft(torch.cat(bands, 1), x.shape[-1])
    assert (back - x).abs().max() < 1e-10
    assert (restorer(zero=True)(x) - x).abs().max() < 1e-10  # zero mapping + residual: the identity


def test_mp3_degradation_changes_the_signal_and_keeps_its_length(music):
    degraded = degrade.mp3_roundtrip(music, RATE, 16)
    assert degraded.shape == music.shape and degraded.dtype == np.float32
    error = np.abs(degraded - music).mean() / np.abs(music).mean()
    assert 0.02 < error < 1.0
    cutoff = codec_cutoff(torch.from_numpy(music)[None], torch.from_numpy(degraded)[None], n_fft=256)
    assert 3500 < int(cutoff) * RATE / 256 < 7000  # LAME's low-pass at 16 kbps (5.5 kHz measured)
    low = degrade.lowpass(music, RATE, 2000)
    assert low.shape == music.shape
    assert int(codec_cutoff(torch.from_numpy(music)[None], torch.from_numpy(low)[None], n_fft=256)) * RATE / 256 < 2100


def test_bitrate_follows_compression_level():
    noise = np.random.default_rng(0).normal(scale=0.1, size=2 * 22050).astype(np.float32)
    for kbps in (32, 64):
        size = len(degrade.mp3_bytes(noise, 22050, kbps))
        assert abs(size * 8 / 2 / 1000 - kbps) / kbps < 0.15
    assert degrade.compression_level(32, 44100) == pytest.approx((320 - 32) / 288)
    with pytest.raises(ValueError, match="MP3 codes only the sample rates"):
        degrade.compression_level(32, 20000)


def test_codec_delay_is_aligned_away():
    x = np.random.default_rng(1).normal(size=500).astype(np.float32)
    delayed = np.concatenate([np.zeros(37, np.float32), x, np.zeros(11, np.float32)])
    assert np.array_equal(degrade.align(delayed, x), x)
    assert degrade.align(x[:400], x).shape == (500,)


def test_chunked_overlap_add_equals_the_whole_file():
    window = chunk_window(100, 30, torch.float64)
    assert torch.allclose(window[70:] + window[:30], torch.ones(30, dtype=torch.float64))
    x = torch.from_numpy(np.concatenate(synthetic_music(1, 1.3, RATE, seed=5))).double()
    local = lambda b: torch.tanh(3 * b)  # noqa: E731 - a time-local restorer
    assert (restore_in_chunks(local, x, 4000, 1000) - local(x)).abs().max() < 1e-12
    identity = restorer(zero=True)  # STFT -> bands -> iSTFT per chunk, with the chunk's own RMS scaling
    assert (restore_in_chunks(identity, x, 4000, 1000, chunk_batch=2) - x).abs().max() < 1e-9
    model = restorer()
    short = x[:3000]
    assert torch.equal(restore_in_chunks(model, short, 4000, 1000), model(short[None])[0])
    whole, chunked = model(x[None])[0], restore_in_chunks(model, x, 8000, 2000)
    assert chunked.shape == x.shape and bool(torch.isfinite(chunked).all())
    assert (chunked - whole).square().mean() < 0.05 * whole.square().mean()  # random weights, global reach
    with pytest.raises(ValueError, match="overlap"):
        restore_in_chunks(local, x, 100, 100)


def test_both_networks_map_bands_by_time_and_restore_waveforms():
    h = torch.randn(2, 5, 7, 8)
    assert DualPathSSM(TINY, 5, 7)(h).shape == h.shape
    assert RoformerConv(8, 2, n_heads=2)(h).shape == h.shape
    hydra = BackboneConfig(d_model=8, n_layers=1, mixer="hydra", mixer_kwargs={"d_state": 4, "headdim": 4})
    assert DualPathSSM(hydra, 5, 7)(h).shape == h.shape
    x = torch.randn(3, 2000)
    for model in ("ssm", "roformer"):
        task = AudioRestorer(RATE, 2000, model=model, backbone=BackboneConfig.of(TINY, d_model=16), **tiny_layout())
        y = task(x)
        assert y.shape == x.shape and bool(torch.isfinite(y).all())
    with torch.no_grad():
        silence = task(torch.zeros(1, 2000))
    assert bool(torch.isfinite(silence).all()) and float(silence.abs().max()) < 1e-3


def tiny_layout() -> dict:
    return dict(n_fft=256, hop=128, band_splits_hz=[1000, 4000], band_widths_hz=[125, 500, 1000])


def test_roformer_is_parameter_matched():
    big = BackboneConfig(d_model=24, n_layers=2, mixer="s4d", mixer_kwargs={"d_state": 8}, mlp_ratio=2)
    counts = [
        n_parameters(AudioRestorer(RATE, 4000, model=m, backbone=big, **tiny_layout())) for m in ("ssm", "roformer")
    ]
    assert abs(counts[1] - counts[0]) / counts[0] < 0.1, counts


def test_loss_and_lsd_are_zero_for_a_perfect_restoration(music):
    x = torch.from_numpy(music)[None]
    assert float(mrstft_loss(x, x)) == 0.0
    assert float(lsd(x, x, torch.tensor([10]))) == 0.0
    assert bool(lsd(x, x, torch.tensor([10_000])).isnan().all())  # no bin above the cut-off


def test_data_splits_in_time_and_degrades_training_pairs(tmp_path):
    song = np.concatenate(synthetic_music(3, 2.0, RATE, seed=1))
    sf.write(tmp_path / "song.wav", song, RATE)
    sf.write(tmp_path / "speech.wav", song[:RATE], RATE)
    data = RestorationData(str(tmp_path), include=["song*"], sample_rate=RATE, clip_seconds=0.5, batch_size=2)
    data.setup("fit")
    assert {k: len(v) for k, v in data.datasets.items()} == {"train": 8, "val": 1, "test": 2}
    assert data.item_names("val") == ["song@4.2s"] and data.item_names("test") == ["song@4.8s", "song@5.3s"]
    degraded, clean = data.datasets["train"][0]
    assert degraded.shape == clean.shape == (RATE // 2,) and not torch.equal(degraded, clean)


def test_bad_data_is_refused_by_name(tmp_path):
    with pytest.raises(DataError, match="no audio files match"):
        RestorationData(str(tmp_path), include=["*.wav"]).setup("fit")
    stereo = np.stack([np.zeros(RATE, np.float32)] * 2, 1)
    sf.write(tmp_path / "stereo.wav", stereo, RATE)
    with pytest.raises(DataError, match="stereo.wav: has 2 channels"):
        RestorationData(str(tmp_path), sample_rate=RATE, stereo="refuse").setup("fit")
    (tmp_path / "stereo.wav").unlink()
    sf.write(tmp_path / "fast.wav", np.zeros(RATE, np.float32), 44100)
    with pytest.raises(DataError, match="fast.wav: sample rate 44100 Hz, expected 16000"):
        RestorationData(str(tmp_path), sample_rate=RATE, wrong_rate="refuse").setup("fit")
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(RATE, np.float32), RATE, format="WAV")
    (tmp_path / "fast.wav").write_bytes(buffer.getvalue()[:RATE])
    with pytest.raises(DataError, match="fast.wav: truncated"):
        RestorationData(str(tmp_path), sample_rate=RATE).setup("fit")
    with pytest.raises(ValueError, match="MP3 codes only"):
        RestorationData(sample_rate=20000)
    with pytest.raises(DataError, match="no such file"):
        RestorationData(predict_path=str(Path(tmp_path) / "missing.ogg"), sample_rate=RATE).setup("predict")
