"""Point-Robot goals (Meta-DT's multi-task benchmark, no physics engine): the environment, its controllers and its
pictures.

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
  the direction of its past actions and ignores z). With `line_openings` > 0, that share of the openings is a
  straight line at full speed in a random direction instead (then the turn toward the goal): the data then
  holds episodes that head the wrong way and recover, as an agent that guessed wrong online must;
- uniform random actions in the box.

The offline data, its generator and its files (npz, Minari) are domain-independent: `ssmkit_rl.offline`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_ACTION = 0.1
START_NOISE = 0.05
OBS_DIM = ACTION_DIM = 2


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

    @property
    def n(self) -> int:
        return len(self.goals)

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
    heading: np.ndarray  # (N, 2): the opening's velocity in a line opening
    line: np.ndarray  # (N,) bool: the opening is a straight line at `heading`, not random steps

    @classmethod
    def draw(
        cls,
        goals: np.ndarray,
        random_fraction: float,
        aim_noise: float,
        max_explore_steps: int,
        rng: np.random.Generator,
        line_openings: float = 0.0,
    ) -> Behaviour:
        n = len(goals)
        aim, gain = goals + rng.normal(0.0, aim_noise, goals.shape), rng.uniform(0.3, 1.0, (n, 1))
        noise, random = rng.uniform(0.02, 0.1, (n, 1)), rng.random(n) < random_fraction
        explore_steps = rng.integers(0, max_explore_steps + 1, n)
        angle = rng.uniform(0.0, 2 * np.pi, n) if line_openings else np.zeros(n)  # no draw: the same data as before
        line = rng.random(n) < line_openings if line_openings else np.zeros(n, dtype=bool)
        heading = MAX_ACTION * np.stack([np.cos(angle), np.sin(angle)], axis=1)
        return cls(aim, gain, noise, random, explore_steps, heading, line)


def behaviour_actions(
    position: np.ndarray, t: int, b: Behaviour, rng: np.random.Generator, epsilon: float = 0.1
) -> np.ndarray:
    """The medium policy's actions (N, 2) at step t and positions (N, 2), clipped to the box."""
    steer = b.gain * (b.aim - position) + rng.normal(0.0, 1.0, position.shape) * b.noise
    opening = (t < b.explore_steps) & ~b.random
    explore = b.random | opening | (rng.random(len(position)) < epsilon)
    noise = np.where((opening & b.line)[:, None], b.heading, random_actions(len(position), rng))
    return np.clip(np.where(explore[:, None], noise, steer), -MAX_ACTION, MAX_ACTION)


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
