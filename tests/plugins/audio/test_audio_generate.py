"""audio.generate: the WaveNet baseline is causal and its `step` equals `forward`; SaShiMi conditioned on a label
too; generation on the step path has the asked length, a float waveform, no NaN, and a state that does not grow;
bits per sample and the unigram entropy are right on known distributions; the mu-law windows and their split."""

import math
from pathlib import Path

import pytest
import torch

from ssmkit.data import DataError
from ssmkit.models import BackboneConfig
from ssmkit.testing import step_through
from ssmkit_audio import mulaw
from ssmkit_audio.datamodules import MuLawWindowsData
from ssmkit_audio.sashimi import SashimiLM, max_pole_modulus
from ssmkit_audio.wavenet import WaveNetLM, matched_channels, n_parameters

SAMPLES = Path(__file__).parents[3] / "data" / "audio" / "fsdd"
TINY = BackboneConfig(d_model=4, n_layers=1, mixer="s4d", mixer_kwargs={"d_state": 4}, mlp_ratio=2)


def tokens(length: int = 48, batch: int = 2) -> torch.Tensor:
    return torch.randint(0, 256, (batch, length), generator=torch.Generator().manual_seed(1))


def tiny_wavenet(**kwargs) -> WaveNetLM:
    torch.manual_seed(0)
    return WaveNetLM(channels=6, n_layers=5, cycle=4, **kwargs).double().eval()


def test_wavenet_is_causal():
    model, x = tiny_wavenet(), tokens(64)
    assert model.receptive_field == 1 + 1 + 2 + 4 + 8 + 1
    with torch.no_grad():
        y = model(x)
        for t in (0, 1, 7, 20, 63):
            changed = x.clone()
            changed[:, t:] = (changed[:, t:] + 101) % 256
            after = model(changed)
            torch.testing.assert_close(after[:, :t], y[:, :t], atol=1e-12, rtol=0)
            assert not torch.allclose(after[:, t], y[:, t])


@pytest.mark.parametrize("conditional", [False, True])
def test_step_equals_forward_wavenet_and_conditioned_sashimi(conditional):
    labels = torch.tensor([3, 7]) if conditional else None
    n_classes = 10 if conditional else 0
    torch.manual_seed(0)
    models = [tiny_wavenet(n_classes=n_classes), SashimiLM(TINY, n_classes=n_classes).double().eval()]
    x = tokens(48)
    for model in models:
        with torch.no_grad():
            state = model.allocate_state(2, dtype=torch.float64)
            steps, _ = step_through(lambda t, s, m=model: m.step(t, s, labels), x, state)
            torch.testing.assert_close(steps, model(x, labels), atol=1e-9, rtol=0)
    if conditional:  # the label changes the prediction
        assert not torch.allclose(models[1](x, labels), models[1](x, labels.flip(0)))


def state_numel(state) -> int:
    if isinstance(state, torch.Tensor):
        return state.numel()
    if isinstance(state, dict):
        return sum(state_numel(v) for v in state.values())
    if isinstance(state, list | tuple):
        return sum(state_numel(v) for v in state)
    return 0


@pytest.mark.parametrize("kind", ["sashimi", "wavenet"])
def test_generation_length_dtype_finite_and_constant_memory(kind):
    torch.manual_seed(0)
    model = SashimiLM(TINY, n_classes=10) if kind == "sashimi" else WaveNetLM(8, 4, 4, n_classes=10)
    labels = torch.tensor([1, 4, 9])
    out = mulaw.sample(model.eval(), 100, labels=labels, generator=torch.Generator().manual_seed(0))
    assert out.shape == (3, 100) and out.dtype == torch.long and 0 <= int(out.min()) and int(out.max()) < 256
    wave = mulaw.decode(out)
    assert wave.dtype == torch.float32 and bool(torch.isfinite(wave).all()) and float(wave.abs().max()) <= 1
    sizes = []
    with torch.no_grad():
        state = model.allocate_state(3)
        for t in range(80):
            _, state = model.step(out[:, t], state, labels)
            if t in (31, 79):  # both after a full coarse block of SaShiMi's pools (16)
                sizes.append(state_numel(state))
    assert sizes[0] == sizes[1]


