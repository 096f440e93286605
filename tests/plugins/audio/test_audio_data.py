"""SpokenDigitsData: the synthetic default, WAV folders, the split rules, padded batches with lengths, and the
conversions it warns about or refuses; the synthetic generator itself."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from ssmkit.data import DataError
from ssmkit_audio.augment import AugmentedClips, LengthBatches
from ssmkit_audio.datamodules import MuLawWindowsData, SpokenDigitsData, trim_silence
from ssmkit_audio.synthetic import synthetic_digits, words

SAMPLES = Path(__file__).parents[3] / "data" / "audio" / "fsdd"
SHARED_FSDD = Path(__file__).parents[3].parent / "shared" / "data" / "audio" / "fsdd"


def speaker_folder(root: Path, speakers=("ann", "bob", "cat"), digits=(0, 1), rate=8000, channels=1) -> Path:
    """FSDD-named clips of a tone per digit: <digit>_<speaker>_<index>.wav, two per speaker and digit."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for s in speakers:
        for d in digits:
            for i in range(2):
                n = int(rng.integers(rate // 8, rate // 3))
                t = np.arange(n) / rate
                wave = (0.3 * np.sin(2 * np.pi * (300 + 200 * d) * t)).astype(np.float32)
                sf.write(root / f"{d}_{s}_{i}.wav", wave if channels == 1 else np.stack([wave] * channels, 1), rate)
    return root


def test_synthetic_generator_is_seeded_and_varies_by_speaker():
    clips, labels, speakers = synthetic_digits(40, n_speakers=2, seed=3)
    again, _, _ = synthetic_digits(40, n_speakers=2, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(clips, again, strict=True))
    assert labels.tolist() == [i % 10 for i in range(40)] and set(speakers) == {"spk0", "spk1"}
    assert all(c.dtype == np.float32 and 0.2 * 8000 < len(c) < 0.75 * 8000 for c in clips)
    assert all(np.isfinite(c).all() and 0.45 < np.abs(c).max() < 0.55 for c in clips)
    assert len(words()) == 10 and len({w.formants.tobytes() for w in words()}) == 10


def test_synthetic_default_splits_by_speaker_and_pads_with_lengths():
    data = SpokenDigitsData(n_synthetic=60, n_speakers=3, batch_size=8)
    assert data.n_classes == 10 and data.classes[:3] == ["0", "1", "2"] and data.max_length == 16000
    data.setup("fit")
    names = {split: {n.split("_")[0] for n in data.item_names(split)} for split in ("train", "val", "test")}
    assert names == {"train": {"spk0"}, "val": {"spk1"}, "test": {"spk2"}}
    waveforms, lengths, labels = next(iter(data.val_dataloader()))
    assert waveforms.shape == (8, int(lengths.max())) and labels.shape == (8,)
    for w, n in zip(waveforms, lengths, strict=True):
        assert bool((w[n:] == 0).all()) and float(w[:n].abs().max()) == pytest.approx(1.0)


def test_fsdd_sample_folder_with_two_speakers_gets_a_stratified_val_split():
    data = SpokenDigitsData(str(SAMPLES))
    assert data.n_classes == 10
    data.setup("fit")
    assert len(data.datasets["train"]) == 10 and len(data.datasets["val"]) == 10  # one clip per digit each
    data.setup("test")
    assert data.serving_split("test")[0] == "val"
    with pytest.raises(DataError, match="give both val_speakers and test_speakers"):
        SpokenDigitsData(str(SAMPLES), test_speakers=["theo"]).setup("fit")


def test_speaker_split_defaults_and_named_speakers(tmp_path):
    root = speaker_folder(tmp_path / "clips")
    data = SpokenDigitsData(str(root))
    data.setup("fit")
    data.setup("test")
    assert {split: {n.split("_")[1] for n in data.item_names(split)} for split in ("train", "val", "test")} == {
        "train": {"ann"},
        "val": {"bob"},
        "test": {"cat"},
    }
    named = SpokenDigitsData(str(root), val_speakers=["cat"], test_speakers=["ann"])
    named.setup("fit")
    assert {n.split("_")[1] for n in named.item_names("train")} == {"bob"}
    with pytest.raises(DataError, match=r"no samples for split\(s\) \['train'\]"):
        SpokenDigitsData(str(root), val_speakers=["ann"], test_speakers=["bob", "cat"]).setup("fit")
    with pytest.raises(DataError, match=r"groups \['dan'\] do not occur"):
        SpokenDigitsData(str(root), val_speakers=["dan"], test_speakers=["cat"]).setup("fit")


def test_no_validation_speaker_validates_on_the_training_speakers_clips(tmp_path):
    root = speaker_folder(tmp_path / "clips", digits=(0, 1, 2))
    data = SpokenDigitsData(str(root), val_speakers=[], test_speakers=["cat"], val_fraction=0.25)
    data.setup("fit")
    data.setup("test")
    speakers = {split: sorted({n.split("_")[1] for n in data.item_names(split)}) for split in ("train", "val", "test")}
    assert speakers["test"] == ["cat"] and speakers["train"] == ["ann", "bob"]
    assert set(speakers["val"]) <= {"ann", "bob"}
    names = {split: set(data.item_names(split)) for split in ("train", "val", "test")}
    assert not names["train"] & names["val"] and len(names["train"] | names["val"]) == 12  # ann's and bob's clips
    assert sorted(label for _, label in data.datasets["val"]) == [0, 1, 2]  # stratified: one clip per digit
    with pytest.raises(DataError, match=r"groups \['dan'\] do not occur"):
        SpokenDigitsData(str(root), val_speakers=[], test_speakers=["dan"]).setup("fit")
    with pytest.raises(DataError, match=r"no samples for split\(s\) \['train'\]"):
        SpokenDigitsData(str(root), val_speakers=[], test_speakers=["ann", "bob", "cat"]).setup("fit")
    with pytest.raises(DataError, match="test_speakers must name at least one speaker"):
        SpokenDigitsData(str(root), val_speakers=[], test_speakers=[]).setup("fit")


def test_trim_silence_cuts_quiet_ends_only():
    tone = torch.sin(torch.arange(800) * 0.3)  # 0.1 s at 8 kHz
    clip = torch.cat([1e-4 * torch.ones(400), tone, torch.zeros(1200)])  # 50 ms hum before, 150 ms silence after
    trimmed = trim_silence(clip, 8000, top_db=30)
    assert len(trimmed) == 80 + 800 + 80  # the tone and one 10 ms frame of margin on each side
    assert torch.equal(trim_silence(clip, 8000, top_db=100), clip[: 400 + 800 + 80])  # the hum is within 100 dB
    assert torch.equal(trim_silence(torch.zeros(500), 8000, top_db=30), torch.zeros(500))  # silence stays


def test_wrong_rate_and_stereo_warn_once_or_are_refused(tmp_path):
    root = speaker_folder(tmp_path / "hi", rate=16000, channels=2)
    data = SpokenDigitsData(str(root))
    with pytest.warns(UserWarning) as caught:
        data.setup("fit")
    messages = [str(w.message) for w in caught]
    assert any("resampled 12 clip(s) to 8000 Hz (from {16000: 12} Hz" in m for m in messages), messages
    assert any("mixed 12 multi-channel clip(s) to mono" in m for m in messages), messages
    with pytest.raises(DataError, match=r"0_ann_0.wav: sample rate 16000 Hz"):
        SpokenDigitsData(str(root), wrong_rate="refuse").setup("fit")
    with pytest.raises(DataError, match=r"0_ann_0.wav: has 2 channels"):
        SpokenDigitsData(str(root), sample_rate=16000, stereo="refuse").setup("fit")


def test_a_bad_file_in_a_folder_is_named(tmp_path):
    root = speaker_folder(tmp_path / "clips")
    (root / "1_cat_9.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    with pytest.raises(DataError, match=r"1_cat_9.wav: unreadable audio file"):
        SpokenDigitsData(str(root)).setup("fit")


def test_long_clips_are_cut_and_silence_stays_finite(tmp_path):
    root = speaker_folder(tmp_path / "clips")
    sf.write(root / "1_ann_7.wav", np.zeros(4000, np.float32), 8000)
    data = SpokenDigitsData(str(root), max_seconds=0.1)
    assert data.max_length == 800
    data.setup("fit")
    data.setup("test")
    waveforms = [w for split in ("train", "val", "test") for w, _ in data.datasets[split]]
    assert max(len(w) for w in waveforms) == 800
    assert all(bool(torch.isfinite(w).all()) for w in waveforms)
    silent = dict(zip(data.item_names("train"), (w for w, _ in data.datasets["train"]), strict=True))["1_ann_7.wav"]
    assert bool((silent == 0).all())


def test_predict_path_gives_unlabelled_clips(tmp_path):
    root = speaker_folder(tmp_path / "clips")
    data = SpokenDigitsData(str(root), predict_path=str(root / "0_ann_0.wav"))
    data.setup("predict")
    assert data.item_names("predict") == ["0_ann_0.wav"] and data.datasets["predict"][0][1] == -1
    with pytest.raises(DataError, match="no such file or folder"):
        SpokenDigitsData(str(root), predict_path=str(root / "gone.wav")).setup("predict")


@pytest.mark.skipif(not SHARED_FSDD.is_dir(), reason=f"shared FSDD not found at {SHARED_FSDD} (see PROVENANCE.md)")
def test_shared_fsdd_leave_speakers_out():
    data = SpokenDigitsData(str(SHARED_FSDD), val_speakers=["theo"], test_speakers=["yweweler"])
    data.setup("fit")
    data.setup("test")
    assert {k: len(v) for k, v in data.datasets.items()} == {"train": 1000, "val": 500, "test": 500}
    labels = [label for _, label in data.datasets["test"]]
    assert np.bincount(labels).tolist() == [50] * 10


def test_data_module_augments_train_only(tmp_path):
    root = speaker_folder(tmp_path / "clips")
    kwargs = {"root": str(root), "val_speakers": ["bob"], "test_speakers": ["cat"], "batch_size": 2}
    plain, data = SpokenDigitsData(**kwargs), SpokenDigitsData(**kwargs, augment=True)
    plain.setup("fit"), plain.setup("test"), data.setup("fit"), data.setup("test")
    assert isinstance(data.datasets["train"], AugmentedClips)
    for split in ("val", "test"):  # never augmented: the clips of the plain module, the same at every draw
        for (a, la), (b, lb) in zip(plain.datasets[split], data.datasets[split], strict=True):
            assert torch.equal(a, b) and la == lb
        batches = [next(iter(data.dataloader(split)))[0] for _ in range(2)]
        assert torch.equal(batches[0], batches[1])
    train = data.datasets["train"]
    assert not torch.equal(train[0][0], train.samples[0][0]) and train[0][1] == plain.datasets["train"][0][1]
    with pytest.raises(ValueError, match="augment and bucket"):
        MuLawWindowsData(str(root), augment=True)


def test_bucketed_train_loader_uses_length_batches(tmp_path):
    root = speaker_folder(tmp_path / "clips", speakers=("ann", "bob", "cat", "dan"))
    data = SpokenDigitsData(str(root), val_speakers=["bob"], test_speakers=["cat"], batch_size=2, bucket=True)
    data.setup("fit")
    loader = data.train_dataloader()
    assert isinstance(loader.batch_sampler, LengthBatches)
    first_epoch = [lengths.tolist() for _, lengths, _ in loader]
    batches = iter(loader)  # the second epoch
    waveforms, lengths, labels = next(batches)
    assert waveforms.shape == (2, int(lengths.max())) and labels.shape == (2,)
    state = loader.state_dict()  # mid-epoch, as a checkpoint saves it
    rest = [lengths.tolist() for _, lengths, _ in batches]
    assert [lengths.tolist(), *rest] != first_epoch  # a new order every epoch
    again = SpokenDigitsData(str(root), val_speakers=["bob"], test_speakers=["cat"], batch_size=2, bucket=True)
    again.setup("fit")
    resumed = again.train_dataloader()
    resumed.load_state_dict(state)
    assert len(rest) == len(loader) - 1 and [lengths.tolist() for _, lengths, _ in resumed] == rest
