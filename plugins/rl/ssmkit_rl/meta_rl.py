"""The meta-RL task of the S5 paper (Lu et al., 2023, popjaxrl's `MetaCartPole`): trials of a classic-control
environment seen through a random linear projection drawn per episode.

`MetaRLEnv` is a gymnasium environment; `envs.py` registers it as `MetaStatelessCartPole-v0` (popjaxrl's
`NoisyStatelessMetaCartPole` without noise: CartPole-v1's positions x, theta projected to 4, actions as they are),
`MetaCartPole-v0` (the full state projected, actions permuted) and `MetaPendulum-v0` (Pendulum-v1), so
`--data.env_id MetaStatelessCartPole-v0` runs it in the `ppo` task.

- An episode is `n_trials` trials of the inner environment. A trial ends when the inner episode does (CartPole:
  the pole falls, or `max_trial_steps`; Pendulum: `max_trial_steps`); the next trial starts at once in the same
  episode, from the same initial state when `same_start` (popjaxrl resets every trial to the episode's first
  state) or from a fresh one. The episode ends (`terminated`) with the last trial, so the agent's memory, which
  restarts only at episode ends, is carried across trials.
- Per episode, drawn from the environment's seeded generator: a matrix W (d_proj x d_kept) with orthonormal
  columns that the observation's kept components (`observe`, divided by `obs_scale`) are multiplied by (d_proj =
  d_kept: an orthogonal matrix), and an action map: a permutation of a Discrete action space's actions, or an
  orthogonal matrix M that a Box action is multiplied by before clipping to the bounds (for Pendulum's one torque:
  a sign flip). The agent cannot act well before it has learnt the episode's W and M from what it sees. For
  CartPole the action permutation adds nothing: the dynamics are mirror-symmetric (f(-s, swapped a) = -f(s, a)),
  so permuted actions under W are the task of -W, which is drawn as often.
- Observation (d_proj + 1,): W o, then a flag that is 1 at a trial's first step. The agent adds the previous
  action and reward itself; they continue across trial boundaries and are zero only at an episode's first step.
- Reward: the inner reward times `reward_scale` (Pendulum's -16..0 per step is large for PPO's value head).
- Info at the episode's last step: `trial_returns` (n_trials,), the (scaled) return of each trial; the vector
  env hands it on in `final_info` (same-step autoreset), and the PPO task reports returns per trial from it.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


def orthogonal(n: int, rng: np.random.Generator, m: int | None = None) -> np.ndarray:
    """A random (n, m) matrix with orthonormal columns (m <= n; m None: n, an orthogonal matrix), uniform over
    such matrices (QR of a Gaussian, signs fixed)."""
    q, r = np.linalg.qr(rng.normal(size=(n, n if m is None else m)))
    return q * np.sign(np.diag(r))


class MetaRLEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(
        self,
        env_id: str = "CartPole-v1",
        n_trials: int = 4,
        max_trial_steps: int = 200,
        same_start: bool = True,
        project_actions: bool = True,
        reward_scale: float = 1.0,
        observe: list[int] | None = None,
        d_proj: int | None = None,
        obs_scale: list[float] | None = None,
        render_mode: str | None = None,
    ) -> None:
        """Trials of `env_id` under a random observation / action projection drawn per episode.

        Args:
            env_id: the inner gymnasium environment (Box observations; Discrete or Box actions).
            n_trials: trials per episode (popjaxrl: 16).
            max_trial_steps: the most steps of one trial (the inner environment's time limit; popjaxrl: 200).
            same_start: every trial starts from the episode's first state (popjaxrl), else from a fresh one.
            project_actions: draw the action map too (else only the observation is projected).
            reward_scale: the inner reward is multiplied by it (popjaxrl: 1 / max_trial_steps, so a trial's return
                is at most 1).
            observe: the inner observation's components that are kept before the projection (None: all);
                CartPole's (x, x_dot, theta, theta_dot) with [0, 2]: positions only, popjaxrl's StatelessCartPole.
            d_proj: the projection's output size (>= the kept components; None: as many); W is (d_proj, d_kept)
                with orthonormal columns (popjaxrl: 2 positions -> 4).
            obs_scale: the kept components are divided by these before the projection (None: 1), e.g. CartPole's
                termination bounds (2.4, 0.21) so that the small pole angle is not drowned by the cart position.
            render_mode: "rgb_array" or None (the inner environment's frames).
        """
        if n_trials < 1 or max_trial_steps < 1:
            raise ValueError(f"n_trials and max_trial_steps must be >= 1, got {n_trials}, {max_trial_steps}")
        self.inner = gym.make(env_id, max_episode_steps=max_trial_steps, render_mode=render_mode)
        obs_space, self.action_space = self.inner.observation_space, self.inner.action_space
        if not isinstance(obs_space, spaces.Box) or not isinstance(self.action_space, spaces.Discrete | spaces.Box):
            raise ValueError(f"{env_id}: the meta-RL task needs Box observations and Discrete or Box actions")
        d_inner = int(np.prod(obs_space.shape))
        self.kept = list(range(d_inner)) if observe is None else [int(i) for i in observe]
        if not self.kept or not all(0 <= i < d_inner for i in self.kept):
            raise ValueError(f"observe must pick components of {env_id}'s {d_inner}, got {observe}")
        self.d_obs = len(self.kept) if d_proj is None else d_proj
        if self.d_obs < len(self.kept):
            raise ValueError(f"d_proj must be >= the {len(self.kept)} observed components, got {d_proj}")
        self.obs_scale = np.ones(len(self.kept)) if obs_scale is None else np.asarray(obs_scale, dtype=np.float64)
        if self.obs_scale.shape != (len(self.kept),) or not (self.obs_scale > 0).all():
            raise ValueError(f"obs_scale must hold {len(self.kept)} positive numbers, got {obs_scale}")
        self.observation_space = spaces.Box(-np.inf, np.inf, (self.d_obs + 1,), np.float32)
        self.n_trials, self.same_start, self.project_actions = n_trials, same_start, project_actions
        self.reward_scale, self.render_mode = reward_scale, render_mode
        self.obs_matrix = np.eye(self.d_obs, len(self.kept))
        self.action_map: np.ndarray | None = None
        self.trial, self.trial_returns, self.start_seed = 0, np.zeros(n_trials), 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        rng = self.np_random
        self.obs_matrix = orthogonal(self.d_obs, rng, len(self.kept))
        if isinstance(self.action_space, spaces.Discrete):
            n = int(self.action_space.n)
            self.action_map = rng.permutation(n) if self.project_actions else np.arange(n)
        else:
            n = int(np.prod(self.action_space.shape))
            self.action_map = orthogonal(n, rng) if self.project_actions else np.eye(n)
        self.trial, self.trial_returns = 0, np.zeros(self.n_trials)
        self.start_seed = int(rng.integers(2**31))
        return self.start_trial(), {}

    def start_trial(self) -> np.ndarray:
        """Reset the inner environment for the next trial: its projected first observation, flag 1."""
        seed = self.start_seed if self.same_start else int(self.np_random.integers(2**31))
        obs, _ = self.inner.reset(seed=seed)
        return self.observe(obs, first=True)

    def observe(self, obs: np.ndarray, first: bool) -> np.ndarray:
        """The inner observation -> (d_obs + 1,): W o (o: the `observe` components) and the trial-start flag."""
        kept = np.asarray(obs, dtype=np.float64).reshape(-1)[self.kept] / self.obs_scale
        return np.append(self.obs_matrix @ kept, float(first)).astype(np.float32)

    def inner_action(self, action: Any) -> Any:
        """The agent's action -> the inner environment's, through this episode's action map."""
        if isinstance(self.action_space, spaces.Discrete):
            start = int(self.action_space.start)
            return int(self.action_map[int(action) - start]) + start
        a = self.action_map @ np.asarray(action, dtype=np.float64).reshape(-1)
        space = self.action_space
        return np.clip(a.reshape(space.shape), space.low, space.high).astype(space.dtype)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, terminated, truncated, _ = self.inner.step(self.inner_action(action))
        reward = float(reward) * self.reward_scale
        self.trial_returns[self.trial] += reward
        if not (terminated or truncated):
            return self.observe(obs, first=False), reward, False, False, {}
        self.trial += 1
        if self.trial < self.n_trials:
            return self.start_trial(), reward, False, False, {}
        return self.observe(obs, first=False), reward, True, False, {"trial_returns": self.trial_returns.copy()}

    def render(self) -> np.ndarray | None:
        return self.inner.render()

    def close(self) -> None:
        self.inner.close()
