"""Audio files in (ssmkit_audio.readers): labels from names and folders, rates, channels, formats, and bad files
refused by name; torchaudio's functional ops work beside the core's torch."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio
import torchaudio.functional as AF

from ssmkit.data import DataError
from ssmkit_audio import readers

SAMPLES = Path(__file__).parents[3] / "data" / "audio" / "fsdd"


def tone(seconds: float = 0.25, rate: int = 8000, hz: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.5 * np.sin(2 * np.pi * hz * t).astype(np.float32)
    return wave if channels == 1 else np.stack([wave] * channels, 1)


def write(path: Path, samples: np.ndarray, rate: int = 8000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples, rate)
    return path


def test_torchaudio_functional_ops_work_beside_the_core_torch():
    x = torch.from_numpy(tone())[None]
    assert AF.resample(x, 8000, 16000).shape == (1, 4000)
    mel = torchaudio.transforms.MelSpectrogram(8000, n_fft=256, hop_length=80, n_mels=40)(x)
    assert mel.shape == (1, 40, 26) and bool(torch.isfinite(mel).all())
    q = AF.mu_law_encoding(x, 256)
    assert 0 <= int(q.min()) and int(q.max()) <= 255
    assert (AF.mu_law_decoding(q, 256) - x).abs().max() < 0.02


def test_fsdd_names_give_digit_and_speaker():
    clips = readers.find_clips(SAMPLES)
    assert len(clips) == 20
    assert {c.label for c in clips} == {str(d) for d in range(10)}
    assert {c.speaker for c in clips} == {"george", "theo"}
    clip = readers.read_clip(clips[0].path, 8000)
    assert clip.samples.dtype == np.float32 and clip.samples.ndim == 1 and clip.resampled_from is None


def test_labels_from_sub_folders(tmp_path):
    for label in ("yes", "no"):
        write(tmp_path / label / f"{label}_a.wav", tone())
    (tmp_path / "notes.txt").write_text("not audio")
    clips = readers.find_clips(tmp_path)
    assert [(c.label, c.speaker) for c in clips] == [("no", None), ("yes", None)]
    with pytest.raises(DataError, match="no .wav / .flac / .ogg / .mp3 files"):
        readers.find_clips(tmp_path, labels="filename")
    with pytest.raises(DataError, match="cannot take a label"):
        readers.clip_from_name(tmp_path / "unlabelled.wav")


@pytest.mark.parametrize("suffix", [".flac", ".ogg", ".mp3"])
def test_other_formats_decode(tmp_path, suffix):
    path = write(tmp_path / f"3_x_0{suffix}", tone(0.5))
    samples = readers.read_clip(path, 8000).samples
    assert abs(len(samples) - 4000) < 1200  # MP3 frames pad the ends
    assert 0.3 < np.abs(samples).max() < 0.7


def test_wrong_rate_is_resampled_or_refused(tmp_path):
    path = write(tmp_path / "1_x_0.wav", tone(0.5, rate=16000), rate=16000)
    clip = readers.read_clip(path, 8000)
    assert clip.resampled_from == 16000 and len(clip.samples) == 4000
    spectrum = np.abs(np.fft.rfft(clip.samples))
    assert abs(np.argmax(spectrum) * 8000 / 4000 - 440) < 4  # still a 440 Hz tone
    with pytest.raises(DataError, match=r"1_x_0.wav: sample rate 16000 Hz, expected 8000 Hz"):
        readers.read_clip(path, 8000, wrong_rate="refuse")


def test_stereo_is_mixed_or_refused(tmp_path):
    samples = tone(channels=2)
    samples[:, 1] = 0.0
    path = write(tmp_path / "2_x_0.wav", samples)
    clip = readers.read_clip(path, 8000)
    assert clip.mixed and np.allclose(clip.samples, samples[:, 0] / 2, atol=1e-4)
    with pytest.raises(DataError, match=r"2_x_0.wav: has 2 channels; mono expected"):
        readers.read_clip(path, 8000, stereo="refuse")


def test_unreadable_truncated_and_empty_files_are_named(tmp_path):
    garbage = tmp_path / "0_x_0.wav"
    garbage.write_bytes(b"not a wav file" * 20)
    with pytest.raises(DataError, match=r"0_x_0.wav: unreadable audio file"):
        readers.read_clip(garbage, 8000)
    whole = (SAMPLES / "0_george_0.wav").read_bytes()
    truncated = tmp_path / "0_x_1.wav"
    truncated.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match=r"0_x_1.wav: truncated: 1181 samples read"):
        readers.read_clip(truncated, 8000)
    empty = write(tmp_path / "0_x_2.wav", np.zeros(0, np.float32))
    with pytest.raises(DataError, match=r"0_x_2.wav: holds no samples"):
        readers.read_clip(empty, 8000)
    with pytest.raises(DataError, match="not a folder"):
        readers.find_clips(tmp_path / "missing")
