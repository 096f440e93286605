"""audio.restore's optional GAN term (the multi-frequency discriminator under manual optimisation) and its test-time
perceptual metrics (STOI, PESQ)."""

from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from ssmkit.models import BackboneConfig
from ssmkit.testing.plugin_contract import Stage, TaskRun, check_metrics, check_resumed
from ssmkit.train.checkpoint import load_checkpoint
from ssmkit.train.cli import run_task
from ssmkit_audio.datamodules import RestorationData
from ssmkit_audio.discriminator import (
    MultiFrequencyDiscriminator,
    discriminator_loss,
    feature_matching_loss,
    generator_loss,
)
from ssmkit_audio.perceptual import PESQ_AVAILABLE, perceptual_scores
from ssmkit_audio.synthetic import synthetic_music
from ssmkit_audio.tasks import AudioRestorer

RATE = 16000
TINY = BackboneConfig(d_model=8, n_layers=1, mixer="s4d", mixer_kwargs={"d_state": 4})
LAYOUT = dict(n_fft=256, hop=128, band_splits_hz=[2000], band_widths_hz=[250, 1000])
GAN_CONFIG = Path(__file__).parents[3] / "plugins/audio/ssmkit_audio/configs/restore_gan.yaml"


def test_discriminator_scores_each_resolution_and_ignores_the_level():
    torch.manual_seed(0)
    disc = MultiFrequencyDiscriminator((128, 256, 512), channels=4, depth=3).eval()  # no power iteration
    x = torch.randn(2, 4000)
    scores, features = disc(x)
    assert len(scores) == len(features) == 3
    for n_fft, score, hidden in zip((128, 256, 512), scores, features, strict=True):
        assert score.shape[:2] == (2, 1) and score.shape[2] == (n_fft // 2 + 1 + 1) // 2  # one stride-2 layer
        assert [h.shape[1] for h in hidden] == [4, 8, 16] and bool(torch.isfinite(score).all())
    louder, _ = disc(10 * x)  # the clip is scaled to unit power first
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(scores, louder, strict=True))


def test_gan_losses_vanish_where_each_side_has_won():
    ones, zeros = [torch.ones(2, 1, 3, 3)], [torch.zeros(2, 1, 3, 3)]
    assert float(discriminator_loss(ones, zeros, "lsgan")) == 0.0
    assert float(discriminator_loss(zeros, ones, "lsgan")) == 2.0
    assert float(discriminator_loss(ones, [-o for o in ones], "hinge")) == 0.0
    assert float(generator_loss(ones, "lsgan")) == 0.0 and float(generator_loss(zeros, "lsgan")) == 1.0
    assert float(generator_loss(ones, "hinge")) == -1.0
    maps = [[torch.randn(2, 4, 5, 5), torch.randn(2, 8, 3, 3)]]
    assert float(feature_matching_loss(maps, maps)) == 0.0
    assert float(feature_matching_loss([[2 * m for m in maps[0]]], maps)) == pytest.approx(1.0)


def test_gan_weight_zero_builds_no_discriminator():
    plain = AudioRestorer(RATE, 8000, backbone=TINY, **LAYOUT)
    assert plain.discriminator is None and plain.automatic_optimization
    gan = AudioRestorer(RATE, 8000, backbone=TINY, gan_weight=0.1, **LAYOUT)
    assert gan.discriminator is not None and not gan.automatic_optimization
    assert {k for k in gan.state_dict() if not k.startswith("discriminator.")} == set(plain.state_dict())
    with pytest.raises(ValueError, match="gan_loss must be one of"):
        AudioRestorer(RATE, 8000, backbone=TINY, gan_weight=0.1, gan_loss="wasserstein", **LAYOUT)


def test_a_gan_step_updates_both_networks_and_counts_batches(tmp_path):
    L.seed_everything(0)
    data = RestorationData(
        sample_rate=RATE, clip_seconds=0.5, n_synthetic=10, batch_size=2, val_fraction=0.2, test_fraction=0.2
    )
    task = AudioRestorer(
        RATE, data.clip_samples, backbone=TINY, gan_weight=0.5, disc_channels=4, disc_depth=2, warmup_steps=1, **LAYOUT
    )
    before = {k: v.clone() for k, v in task.state_dict().items()}
    trainer = L.Trainer(
        max_steps=2,
        gradient_clip_val=1.0,  # the kit's default: taken over and applied by hand under manual optimisation
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        default_root_dir=tmp_path,
    )
    trainer.fit(task, datamodule=data)
    changed = {k for k, v in task.state_dict().items() if v.is_floating_point() and not torch.equal(v, before[k])}
    assert any(k.startswith("restorer.") for k in changed) and any(k.startswith("discriminator.") for k in changed)
    assert trainer.global_step == 2  # batches, not optimiser steps
    assert [config.scheduler.last_epoch for config in trainer.lr_scheduler_configs] == [2, 2]
    assert task.clip_setting == (1.0, "norm") and trainer.gradient_clip_val is None
    restorer_ids = {id(p) for p in task.restorer.parameters()}
    opt_g, opt_d = trainer.optimizers
    assert {id(p) for g in opt_g.param_groups for p in g["params"]} == restorer_ids
    assert not restorer_ids & {id(p) for g in opt_d.param_groups for p in g["params"]}


