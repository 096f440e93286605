"""Point-Robot goals (Meta-DT's multi-task benchmark, no physics engine): the environment, its controllers, the
offline data the plugin generates, and that data as npz.

The environment: a point on the plane starts near the origin (uniform in +-`START_NOISE` per axis); an action is a
velocity, clipped to +-`MAX_ACTION` per axis, added to the position; the reward is minus the distance between the
new position and the task's goal; an episode lasts `episode_length` steps (20). Tasks are goals on the upper half
of the unit circle (angles uniform in [0, pi], seeded); the last `n_test_goals` of a seeded permutation are the
held-out tasks. `PointRobot` steps N episodes at once (each with its own goal) in numpy.

Controllers (`oracle_actions`, `behaviour_actions`, `random_actions`):
- the goal-aware oracle: the velocity toward the goal, clipped (it reaches a goal in at most 10 steps);
- the "medium" behaviour policy of the offline data: per episode, it first acts at random for 0 to
  `max_explore_steps` steps (uniform), then steers toward a goal seen with an error (N(0, `aim_noise`) per axis),
  with a gain in [0.3, 1] and Gaussian action noise (sigma in [0.02, 0.1]), taking a uniform random action with
  probability 0.1 per step; a `random_fraction` of the episodes is all random. The random opening puts states
  whose history says nothing about the goal into the data, followed by goal-directed actions: what a policy
  acting on its own, at first uninformed, history meets online (without it the decision model learns to continue
  the direction of its past actions and ignores z);
- uniform random actions in the box.

The npz layout (`save_npz` / `load_npz`; flat arrays, one row per step, episodes back to back):
    observations (S, 2), actions (S, 2), rewards (S,), next_observations (S, 2): the transitions, float32;
    episode_lengths (E,) int64, summing to S; episode_tasks (E,) int64: each episode's goal index;
    goals (G, 2) float32: the goals; test_tasks (n_test,) int64: the held-out goal indices.
A missing key, rows that do not add up, or episodes of unequal length (ragged) are a `DataError` naming the file
and the key. Minari's format (HDF5 episode groups) is not written or read yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ssmkit.data import DataError

MAX_ACTION = 0.1
START_NOISE = 0.05
OBS_DIM = ACTION_DIM = 2
NPZ_STEP_KEYS = ("observations", "actions", "rewards", "next_observations")
NPZ_KEYS = (*NPZ_STEP_KEYS, "episode_lengths", "episode_tasks", "goals", "test_tasks")


def half_circle_goals(n_goals: int, n_test_goals: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(goals (G, 2) on the upper unit half circle, test task indices (n_test,)), seeded."""
    if not 0 < n_test_goals < n_goals:
        raise ValueError(f"need 0 < n_test_goals < n_goals, got {n_test_goals} and {n_goals}")
    rng = np.random.default_rng(seed)
    angles = rng.uniform(0.0, np.pi, n_goals)
    goals = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    test = np.sort(rng.permutation(n_goals)[-n_test_goals:])
    return goals, test


class PointRobot:
    """N Point-Robot episodes stepped together; goals (N, 2)."""

    def __init__(self, goals: np.ndarray, rng: np.random.Generator) -> None:
        self.goals = np.asarray(goals, dtype=np.float32)
        self.rng = rng
        self.position = np.zeros_like(self.goals)

    def reset(self) -> np.ndarray:
        """Start positions (N, 2), uniform in +-START_NOISE."""
        self.position = self.rng.uniform(-START_NOISE, START_NOISE, self.goals.shape).astype(np.float32)
        return self.position.copy()

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """actions (N, 2) -> (next positions (N, 2), rewards (N,) = -|next position - goal|)."""
        self.position = self.position + np.clip(actions, -MAX_ACTION, MAX_ACTION).astype(np.float32)
        return self.position.copy(), -np.linalg.norm(self.position - self.goals, axis=1).astype(np.float32)


