"""Offline Meta-DT data: varied physics, the generator, npz and Minari round trips and their named errors."""

from pathlib import Path

import numpy as np
import pytest

from ssmkit.data import DataError
from ssmkit.train.cli import run_task
from ssmkit_rl.datamodules import MetaDTData
from ssmkit_rl.offline import generate, load_minari, load_offline, save_minari, save_offline
from ssmkit_rl.physics import CARTPOLE, PhysicsEnv

STEP_KEYS = ("observations", "actions", "rewards", "next_observations", "tasks", "task_params", "test_tasks")


def test_the_physics_is_set_on_the_env_and_changes_the_dynamics():
    params = np.array([[9.8, 0.1, 0.25], [9.8, 0.1, 1.0]], dtype=np.float32)
    env = PhysicsEnv(CARTPOLE, params, np.random.default_rng(0))
    assert env.envs[1].length == 1.0 and env.envs[1].polemass_length == pytest.approx(0.1)
    env.reset()
    for env_i in env.envs:
        env_i.state = np.array([0.0, 0.0, 0.1, 0.0])
    obs, rewards = env.step(np.ones((2, 1)))
    assert abs(obs[0, 3]) > 2 * abs(obs[1, 3]) > 0  # the push turns the short pole faster
    for _ in range(100):
        obs, rewards = env.step(np.ones((2, 1)))
    assert env.fallen.all() and (rewards == 0).all()  # a fallen pole stays put, reward 0


@pytest.mark.parametrize("name, d_obs", [("cartpole", 4), ("pendulum", 3)])
def test_generated_physics_data_is_seeded_and_round_trips_through_npz_and_minari(tmp_path, name, d_obs):
    data = generate(name, n_tasks=4, n_test_tasks=1, episodes_per_task=2, episode_length=6, seed=3)
    assert data.observations.shape == (6, 6, d_obs) and data.actions.shape == (6, 6, 1)
    assert np.array_equal(data.rewards, generate(name, 4, 1, 2, 6, seed=3).rewards)
    assert set(data.tasks) == set(data.train_tasks) and data.test_tasks.tolist() not in data.tasks.tolist()
    for path in (tmp_path / "d.npz", tmp_path / f"{name}-medium-v0"):
        back = load_offline(save_offline(data, path))
        assert back.domain == name and all(np.array_equal(getattr(back, k), getattr(data, k)) for k in STEP_KEYS)
    assert (tmp_path / f"{name}-medium-v0" / "data" / "main_data.hdf5").is_file()


def test_minari_missing_keys_and_ragged_episodes_are_named(tmp_path):
    h5py = pytest.importorskip("h5py")
    data = generate("pendulum", n_tasks=3, n_test_tasks=1, episodes_per_task=2, episode_length=5)
    path = save_minari(data, tmp_path / "missing-v0")
    with h5py.File(path / "data" / "main_data.hdf5", "a") as f:
        del f["episode_1/rewards"]
    with pytest.raises(DataError, match="missing-v0: episode_1: .*'rewards' doesn't exist"):
        load_minari(path)
    ragged = generate("pendulum", n_tasks=3, n_test_tasks=1, episodes_per_task=2, episode_length=5)
    path = save_minari(ragged, tmp_path / "ragged-v0")
    with h5py.File(path / "data" / "main_data.hdf5", "a") as f:
        episode = f["episode_2"]
        for key in ("actions", "rewards", "terminations", "truncations"):
            value = episode[key][:-1]
            del episode[key]
            episode[key] = value
        for key in ("observations", "infos/task"):
            value = episode[key][:-1]
            del episode[key]
            episode[key] = value
    with pytest.raises(DataError, match="ragged-v0: key episode_lengths: ragged episodes \\(episode 2 has 4 steps"):
        load_minari(path)
    with pytest.raises(DataError, match="cannot open the Minari dataset 'absent-v0'"):
        load_minari(tmp_path / "absent-v0")


def test_bad_domains_are_named(tmp_path):
    with pytest.raises(DataError, match="unknown domain 'acrobot'; known: point_robot, cartpole, pendulum"):
        MetaDTData(domain="acrobot")
    save_offline(generate("cartpole", 3, 1, 1, 4), tmp_path / "c.npz")
    with pytest.raises(DataError, match="c.npz: the data is of domain 'cartpole', but data.domain is 'pendulum'"):
        _ = MetaDTData(domain="pendulum", path=str(tmp_path / "c.npz")).offline


def test_meta_dt_fits_and_tests_on_pendulum_physics_from_a_minari_dataset(tmp_path):
    args = ["--data.domain", "pendulum", "--data.path", str(tmp_path / "pendulum-quick-v0")]
    cli = run_task("fit", "rl.meta_dt", args, runs_dir=tmp_path, quick=True)
    assert (tmp_path / "pendulum-quick-v0" / "data" / "metadata.json").is_file()  # written, then read below
    assert cli.model.hparams.obs_dim == 3 and cli.model.hparams.max_action == 2.0
    cli = run_task("test", "rl.meta_dt", [*args, "--ckpt_path", "last"], runs_dir=tmp_path, quick=True)
    rows = (Path(cli.trainer.logger.log_dir) / "test_returns.csv").read_text().splitlines()
    assert rows[0] == "task,g,m,l,mode,episode,return" and len(rows) == 1 + 4 * 2 * 2  # 4 modes, 2 tasks x 2


def test_line_openings_head_one_way_at_full_speed_then_steer():
    from ssmkit_rl.point_robot import Behaviour, behaviour_actions

    goals = np.tile([[0.0, 1.0]], (200, 1))
    b = Behaviour.draw(goals, 0.0, 0.0, 6, np.random.default_rng(0), line_openings=1.0)
    rng = np.random.default_rng(1)
    first, second = (behaviour_actions(np.zeros((200, 2)), t, b, rng, epsilon=0.0) for t in (0, 1))
    opening = b.explore_steps >= 2
    assert np.allclose(first[opening], second[opening]) and np.allclose(first[opening], b.heading[opening])
    assert np.allclose(np.linalg.norm(b.heading, axis=1), 0.1)
    assert (second[b.explore_steps == 0, 1] > 0.05).all()  # no opening: steering up at once
    data = generate("point_robot", 4, 1, 50, 6, random_fraction=0.0, line_openings=0.5, seed=0)
    assert not np.array_equal(data.actions, generate("point_robot", 4, 1, 50, 6, random_fraction=0.0).actions)
    with pytest.raises(ValueError, match="line_openings is a point_robot setting"):
        generate("cartpole", 4, 1, 2, 6, line_openings=0.5)