@pytest.mark.slow
def test_a_gan_run_resumes_both_optimisers(tmp_path):
    """The plugin contract's resume check on the quick config with the GAN term (`restore_gan.yaml`)."""
    gan = ["--config", str(GAN_CONFIG)]
    run = TaskRun("audio.restore", tmp_path)
    fit = run_task("fit", "audio.restore", gan, runs_dir=tmp_path, quick=True)
    run.stages["fit"] = Stage("fit", 0.0, cli=fit)
    run.fit_dir = Path(fit.trainer.logger.log_dir)
    run.fit_epochs, run.fit_global_step = fit.trainer.current_epoch, fit.trainer.global_step
    last = run.fit_dir / "checkpoints" / "last.ckpt"
    first = load_checkpoint(last)
    args = [*gan, "--ckpt_path", "last", "--trainer.max_epochs", str(run.fit_epochs + 1)]
    run.stages["resume"] = Stage(
        "resume", 0.0, cli=run_task("fit", "audio.restore", args, runs_dir=tmp_path, quick=True)
    )
    check_resumed(run)
    check_metrics(run)
    second = load_checkpoint(last)
    assert len(first["optimizer_states"]) == len(second["optimizer_states"]) == 2
    steps = [s["last_epoch"] for s in second["lr_schedulers"]]
    assert steps == [second["global_step"]] * 2 and second["global_step"] == 2 * first["global_step"]
    for name in ("restorer.merge.project.0.1.weight", "discriminator.resolutions.0.out.weight"):
        assert not torch.equal(first["state_dict"][name], second["state_dict"][name]), name
    adam_steps = [max(float(s["step"]) for s in o["state"].values()) for o in second["optimizer_states"]]
    assert adam_steps == [second["global_step"]] * 2  # both optimisers' moments carried over the resume


def test_a_gan_checkpoint_loads_into_a_restorer_without_the_gan():
    gan = AudioRestorer(RATE, 8000, backbone=TINY, gan_weight=0.1, **LAYOUT)
    checkpoint = {"state_dict": gan.state_dict()}
    plain = AudioRestorer(RATE, 8000, backbone=TINY, **LAYOUT)
    plain.on_load_checkpoint(checkpoint)
    plain.load_state_dict(checkpoint["state_dict"])  # strict: no discriminator key left over


@pytest.fixture(scope="module")
def speechlike() -> tuple[torch.Tensor, torch.Tensor]:
    clean = torch.from_numpy(np.stack(synthetic_music(2, 2.0, RATE, seed=4))).float()
    noisy = clean + 0.3 * clean.std() * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    return clean, noisy


def test_stoi_and_pesq_score_the_clean_clip_best(speechlike):
    clean, noisy = speechlike
    lengths = torch.full((2,), clean.shape[1])
    scores = perceptual_scores(clean, noisy, clean, lengths, RATE)
    assert torch.allclose(scores["stoi"], torch.ones(2, dtype=torch.float64), atol=1e-6)
    assert bool((scores["stoi_input"] < scores["stoi"] - 0.05).all())
    if PESQ_AVAILABLE:
        assert bool((scores["pesq"] > 4.4).all()) and bool((scores["pesq_input"] < scores["pesq"] - 1).all())
    at_22k = perceptual_scores(noisy, noisy, clean, lengths, 22050)  # resampled to 16 kHz for PESQ
    assert torch.equal(at_22k["stoi"], at_22k["stoi_input"])


def test_too_short_or_silent_clips_score_nan_not_a_placeholder():
    short = torch.randn(1, 800)  # 50 ms: too short for STOI's 30-frame segments and for PESQ
    scores = perceptual_scores(short, short, short, torch.tensor([800]), RATE)
    assert all(bool(v.isnan().all()) for v in scores.values()), scores
