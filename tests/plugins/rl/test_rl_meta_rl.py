"""The meta-RL environment: projections drawn per episode, trials inside one episode, per-trial returns."""

import numpy as np
import pytest
import torch

from ssmkit_rl.agents import ActorCritic, MLPMemory
from ssmkit_rl.envs import make_env, make_vector_env
from ssmkit_rl.meta_rl import MetaRLEnv
from ssmkit_rl.rollout import EnvRunner, collect
from ssmkit_rl.spaces import ActionSpec


def test_the_projection_is_orthogonal_drawn_per_episode_and_applied():
    env = make_env("MetaCartPole-v0").unwrapped
    obs, _ = env.reset(seed=0)
    w, actions = env.obs_matrix.copy(), env.action_map.copy()
    np.testing.assert_allclose(w @ w.T, np.eye(4), atol=1e-10)
    np.testing.assert_allclose(obs[:4], w @ env.inner.unwrapped.state, atol=1e-6)
    assert obs[4] == 1.0 and sorted(actions.tolist()) == [0, 1]
    assert env.inner_action(0) == actions[0]
    draws = [env.reset(seed=s)[0] is not None and env.obs_matrix.copy() for s in range(1, 6)]
    assert not all(np.allclose(draws[0], d) for d in draws[1:])  # a new projection per episode
    pendulum = make_env("MetaPendulum-v0").unwrapped
    pendulum.reset(seed=0)
    assert abs(pendulum.action_map[0, 0]) == 1.0 and pendulum.inner_action(np.array([3.0])).item() in (-2.0, 2.0)


def test_the_stateless_task_projects_the_positions_only_as_popjaxrl():
    env = make_env("MetaStatelessCartPole-v0").unwrapped
    obs, _ = env.reset(seed=0)
    w = env.obs_matrix
    assert w.shape == (4, 2) and obs.shape == (5,)
    np.testing.assert_allclose(w.T @ w, np.eye(2), atol=1e-10)  # orthonormal columns
    np.testing.assert_allclose(obs[:4], w @ env.inner.unwrapped.state[[0, 2]], atol=1e-6)  # x and theta only
    assert env.action_map.tolist() == [0, 1]  # actions as they are
    env.reset(seed=1)
    assert not np.allclose(env.obs_matrix, w)
    scaled = make_env("MetaStatelessCartPole-v0", obs_scale=[2.4, 0.2]).unwrapped
    obs, _ = scaled.reset(seed=0)
    state = scaled.inner.unwrapped.state
    np.testing.assert_allclose(obs[:4], scaled.obs_matrix @ (state[[0, 2]] / [2.4, 0.2]), atol=1e-6)


def test_the_observed_components_and_projection_size_are_checked():
    with pytest.raises(ValueError, match="observe must pick"):
        MetaRLEnv(observe=[4])
    with pytest.raises(ValueError, match="d_proj must be >= the 2"):
        MetaRLEnv(observe=[0, 2], d_proj=1)
    with pytest.raises(ValueError, match="obs_scale must hold 2 positive"):
        MetaRLEnv(observe=[0, 2], obs_scale=[1.0, 0.0])


def test_an_episode_is_n_trials_and_only_its_end_is_done():
    env = make_env("MetaCartPole-v0", n_trials=3, max_trial_steps=7)
    obs, _ = env.reset(seed=0)
    starts, flags, done, steps, info = [obs[:4]], [], False, 0, {}
    while not done:
        obs, reward, terminated, truncated, info = env.step(0)
        done, steps = terminated or truncated, steps + 1
        flags.append(obs[4])
        if obs[4] == 1.0:
            starts.append(obs[:4])
    assert len(starts) == 3 and terminated and not truncated  # 2 trial boundaries inside, then the end
    np.testing.assert_allclose(starts[1], starts[0])  # same_start: every trial from the episode's first state
    assert info["trial_returns"].shape == (3,) and info["trial_returns"].sum() == steps


def test_the_runner_collects_returns_per_trial_and_resets_memory_only_at_episode_ends():
    torch.manual_seed(0)
    envs = make_vector_env("MetaCartPole-v0", 2, n_trials=2, max_trial_steps=5)
    agent = ActorCritic(MLPMemory(5 + 2 + 1, 8), ActionSpec(envs.single_action_space), 8)
    runner = EnvRunner(envs, agent, seed=0)
    rollout = collect(agent, runner, 40)
    assert rollout.trial_returns and all(t.shape == (2,) for t in rollout.trial_returns)
    np.testing.assert_allclose([t.sum() for t in rollout.trial_returns], rollout.episode_returns)
    trial_starts = (rollout.inputs[..., 4] == 1) & ~rollout.resets  # a new trial inside an episode: no reset
    assert trial_starts.any()
    assert (rollout.inputs[trial_starts][:, 5:].abs().sum(-1) > 0).all()  # previous action and reward carried on
    runner.restart()
    assert (runner.inputs()[:, 4] == 1).all() and (runner.inputs()[:, 5:] == 0).all()
    runner.close()


def test_ppo_on_the_meta_task_writes_returns_per_trial(tmp_path):
    import csv
    from pathlib import Path

    import ssmkit_rl
    from ssmkit.train.cli import run_task

    config = Path(ssmkit_rl.__file__).parent / "configs" / "ppo_meta_quick.yaml"
    cli = run_task("fit", "rl.ppo", ["--config", str(config)], runs_dir=tmp_path, quick=True)
    run_dir = Path(cli.trainer.logger.log_dir)
    rows = list(csv.DictReader(open(run_dir / "trial_returns.csv")))
    assert [int(r["trial"]) for r in rows] == [1, 2, 1, 2]  # training episodes, then the last validation
    assert cli.model.hparams.restart_envs and (run_dir / "plots" / "trial_returns.png").is_file()
    assert "val/trial_gain" in cli.trainer.callback_metrics