def oracle_actions(position: np.ndarray, goals: np.ndarray) -> np.ndarray:
    """The goal-aware controller: position, goals (N, 2) -> the clipped velocity toward the goal (N, 2)."""
    return np.clip(goals - position, -MAX_ACTION, MAX_ACTION)


def random_actions(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 2) uniform in the action box."""
    return rng.uniform(-MAX_ACTION, MAX_ACTION, (n, ACTION_DIM)).astype(np.float32)


@dataclass
class Behaviour:
    """Per-episode settings of the medium behaviour policy, (N,) or (N, 2) arrays."""

    aim: np.ndarray  # (N, 2): the goal as this episode's controller sees it
    gain: np.ndarray  # (N, 1)
    noise: np.ndarray  # (N, 1): action noise sigma
    random: np.ndarray  # (N,) bool: an all-random episode
    explore_steps: np.ndarray  # (N,) int: random actions before steering

    @classmethod
    def draw(
        cls,
        goals: np.ndarray,
        random_fraction: float,
        aim_noise: float,
        max_explore_steps: int,
        rng: np.random.Generator,
    ) -> Behaviour:
        n = len(goals)
        return cls(
            aim=goals + rng.normal(0.0, aim_noise, goals.shape),
            gain=rng.uniform(0.3, 1.0, (n, 1)),
            noise=rng.uniform(0.02, 0.1, (n, 1)),
            random=rng.random(n) < random_fraction,
            explore_steps=rng.integers(0, max_explore_steps + 1, n),
        )


def behaviour_actions(
    position: np.ndarray, t: int, b: Behaviour, rng: np.random.Generator, epsilon: float = 0.1
) -> np.ndarray:
    """The medium policy's actions (N, 2) at step t and positions (N, 2), clipped to the box."""
    steer = b.gain * (b.aim - position) + rng.normal(0.0, 1.0, position.shape) * b.noise
    explore = b.random | (t < b.explore_steps) | (rng.random(len(position)) < epsilon)
    return np.clip(np.where(explore[:, None], random_actions(len(position), rng), steer), -MAX_ACTION, MAX_ACTION)


@dataclass
class OfflineData:
    """Episodes of equal length T: observations, next_observations (E, T, 2), actions (E, T, 2), rewards (E, T);
    tasks (E,) goal indices; goals (G, 2); test_tasks (n_test,)."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    tasks: np.ndarray
    goals: np.ndarray
    test_tasks: np.ndarray

    @property
    def episode_length(self) -> int:
        return int(self.rewards.shape[1])

    @property
    def train_tasks(self) -> np.ndarray:
        return np.setdiff1d(np.arange(len(self.goals)), self.test_tasks)

    def returns(self) -> np.ndarray:
        """(E,) episode returns."""
        return self.rewards.sum(axis=1)


def generate(
    n_goals: int = 50,
    n_test_goals: int = 5,
    episodes_per_goal: int = 40,
    episode_length: int = 20,
    random_fraction: float = 0.1,
    aim_noise: float = 0.1,
    max_explore_steps: int = 6,
    seed: int = 0,
) -> OfflineData:
    """The offline multi-task set: `episodes_per_goal` medium-policy episodes on every training goal (none on the
    held-out ones), seeded."""
    goals, test_tasks = half_circle_goals(n_goals, n_test_goals, seed)
    rng = np.random.default_rng(seed + 1)
    train = np.setdiff1d(np.arange(n_goals), test_tasks)
    tasks = np.repeat(train, episodes_per_goal)
    env = PointRobot(goals[tasks], rng)
    behaviour = Behaviour.draw(goals[tasks], random_fraction, aim_noise, max_explore_steps, rng)
    steps = play(env, lambda pos, t: behaviour_actions(pos, t, behaviour, rng), episode_length)
    return OfflineData(*steps, tasks=tasks.astype(np.int64), goals=goals, test_tasks=test_tasks.astype(np.int64))


def play(env: PointRobot, policy, episode_length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One episode of each of env's N goals with `policy(position (N, 2), step) -> actions (N, 2)`:
    (observations (N, T, 2), actions (N, T, 2), rewards (N, T), next_observations (N, T, 2))."""
    obs, acts, rews, nexts = [], [], [], []
    position = env.reset()
    for t in range(episode_length):
        action = np.clip(policy(position, t), -MAX_ACTION, MAX_ACTION).astype(np.float32)
        following, reward = env.step(action)
        obs.append(position), acts.append(action), rews.append(reward), nexts.append(following)
        position = following
    return tuple(np.stack(x, axis=1) for x in (obs, acts, rews, nexts))


