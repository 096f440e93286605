"""CartPole and Pendulum with varied physics: Meta-DT's multi-task domains beside Point-Robot.

A task is a set of physical constants of gymnasium's classic-control environment, set as attributes of its
unwrapped env (`CARTPOLE` / `PENDULUM` name them with their ranges; each task draws them uniformly, seeded):

- CartPole-v1: `gravity` [4.9, 19.6] (default 9.8), `masspole` [0.05, 0.5] (0.1), `length` (the half pole) [0.25,
  1.0] (0.5); `total_mass` and `polemass_length`, which the env derives in its constructor, are set to match.
- Pendulum-v1: `g` [5, 15] (10), `m` [0.5, 1.5] (1), `l` [0.5, 1.5] (1).

`PhysicsEnv` steps N such environments together (each with its own constants) for a fixed horizon, so that every
offline episode has the same length: an action is one float in [-max_action, max_action] (CartPole: push right
when > 0, left otherwise, max_action 1; Pendulum: the torque, max_action 2). CartPole's episode does not stop
when the pole falls: from then on the state stays where it fell and the reward is 0, so its return is the number
of steps balanced. Observations are gymnasium's: CartPole (x, x', theta, theta'), Pendulum (cos, sin, theta').

Controllers, given the observations (N, d) and each episode's constants (N, p):
- `oracle`: the task-aware controller. CartPole: bang-bang on a linear feedback of the state whose gains follow
  the pole's time scale sqrt(length / gravity); Pendulum: energy pumping toward the upright energy of this
  pendulum, then a PD law (with gravity compensation) near the top.
- the medium behaviour policy (`behaviour`): the oracle computed with constants that are wrong by a relative
  error N(0, `aim_noise`) per constant and episode, after 0 to `max_explore_steps` random opening steps, with a
  random action with probability 0.1 per step; a `random_fraction` of the episodes is all random.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

Policy = Callable[[np.ndarray, int], np.ndarray]


@dataclass(frozen=True)
class Physics:
    """One classic-control family: its gymnasium id, the varied constants and their ranges, the action bound."""

    name: str
    env_id: str
    params: dict[str, tuple[float, float]]
    obs_dim: int
    max_action: float
    action_dim: int = 1

    def draw(self, n_tasks: int, rng: np.random.Generator) -> np.ndarray:
        """(n_tasks, p) constants, uniform in their ranges."""
        low, high = np.array(list(self.params.values())).T
        return rng.uniform(low, high, (n_tasks, len(self.params))).astype(np.float32)


CARTPOLE = Physics(
    "cartpole", "CartPole-v1", {"gravity": (4.9, 19.6), "masspole": (0.05, 0.5), "length": (0.25, 1.0)}, 4, 1.0
)
PENDULUM = Physics("pendulum", "Pendulum-v1", {"g": (5.0, 15.0), "m": (0.5, 1.5), "l": (0.5, 1.5)}, 3, 2.0)


def set_physics(env: gym.Env, physics: Physics, values: np.ndarray) -> None:
    """Set the constants `values` (p,) on the unwrapped env (and CartPole's derived masses)."""
    for name, value in zip(physics.params, values, strict=True):
        setattr(env, name, float(value))
    if physics is CARTPOLE:
        env.total_mass = env.masspole + env.masscart
        env.polemass_length = env.masspole * env.length


class PhysicsEnv:
    """N episodes of `physics`, each with its own constants params (N, p), stepped together."""

    def __init__(
        self, physics: Physics, params: np.ndarray, rng: np.random.Generator, render_mode: str | None = None
    ) -> None:
        self.physics, self.params, self.rng = physics, np.asarray(params, dtype=np.float32), rng
        self.envs = [gym.make(physics.env_id, render_mode=render_mode).unwrapped for _ in range(len(self.params))]
        for env, values in zip(self.envs, self.params, strict=True):
            set_physics(env, physics, values)
        self.fallen = np.zeros(len(self.envs), dtype=bool)
        self.obs = np.zeros((len(self.envs), physics.obs_dim), dtype=np.float32)

    @property
    def n(self) -> int:
        return len(self.envs)

    def reset(self) -> np.ndarray:
        """First observations (N, d), each env reset with a seed drawn from rng."""
        self.obs = np.stack([env.reset(seed=int(self.rng.integers(2**31)))[0] for env in self.envs])
        self.obs = self.obs.astype(np.float32)
        self.fallen[:] = False
        return self.obs.copy()

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """actions (N, 1) -> (next observations (N, d), rewards (N,)); a fallen CartPole stays put with reward 0."""
        rewards = np.zeros(self.n, dtype=np.float32)
        for i, (env, a) in enumerate(zip(self.envs, np.asarray(actions, dtype=np.float32)[:, 0], strict=True)):
            if self.fallen[i]:
                continue
            if self.physics is CARTPOLE:
                obs, reward, terminated, _, _ = env.step(int(a > 0))
                self.fallen[i] = terminated
            else:
                m = self.physics.max_action
                obs, reward, _, _, _ = env.step(np.clip([a], -m, m).astype(np.float32))
            self.obs[i], rewards[i] = obs, reward
        return self.obs.copy(), rewards

    def frames(self, observations: np.ndarray) -> list[np.ndarray]:
        """observations (T, d) of env 0's episode -> T rgb frames, env 0 put in each state (render_mode rgb_array)."""
        env, frames = self.envs[0], []
        for obs in observations:
            env.state = obs.copy() if self.physics is CARTPOLE else np.array([np.arctan2(obs[1], obs[0]), obs[2]])
            frames.append(env.render())
        return frames


def oracle_actions(physics: Physics, obs: np.ndarray, params: np.ndarray) -> np.ndarray:
    """The task-aware controller: obs (N, d), params (N, p) -> actions (N, 1) in [-max_action, max_action]."""
    if physics is CARTPOLE:
        gravity, length = params[:, 0], params[:, 2]
        tau = np.sqrt(length / gravity)  # the pole's time scale
        x, x_dot, theta, theta_dot = obs.T
        force = 0.05 * x + 0.2 * x_dot + theta + 2.0 * tau * theta_dot
        return np.where(force > 0, 1.0, -1.0)[:, None].astype(np.float32)
    g, m, length = params.T
    theta, theta_dot = np.arctan2(obs[:, 1], obs[:, 0]), obs[:, 2]
    gain = m * length**2 / 3.0  # torque per unit angular acceleration
    energy = 0.5 * theta_dot**2 + 1.5 * g / length * np.cos(theta)  # theta'' = 3g/(2l) sin(theta) + u / gain
    pump = 2.0 * gain * (1.5 * g / length - energy) * np.sign(theta_dot + 1e-6)
    hold = -gain * (1.5 * g / length * np.sin(theta) + 30.0 * theta + 8.0 * theta_dot)
    torque = np.where(np.cos(theta) > 0.85, hold, pump)
    return np.clip(torque, -physics.max_action, physics.max_action)[:, None].astype(np.float32)


def random_actions(physics: Physics, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 1) uniform in [-max_action, max_action]."""
    m = physics.max_action
    return rng.uniform(-m, m, (n, physics.action_dim)).astype(np.float32)


def behaviour(
    physics: Physics,
    params: np.ndarray,
    rng: np.random.Generator,
    random_fraction: float,
    aim_noise: float,
    max_explore_steps: int,
    epsilon: float = 0.1,
) -> Policy:
    """The medium policy of N episodes with constants params (N, p): policy(obs (N, d), t) -> actions (N, 1)."""
    n = len(params)
    believed = params * np.clip(1.0 + rng.normal(0.0, aim_noise, params.shape), 0.2, None)
    all_random = rng.random(n) < random_fraction
    explore_steps = rng.integers(0, max_explore_steps + 1, n)

    def policy(obs: np.ndarray, t: int) -> np.ndarray:
        explore = all_random | (t < explore_steps) | (rng.random(n) < epsilon)
        return np.where(explore[:, None], random_actions(physics, n, rng), oracle_actions(physics, obs, believed))

    return policy
