"""audio.classify's training-clip augmentation (`augment.perturb`, `AugmentedClips`), the length-bucketed batches
(`LengthBatches`), and the LOSO runner's fold rule and table. The data module's `augment` / `bucket` settings are
tested in test_audio_data.py."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from ssmkit_audio.augment import AugmentedClips, ClipAugmentation, LengthBatches, change_speed, perturb

RATE = 8000
OFF = ClipAugmentation(speed=0.0, shift_seconds=0.0, gain_db=0.0, snr_db=None)


def tone(hz: float, n: int = 4000) -> torch.Tensor:
    return torch.sin(2 * torch.pi * hz * torch.arange(n) / RATE).float()


def peak_hz(x: torch.Tensor) -> float:
    return float(torch.fft.rfft(x).abs().argmax()) * RATE / len(x)


def test_change_speed_moves_pitch_and_length_by_the_factor():
    for factor in (0.87, 1.12):
        y = change_speed(tone(500.0), factor)
        assert len(y) == pytest.approx(4000 / factor, abs=1)
        assert peak_hz(y) == pytest.approx(500 * factor, abs=3)
    assert torch.equal(change_speed(tone(500.0), 1.0), tone(500.0))


def test_perturb_with_everything_off_is_the_identity_and_shift_only_prepends_silence():
    rng = np.random.default_rng(0)
    x = 0.5 + 0.4 * tone(300.0, 3000)  # no zero sample: the leading zeros are the shift
    assert torch.allclose(perturb(x, rng, OFF, RATE, 8000), x)
    shifted = ClipAugmentation(speed=0.0, shift_seconds=0.1, gain_db=0.0, snr_db=None)
    shifts = []
    for _ in range(20):
        y = perturb(x, rng, shifted, RATE, 3500)  # cut at 3500 samples
        shift = len(y) - 3000 if len(y) < 3500 else int((y[:800] == 0).sum())
        assert len(y) <= 3500 and 0 <= shift <= 800
        assert torch.equal(y[:shift], torch.zeros(shift)) and torch.equal(y[shift:], x[: len(y) - shift])
        shifts.append(shift)
    assert len(set(shifts)) > 10  # the shift is drawn


def test_perturb_noise_and_gain_stay_in_their_ranges():
    rng = np.random.default_rng(1)
    x = tone(300.0, 3000)
    noisy = ClipAugmentation(speed=0.0, shift_seconds=0.0, gain_db=6.0, snr_db=(20.0, 20.0))
    for _ in range(10):
        y = perturb(x, rng, noisy, RATE, 8000)
        gain = float((y @ x) / (x @ x))  # the noise is (nearly) orthogonal to the tone
        assert 10 ** (-6.2 / 20) < gain < 10 ** (6.2 / 20)
        snr = 10 * torch.log10((gain * x).square().sum() / (y - gain * x).square().sum())
        assert float(snr) == pytest.approx(20.0, abs=0.5)


def test_augmented_clips_keep_labels_vary_per_draw_and_are_seeded():
    samples = [(tone(200.0 + 50 * i, 2000 + 100 * i), i) for i in range(4)]
    clips = AugmentedClips(samples, ClipAugmentation(), RATE, 2400, seed=3)
    again = AugmentedClips(samples, ClipAugmentation(), RATE, 2400, seed=3)
    first = [clips[i] for i in range(4)]
    assert [label for _, label in first] == [0, 1, 2, 3]
    for (y, _), (x, _) in zip(first, samples, strict=True):
        assert y.dtype == torch.float32 and min(2400, int(len(x) / 1.15)) <= len(y) <= 2400 and not torch.equal(y, x)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, (again[i] for i in range(4)), strict=True))
    state = clips.state_dict()
    second = clips[0][0]
    assert not torch.equal(second, first[0][0])  # a fresh draw every time
    clips.load_state_dict(state)
    assert torch.equal(clips[0][0], second)  # the saved state draws on exactly


def test_length_batches_group_similar_lengths_and_resume_mid_epoch():
    lengths = [int(n) for n in np.random.default_rng(0).integers(1000, 5000, 200)]
    sampler = LengthBatches(lengths, 8, torch.Generator().manual_seed(0), pool=5)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 25 and all(len(b) == 8 for b in batches)
    assert len({i for b in batches for i in b}) == 200  # 200 = 5 pools of 40: every clip once
    padded = sum(8 * max(lengths[i] for i in b) for b in batches)
    shuffled = torch.randperm(200, generator=torch.Generator().manual_seed(0)).view(25, 8).tolist()
    assert padded < 0.8 * sum(8 * max(lengths[i] for i in b) for b in shuffled)
    again = LengthBatches(lengths, 8, torch.Generator().manual_seed(0), pool=5)
    epoch = iter(again)
    head = [next(epoch) for _ in range(7)]
    assert head == batches[:7]  # seeded
    resumed = LengthBatches(lengths, 8, torch.Generator().manual_seed(99), pool=5)
    resumed.load_state_dict(again.state_dict())
    assert head + list(resumed) == batches  # the rest of the same epoch
    assert list(again) != batches  # the next epoch has another order


def load_loso():
    path = Path(__file__).parents[3] / "plugins" / "audio" / "scripts" / "loso.py"
    spec = importlib.util.spec_from_file_location("loso", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_loso_folds_rotate_the_validation_speaker_and_the_table_averages():
    loso = load_loso()
    assert loso.folds(["theo", "george", "nicolas", "george"]) == [
        ("george", "nicolas"),
        ("nicolas", "theo"),
        ("theo", "george"),
    ]
    with pytest.raises(ValueError, match=">= 3 speakers"):
        loso.folds(["a", "b"])
    assert loso.folds(["b", "a"], val_speaker=False) == [("a", ""), ("b", "")]  # val: the training speakers' clips
    assert "--data.val_speakers=[]" in loso.fold_args([], "a", "", 1, 2)
    args = loso.fold_args(["--config", "x.yaml"], "theo", "george", 7.5, 20)
    assert "--data.test_speakers=[theo]" in args and "--trainer.max_time=00:00:07:30" in args
    rows = [
        {"model": "m", "test_speaker": s, "test_acc": str(a), "val_acc": "0.5", "seconds": "60"}
        for s, a in (("a", 0.5), ("b", 1.0))
    ]
    text = loso.table(rows)
    assert "| m | 0.500 | 1.000 | 0.750 | 0.250 | 0.500 | 2.0 |" in text