# ---- npz ---------------------------------------------------------------------------------------------------


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
        goals=data.goals,
        test_tasks=data.test_tasks,
    )
    return path


def load_npz(path: str | Path) -> OfflineData:
    """Read a file in the flat layout; a missing key, rows that do not add up or ragged episodes are a DataError."""
    with np.load(path, allow_pickle=False) as f:
        missing = [k for k in NPZ_KEYS if k not in f]
        if missing:
            raise DataError(f"missing key(s) {missing}; a Point-Robot npz holds {list(NPZ_KEYS)}", source=path)
        arrays = {k: f[k] for k in NPZ_KEYS}
    lengths = arrays["episode_lengths"]
    if len(lengths) == 0 or np.any(lengths < 1):
        raise DataError("key episode_lengths: needs at least one episode, each of at least one step", source=path)
    if np.any(lengths != lengths[0]):
        bad = int(np.flatnonzero(lengths != lengths[0])[0])
        raise DataError(
            f"key episode_lengths: ragged episodes (episode {bad} has {lengths[bad]} steps, episode 0 has "
            f"{lengths[0]}); every episode must have the same length",
            source=path,
        )
    n_episodes, length = len(lengths), int(lengths[0])
    for key in NPZ_STEP_KEYS:
        if len(arrays[key]) != n_episodes * length:
            raise DataError(
                f"key {key}: {len(arrays[key])} rows, but episode_lengths sums to {n_episodes * length}", source=path
            )
    if len(arrays["episode_tasks"]) != n_episodes:
        raise DataError(
            f"key episode_tasks: {len(arrays['episode_tasks'])} entries for {n_episodes} episodes", source=path
        )
    steps = [arrays[k].reshape(n_episodes, length, *arrays[k].shape[1:]).astype(np.float32) for k in NPZ_STEP_KEYS]
    return OfflineData(
        *steps,
        tasks=arrays["episode_tasks"].astype(np.int64),
        goals=arrays["goals"].astype(np.float32),
        test_tasks=arrays["test_tasks"].astype(np.int64),
    )


# ---- pictures ----------------------------------------------------------------------------------------------


def render_frames(positions: np.ndarray, goal: np.ndarray, size: int = 96) -> list[np.ndarray]:
    """positions (T + 1, 2) of one episode, goal (2,) -> T + 1 frames (size, size, 3) uint8: the goal (red), the
    path so far (grey) and the robot (blue), on [-1.2, 1.2] x [-0.4, 1.4]."""
    frames, canvas = [], np.full((size, size, 3), 255, dtype=np.uint8)
    for t, p in enumerate(positions):
        if t:
            dot(canvas, positions[t - 1], (170, 170, 170), 1)
        frame = canvas.copy()
        dot(frame, goal, (220, 40, 40), 3)
        dot(frame, p, (40, 80, 220), 2)
        frames.append(frame)
    return frames


def dot(image: np.ndarray, xy: np.ndarray, colour: tuple[int, int, int], radius: int) -> None:
    """Paint a square dot of `radius` pixels at plane point xy (2,) into image (H, W, 3), in place."""
    size = image.shape[0]
    col = int(round((xy[0] + 1.2) / 2.4 * (size - 1)))
    row = int(round((1.4 - xy[1]) / 1.8 * (size - 1)))
    image[max(row - radius, 0) : row + radius + 1, max(col - radius, 0) : col + radius + 1] = colour
