"""Meta-DT's offline multi-task data: the domains (Point-Robot goals, CartPole / Pendulum with varied physics), the
seeded generator, and the data as npz or as a Minari dataset.

Domains (`DOMAINS`, `domain(name)`): each draws its tasks (Point-Robot: goals on the upper half circle; CartPole /
Pendulum: physical constants, `ssmkit_rl.physics`), makes N episodes of given tasks stepped together (`reset()
-> (N, d_obs)`, `step(actions (N, d_act)) -> (next observations, rewards (N,))`), and has a task-aware oracle, the
medium behaviour policy of the offline data, random actions in [-max_action, max_action], and episode frames.

`generate(domain, ...)`: the last `n_test_tasks` of a seeded permutation of the tasks are held out (no offline
data); every other task gets `episodes_per_task` behaviour episodes of `episode_length` steps.

The npz layout (`save_npz` / `load_npz`; flat arrays, one row per step, episodes back to back):
    observations (S, d_obs), actions (S, d_act), rewards (S,), next_observations (S, d_obs): transitions, float32;
    episode_lengths (E,) int64, summing to S; episode_tasks (E,) int64: each episode's task index;
    task_params (G, p) float32: each task's parameters (Point-Robot: the goal; physics: the constants);
    test_tasks (n_test,) int64: the held-out task indices; domain (): the domain's name.

The Minari layout (`save_minari` / `load_minari`, through the `minari` package, a dependency of the plugin; its
HDF5 storage, nothing downloaded): a path `<root>/<dataset_id>` (the id in Minari's form, e.g.
`pendulum-medium-v0`) is the dataset `dataset_id` under `MINARI_DATASETS_PATH=<root>`:
`<root>/<dataset_id>/data/main_data.hdf5` holds one group `episode_<i>` per episode with observations (T + 1,
d_obs) (the last is the final next observation), actions (T, d_act), rewards, terminations, truncations (T,) and
infos/task (T + 1,), the episode's task index; `data/metadata.json` holds Minari's metadata plus `ssmkit_domain`,
`ssmkit_task_params` and `ssmkit_test_tasks`.

A missing key, rows that do not add up, or episodes of unequal length (ragged) are a `DataError` naming the file
(or the Minari dataset and its episode) and the key.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ssmkit.data import DataError
from ssmkit_rl import physics, point_robot

Policy = Callable[[np.ndarray, int], np.ndarray]
NPZ_STEP_KEYS = ("observations", "actions", "rewards", "next_observations")
NPZ_KEYS = (*NPZ_STEP_KEYS, "episode_lengths", "episode_tasks", "task_params", "test_tasks", "domain")
MINARI_EPISODE_KEYS = ("observations", "actions", "rewards", "terminations", "truncations")
MINARI_METADATA_KEYS = ("ssmkit_domain", "ssmkit_task_params", "ssmkit_test_tasks")


# ---- domains -------------------------------------------------------------------------------------------------


class PointRobotDomain:
    """Point-Robot goals (`ssmkit_rl.point_robot`); a task's parameters are its goal (x, y)."""

    name, obs_dim, action_dim, max_action = (
        "point_robot",
        point_robot.OBS_DIM,
        point_robot.ACTION_DIM,
        point_robot.MAX_ACTION,
    )
    param_names, fps = ("goal_x", "goal_y"), 5

    def tasks(self, n_tasks: int, n_test_tasks: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(task parameters (G, 2), held-out task indices (n_test,))."""
        return point_robot.half_circle_goals(n_tasks, n_test_tasks, seed)

    def env(self, params: np.ndarray, rng: np.random.Generator, render: bool = False) -> point_robot.PointRobot:
        return point_robot.PointRobot(params, rng)

    def oracle(self, obs: np.ndarray, params: np.ndarray) -> np.ndarray:
        return point_robot.oracle_actions(obs, params)

    def behaviour(self, params: np.ndarray, rng: np.random.Generator, **settings: Any) -> Policy:
        b = point_robot.Behaviour.draw(params, rng=rng, **settings)
        return lambda obs, t: point_robot.behaviour_actions(obs, t, b, rng)

    def random(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return point_robot.random_actions(n, rng)

    def frames(self, env: point_robot.PointRobot, observations: np.ndarray) -> list[np.ndarray]:
        """observations (T + 1, 2) of env's episode 0 -> frames."""
        return point_robot.render_frames(observations, env.goals[0])


class PhysicsDomain:
    """CartPole / Pendulum with varied physics (`ssmkit_rl.physics`); a task's parameters are its constants."""

    def __init__(self, family: physics.Physics) -> None:
        self.family = family
        self.name, self.obs_dim = family.name, family.obs_dim
        self.action_dim, self.max_action = family.action_dim, family.max_action
        self.param_names, self.fps = tuple(family.params), 25

    def tasks(self, n_tasks: int, n_test_tasks: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 < n_test_tasks < n_tasks:
            raise ValueError(f"need 0 < n_test_tasks < n_tasks, got {n_test_tasks} and {n_tasks}")
        rng = np.random.default_rng(seed)
        params = self.family.draw(n_tasks, rng)
        return params, np.sort(rng.permutation(n_tasks)[-n_test_tasks:])

    def env(self, params: np.ndarray, rng: np.random.Generator, render: bool = False) -> physics.PhysicsEnv:
        return physics.PhysicsEnv(self.family, params, rng, "rgb_array" if render else None)

    def oracle(self, obs: np.ndarray, params: np.ndarray) -> np.ndarray:
        return physics.oracle_actions(self.family, obs, params)

    def behaviour(self, params: np.ndarray, rng: np.random.Generator, **settings: Any) -> Policy:
        return physics.behaviour(self.family, params, rng, **settings)

    def random(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return physics.random_actions(self.family, n, rng)

    def frames(self, env: physics.PhysicsEnv, observations: np.ndarray) -> list[np.ndarray]:
        return env.frames(observations)


DOMAINS = {d.name: d for d in (PointRobotDomain(), PhysicsDomain(physics.CARTPOLE), PhysicsDomain(physics.PENDULUM))}


def domain(name: str) -> PointRobotDomain | PhysicsDomain:
    """The domain called `name`; an unknown name is a DataError listing the known ones."""
    if name not in DOMAINS:
        raise DataError(f"unknown domain {name!r}; known: {', '.join(DOMAINS)}", source="domain")
    return DOMAINS[name]


# ---- the data ------------------------------------------------------------------------------------------------


@dataclass
class OfflineData:
    """Episodes of equal length T: observations, next_observations (E, T, d_obs), actions (E, T, d_act), rewards
    (E, T); tasks (E,) task indices; task_params (G, p); test_tasks (n_test,); domain: its name."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    tasks: np.ndarray
    task_params: np.ndarray
    test_tasks: np.ndarray
    domain: str = "point_robot"

    @property
    def episode_length(self) -> int:
        return int(self.rewards.shape[1])

    @property
    def train_tasks(self) -> np.ndarray:
        return np.setdiff1d(np.arange(len(self.task_params)), self.test_tasks)

    def returns(self) -> np.ndarray:
        """(E,) episode returns."""
        return self.rewards.sum(axis=1)


def play(env: Any, policy: Policy, episode_length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One episode of each of env's N tasks with `policy(observations (N, d_obs), step) -> actions (N, d_act)`:
    (observations (N, T, d_obs), actions (N, T, d_act), rewards (N, T), next_observations (N, T, d_obs))."""
    obs, acts, rews, nexts = [], [], [], []
    current = env.reset()
    for t in range(episode_length):
        action = np.asarray(policy(current, t), dtype=np.float32)
        following, reward = env.step(action)
        obs.append(current), acts.append(action), rews.append(reward), nexts.append(following)
        current = following
    return tuple(np.stack(x, axis=1).astype(np.float32) for x in (obs, acts, rews, nexts))


def generate(
    domain_name: str = "point_robot",
    n_tasks: int = 50,
    n_test_tasks: int = 5,
    episodes_per_task: int = 40,
    episode_length: int = 20,
    random_fraction: float = 0.1,
    aim_noise: float = 0.1,
    max_explore_steps: int = 6,
    seed: int = 0,
    line_openings: float = 0.0,
) -> OfflineData:
    """The offline multi-task set: `episodes_per_task` medium-policy episodes on every training task (none on the
    held-out ones), seeded. `line_openings` (Point-Robot only): the share of the behaviour's openings that are a
    straight line in a random direction rather than random steps."""
    d = domain(domain_name)
    params, test_tasks = d.tasks(n_tasks, n_test_tasks, seed)
    rng = np.random.default_rng(seed + 1)
    tasks = np.repeat(np.setdiff1d(np.arange(n_tasks), test_tasks), episodes_per_task)
    env = d.env(params[tasks], rng)
    settings = {"random_fraction": random_fraction, "aim_noise": aim_noise, "max_explore_steps": max_explore_steps}
    if line_openings:
        if d.name != "point_robot":
            raise ValueError(f"line_openings is a point_robot setting, not one of {d.name}")
        settings["line_openings"] = line_openings
    steps = play(env, d.behaviour(params[tasks], rng, **settings), episode_length)
    return OfflineData(*steps, tasks.astype(np.int64), params.astype(np.float32), test_tasks.astype(np.int64), d.name)


def stack_episodes(
    episodes: dict[str, list[np.ndarray]], lengths: np.ndarray, source: str | Path
) -> dict[str, np.ndarray]:
    """Per-key lists of (T_i, ...) episodes -> (E, T, ...) arrays; unequal lengths are a DataError."""
    if len(lengths) == 0 or np.any(lengths < 1):
        raise DataError("key episode_lengths: needs at least one episode, each of at least one step", source=source)
    if np.any(lengths != lengths[0]):
        bad = int(np.flatnonzero(lengths != lengths[0])[0])
        raise DataError(
            f"key episode_lengths: ragged episodes (episode {bad} has {lengths[bad]} steps, episode 0 has "
            f"{lengths[0]}); every episode must have the same length",
            source=source,
        )
    return {k: np.stack(v).astype(np.float32) for k, v in episodes.items()}


# ---- npz -------------------------------------------------------------------------------------------------------


def save_npz(data: OfflineData, path: str | Path) -> Path:
    """Write `data` in the flat layout of the module docstring."""
    n_episodes, length = data.rewards.shape
    flat = {k: getattr(data, k).reshape(n_episodes * length, *getattr(data, k).shape[2:]) for k in NPZ_STEP_KEYS}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        **flat,
        episode_lengths=np.full(n_episodes, length, dtype=np.int64),
        episode_tasks=data.tasks,
        task_params=data.task_params,
        test_tasks=data.test_tasks,
        domain=np.array(data.domain),
    )
    return path


def load_npz(path: str | Path) -> OfflineData:
    """Read a file in the flat layout; a missing key, rows that do not add up or ragged episodes are a DataError."""
    with np.load(path, allow_pickle=False) as f:
        missing = [k for k in NPZ_KEYS if k not in f]
        if missing:
            raise DataError(f"missing key(s) {missing}; an offline Meta-DT npz holds {list(NPZ_KEYS)}", source=path)
        arrays = {k: f[k] for k in NPZ_KEYS}
    lengths = arrays["episode_lengths"]
    for key in NPZ_STEP_KEYS:
        if len(arrays[key]) != lengths.sum():
            raise DataError(
                f"key {key}: {len(arrays[key])} rows, but episode_lengths sums to {lengths.sum()}", source=path
            )
    if len(arrays["episode_tasks"]) != len(lengths):
        raise DataError(
            f"key episode_tasks: {len(arrays['episode_tasks'])} entries for {len(lengths)} episodes", source=path
        )
    bounds = np.cumsum(lengths)[:-1]
    steps = stack_episodes({k: np.split(arrays[k], bounds) for k in NPZ_STEP_KEYS}, lengths, path)
    return OfflineData(
        **steps,
        tasks=arrays["episode_tasks"].astype(np.int64),
        task_params=arrays["task_params"].astype(np.float32),
        test_tasks=arrays["test_tasks"].astype(np.int64),
        domain=str(arrays["domain"]),
    )


# ---- Minari ------------------------------------------------------------------------------------------------------


@contextmanager
def minari_root(path: Path) -> Iterator[Any]:
    """The `minari` module with MINARI_DATASETS_PATH set to path's folder for the duration (nothing downloaded)."""
    import minari

    before = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(path.parent.resolve())
    try:
        yield minari
    finally:
        if before is None:
            os.environ.pop("MINARI_DATASETS_PATH")
        else:
            os.environ["MINARI_DATASETS_PATH"] = before


def save_minari(data: OfflineData, path: str | Path) -> Path:
    """Write `data` as the Minari dataset `<root>/<dataset_id>` (`path`; an existing one is refused by Minari)."""
    import warnings

    from gymnasium import spaces

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with minari_root(path) as minari:
        from minari.data_collector import EpisodeBuffer

        n_episodes, length = data.rewards.shape
        buffers = [
            EpisodeBuffer(
                id=i,
                observations=np.concatenate([data.observations[i], data.next_observations[i, -1:]]),
                actions=data.actions[i],
                rewards=data.rewards[i],
                terminations=np.zeros(length, dtype=bool),
                truncations=np.arange(length) == length - 1,
                infos={"task": np.full(length + 1, data.tasks[i], dtype=np.int64)},
            )
            for i in range(n_episodes)
        ]
        d = domain(data.domain)
        with warnings.catch_warnings():  # Minari asks for an author, a code link and an env spec (a family has none)
            warnings.simplefilter("ignore", UserWarning)
            dataset = minari.create_dataset_from_buffers(
                path.name,
                buffers,
                observation_space=spaces.Box(-np.inf, np.inf, (d.obs_dim,), np.float32),
                action_space=spaces.Box(-d.max_action, d.max_action, (d.action_dim,), np.float32),
                algorithm_name="ssmkit-rl medium behaviour policy",
                description=f"Meta-DT offline multi-task data, domain {data.domain} (ssmkit_rl.offline)",
            )
        dataset.storage.update_metadata(
            {
                "ssmkit_domain": data.domain,
                "ssmkit_task_params": data.task_params.tolist(),
                "ssmkit_test_tasks": data.test_tasks.tolist(),
            }
        )
    return path


def load_minari(path: str | Path) -> OfflineData:
    """Read the Minari dataset `<root>/<dataset_id>`; a missing key or ragged episodes are a DataError."""
    path = Path(path)
    with minari_root(path) as minari:
        try:
            dataset = minari.load_dataset(path.name)
        except (ValueError, FileNotFoundError, KeyError) as e:
            raise DataError(f"cannot open the Minari dataset {path.name!r}: {e}", source=path) from e
        metadata = dataset.storage.metadata
        missing = [k for k in MINARI_METADATA_KEYS if k not in metadata]
        if missing:
            raise DataError(f"metadata.json: missing key(s) {missing}", source=path)
        episodes: dict[str, list[np.ndarray]] = {k: [] for k in NPZ_STEP_KEYS}
        tasks, lengths = [], []
        for i in range(dataset.total_episodes):
            try:
                episode = next(iter(dataset.storage.get_episodes([i])))
            except KeyError as e:
                raise DataError(f"episode_{i}: {e} (an episode holds {list(MINARI_EPISODE_KEYS)})", source=path) from e
            obs, n_steps = np.asarray(episode["observations"]), len(episode["rewards"])
            if len(obs) != n_steps + 1 or len(episode["actions"]) != n_steps:
                raise DataError(
                    f"episode_{i}: {len(obs)} observations and {len(episode['actions'])} actions for {n_steps} "
                    f"rewards (Minari stores T + 1 observations, T actions)",
                    source=path,
                )
            if not episode.get("infos") or "task" not in episode["infos"]:
                raise DataError(f"episode_{i}: missing key infos/task (the episode's task index)", source=path)
            for key, value in zip(
                NPZ_STEP_KEYS, (obs[:-1], episode["actions"], episode["rewards"], obs[1:]), strict=True
            ):
                episodes[key].append(np.asarray(value))
            tasks.append(int(np.asarray(episode["infos"]["task"])[0]))
            lengths.append(n_steps)
    steps = stack_episodes(episodes, np.array(lengths), path)
    return OfflineData(
        **steps,
        tasks=np.array(tasks, dtype=np.int64),
        task_params=np.asarray(metadata["ssmkit_task_params"], dtype=np.float32),
        test_tasks=np.asarray(metadata["ssmkit_test_tasks"], dtype=np.int64),
        domain=str(metadata["ssmkit_domain"]),
    )


def load_offline(path: str | Path) -> OfflineData:
    """An npz file (suffix .npz) or a Minari dataset folder (any other path)."""
    return load_npz(path) if Path(path).suffix == ".npz" else load_minari(path)


def save_offline(data: OfflineData, path: str | Path) -> Path:
    """Write as npz (suffix .npz) or as a Minari dataset (any other path)."""
    return save_npz(data, path) if Path(path).suffix == ".npz" else save_minari(data, path)