def test_bits_per_sample_on_a_known_distribution():
    p = torch.tensor([0.5, 0.25, 0.125, 0.125] + [0.0] * 252)
    logits = p.clamp_min(1e-30).log().expand(2, 6, 256)
    targets = torch.tensor([[0, 1, 2, 3, 0, 0], [1, 1, 3, 9, 9, 9]])  # the 9s are padding
    lengths = torch.tensor([6, 3])
    expected = (1 + 2 + 3 + 3 + 1 + 1 + 2 + 2 + 3) / 9
    assert float(mulaw.bits_per_sample(logits, targets, lengths)) == pytest.approx(expected, abs=1e-6)
    uniform = torch.zeros(2, 6, 256)
    assert float(mulaw.bits_per_sample(uniform, targets, lengths)) == pytest.approx(8.0, abs=1e-6)
    assert mulaw.unigram_bits([torch.tensor([5, 5, 6, 7]), torch.tensor([5, 5, 6, 7])]) == pytest.approx(1.5)
    assert mulaw.unigram_bits([torch.arange(256)]) == pytest.approx(8.0)
    assert math.isclose(float(mulaw.nll_nats(uniform, targets, lengths)), math.log(256), rel_tol=1e-6)


def test_wavenet_matches_sashimi_parameters():
    sashimi = SashimiLM(BackboneConfig(d_model=16, n_layers=2, mixer="s4d", mixer_kwargs={"d_state": 32}))
    wavenet = WaveNetLM(matched_channels(n_parameters(sashimi), 10, 10), 10, 10)
    assert abs(n_parameters(wavenet) / n_parameters(sashimi) - 1) < 0.03


def test_mulaw_windows_pad_short_clips_and_split():
    data = MuLawWindowsData(n_synthetic=20, n_speakers=4, max_seconds=0.5, window=1024)
    data.setup("fit")
    tokens_, length, label = data.datasets["train"][0]
    assert tokens_.shape == (1024,) and tokens_.dtype == torch.long and length == 1024 and 0 <= label < 10
    clip_lengths = [min(len(w), 4000) for w, _, s in zip(*data.labelled()[:3], strict=True)]
    assert len(clip_lengths) == 20 and max(clip_lengths) == 4000
    n_windows = sum(len(data.datasets[split]) for split in data.datasets)
    assert n_windows == sum(max(1, n // 1024) for n in clip_lengths)  # the remainders shorter than a window dropped
    short = MuLawWindowsData(window=4096).windows(torch.zeros(1000))
    assert len(short) == 1 and short[0][1] == 1000 and bool((short[0][0] == mulaw.SILENCE).all())
    assert 0 < data.unigram_bits() <= 8
    assert data.build("predict") == {"predict": [0, 1, 2, 3]}


def test_fsdd_indices_below_test_indices_are_test():
    with pytest.raises(DataError, match="leaves a split empty"):  # the repo's clips are all index 0
        MuLawWindowsData(root=str(SAMPLES), window=512).setup("fit")
    data = MuLawWindowsData(root=str(SAMPLES), window=512, test_indices=0)  # by speaker / stratified instead
    data.setup("fit")
    assert len(data.datasets["train"]) > 0 and len(data.datasets["val"]) > 0 and "test" not in data.datasets


@pytest.mark.parametrize("mixer", ["s4d", "s4"])
def test_sashimi_step_equals_forward_over_4096_float32_samples_and_its_poles_stay_stable(mixer):
    """The issue's check: convolution mode equals recurrent mode within 1e-4 over 4,096 float32 samples, for the
    default S4D and for DPLR S4 in SaShiMi's Hurwitz form; and 50 Adam steps at a large learning rate (which push the
    poles hardest) leave every discretised pole inside the unit circle."""
    torch.manual_seed(0)
    config = BackboneConfig(d_model=4, n_layers=1, mixer=mixer, mixer_kwargs={"d_state": 4}, mlp_ratio=2)
    model = SashimiLM(config)
    x = tokens(4096, batch=1)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(50):
        optimiser.zero_grad()
        model(x[:, :256]).logsumexp(-1).mean().backward()  # any loss: it moves log_dt and A
        optimiser.step()
    assert max_pole_modulus(model) < 1
    model.eval()
    with torch.no_grad():
        forward = model(x)
        steps, _ = step_through(model.step, x, model.allocate_state(1))
    assert (steps - forward).abs().max() / forward.abs().max() <= 1e-4
