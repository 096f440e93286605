"""`rl.ppo` end to end on its quick config: counters survive a resume, predict writes returns and a GIF."""

import csv
from pathlib import Path

import torch
from PIL import Image

from ssmkit.train.checkpoint import load_checkpoint
from ssmkit.train.cli import run_task
from ssmkit_rl.tasks import PPO


def test_resume_carries_the_environment_steps_and_the_learning_curve(tmp_path):
    cli = run_task("fit", "rl.ppo", ["--trainer.max_epochs", "1"], runs_dir=tmp_path, quick=True)
    run_dir = Path(cli.trainer.logger.log_dir)
    first = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["rl_progress"]
    assert first["env_steps"] == 2 * 4 * 64 and first["updates"] == 2
    run_task("fit", "rl.ppo", ["--ckpt_path", "last", "--trainer.max_epochs", "2"], runs_dir=tmp_path, quick=True)
    second = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["rl_progress"]
    assert second["env_steps"] == 2 * first["env_steps"] and second["updates"] == 4
    rows = list(csv.DictReader(open(run_dir / "learning_curve.csv")))
    assert [int(float(r["update"])) for r in rows] == sorted(int(float(r["update"])) for r in rows)
    assert (run_dir / "plots" / "learning_curve.png").is_file()


def test_predict_writes_episode_returns_and_a_gif_of_a_rendering_env(tmp_path):
    args = ["--data.env_id", "CartPole-v1", "--trainer.limit_train_batches", "1", "--model.n_steps", "16"]
    run_task("fit", "rl.ppo", args, runs_dir=tmp_path, quick=True)
    cli = run_task("predict", "rl.ppo", ["--ckpt_path", "last"], runs_dir=tmp_path, quick=True)
    out = Path(cli.trainer.logger.log_dir)
    rows = list(csv.DictReader(open(out / "episode_returns.csv")))
    assert len(rows) == 4 and all(float(r["return"]) == int(r["length"]) for r in rows)  # CartPole: 1 per step
    gif = Image.open(out / "episode.gif")
    assert gif.n_frames > 1 and gif.size == (600, 400)


def test_a_module_alone_acts_without_a_trainer():
    torch.manual_seed(0)
    task = PPO("RepeatFirstEasy", agent="gru", hidden=8, head_hidden=8)
    episodes = task.evaluate("val")
    assert len(episodes.returns) == 16 and episodes.finished
