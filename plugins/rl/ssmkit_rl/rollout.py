"""Acting in vector environments on the agent's recurrent `step` path: training rollouts and evaluation episodes.

`EnvRunner` holds what survives between rollouts (the environments, the current observations, the previous
actions and rewards, the running episode returns, and with `carry` the agent's memory). `collect` runs `n_steps`
steps and returns a `Rollout`. Without `carry` the agent's memory starts empty at every rollout (`resets[:, 0]` is
true); with it the rollout starts from the memory the previous one left (`Rollout.initial_state`, which the
update's scan starts from: `prefill` with resets), so an episode spanning two rollouts keeps its past. Either way
the memory restarts at every episode boundary, and acting and the update's one parallel scan over the rollout
compute the same function.
`run_episodes` plays one episode in each of N environments (the first episode of each) and can keep the frames of
the first one. Environments that report `trial_returns` in the info of an episode's last step (the meta-RL task,
`ssmkit_rl.meta_rl`) get them collected per ended episode beside the returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from gymnasium.vector import VectorEnv

from ssmkit_rl.agents import ActorCritic
from ssmkit_rl.spaces import ObservationReader

Tensor = torch.Tensor


@dataclass
class Rollout:
    """n_steps of B environments, batch-first.

    inputs (B, L, d_in): what the agent read; resets (B, L) bool: memory restarts before step t (episode or rollout
    start); actions (B, L) long or (B, L, A) float; log_probs, values, rewards (B, L); dones (B, L) bool: the episode
    ended at step t; last_values (B,): the value of the observation after the last step; initial_state: the agent's
    memory before the first step (None: empty)."""

    inputs: Tensor
    resets: Tensor
    actions: Tensor
    log_probs: Tensor
    values: Tensor
    rewards: Tensor
    dones: Tensor
    last_values: Tensor
    episode_returns: list[float] = field(default_factory=list)  # of the episodes that ended in this rollout
    episode_lengths: list[int] = field(default_factory=list)
    trial_returns: list[np.ndarray] = field(default_factory=list)  # (n_trials,) per ended episode, where reported
    initial_state: Any = None

    def rows(self, index: Tensor, agent: ActorCritic) -> Rollout:
        """The environments `index` (a minibatch of whole sequences), with their rows of the initial memory."""
        keys = ("inputs", "resets", "actions", "log_probs", "values", "rewards", "dones", "last_values")
        state = None if self.initial_state is None else agent.memory.state_rows(self.initial_state, index)
        return Rollout(**{k: getattr(self, k)[index] for k in keys}, initial_state=state)


@dataclass
class Ended:
    """An episode that ended: its environment, return, length and (meta-RL) per-trial returns (n_trials,)."""

    env: int
    episode_return: float
    length: int
    trial_returns: np.ndarray | None = None


class EnvRunner:
    """Vector environments plus what the agent reads next."""

    def __init__(self, envs: VectorEnv, agent: ActorCritic, seed: int) -> None:
        self.envs, self.n = envs, envs.num_envs
        self.reader = ObservationReader(envs.single_observation_space)
        self.spec = agent.action
        self.restart(seed)

    def restart(self, seed: int | None = None) -> None:
        """Start a new episode in every environment (seed None: their seeded streams go on); the episodes in
        flight are dropped."""
        self.obs, _ = self.envs.reset(seed=seed)
        self.prev_action = torch.zeros(self.n, self.spec.d_encoded)
        self.prev_reward = torch.zeros(self.n)
        self.running_return = np.zeros(self.n)
        self.running_length = np.zeros(self.n, dtype=np.int64)
        self.memory: Any = None  # with `collect(carry=True)`: (the agent's state, resets of the next step)

    def inputs(self) -> Tensor:
        """(N, d_features + d_action + 1): observation features, previous action, previous reward."""
        return torch.cat([self.reader(self.obs), self.prev_action, self.prev_reward[:, None]], dim=1)

    def step(self, actions: Tensor) -> tuple[np.ndarray, np.ndarray, list[Ended]]:
        """Send actions (N,) / (N, A) -> (rewards (N,), dones (N,) bool, the episodes that ended)."""
        obs, rewards, terminated, truncated, infos = self.envs.step(self.spec.to_env(actions))
        rewards = np.asarray(rewards, dtype=np.float64)
        dones = np.logical_or(terminated, truncated)
        self.running_return += rewards
        self.running_length += 1
        trials = infos.get("final_info", {})
        ended = [
            Ended(
                int(i),
                float(self.running_return[i]),
                int(self.running_length[i]),
                trials["trial_returns"][i] if trials.get("_trial_returns", np.zeros(self.n, bool))[i] else None,
            )
            for i in np.flatnonzero(dones)
        ]
        self.running_return[dones], self.running_length[dones] = 0.0, 0
        keep = torch.as_tensor(~dones, dtype=torch.float32)
        self.obs = obs
        self.prev_action = self.spec.encode(actions) * keep[:, None]  # zero at an episode's first step
        self.prev_reward = torch.as_tensor(rewards, dtype=torch.float32) * keep
        return rewards, dones, ended

    def close(self) -> None:
        self.envs.close()


def act(agent: ActorCritic, inputs: Tensor, resets: Tensor, state: Any, deterministic: bool) -> tuple[Tensor, ...]:
    """One step: (actions, log_probs, values, state)."""
    dist, values, state = agent.step(inputs, resets, state)
    if deterministic:
        actions = dist.probs.argmax(-1) if agent.action.discrete else dist.mean
    else:
        actions = dist.sample()
    return actions, dist.log_prob(actions), values, state


@torch.no_grad()
def collect(agent: ActorCritic, runner: EnvRunner, n_steps: int, carry: bool = False) -> Rollout:
    """n_steps of every environment with sampled actions; the memory starts empty, or with `carry` from where the
    previous rollout of this runner left it (empty at its first)."""
    device = next(agent.parameters()).device
    initial, resets_t = (None, None) if runner.memory is None or not carry else runner.memory
    state = agent.initial_state(runner.n) if initial is None else initial
    resets_t = torch.ones(runner.n, dtype=torch.bool, device=device) if resets_t is None else resets_t
    record: dict[str, list[Tensor]] = {k: [] for k in ("inputs", "resets", "actions", "log_probs", "values")}
    rewards, dones, ended = [], [], []
    for _ in range(n_steps):
        inputs = runner.inputs().to(device)
        actions, log_probs, values, state = act(agent, inputs, resets_t, state, deterministic=False)
        for key, value in zip(record, (inputs, resets_t, actions, log_probs, values), strict=True):
            record[key].append(value)
        r, d, e = runner.step(actions)
        rewards.append(torch.as_tensor(r, dtype=torch.float32))
        dones.append(torch.as_tensor(d))
        ended += e
        resets_t = dones[-1].to(device)
    _, last_values, _ = agent.step(runner.inputs().to(device), resets_t, state)
    runner.memory = (state, resets_t) if carry else None
    stacked = {k: torch.stack(v, dim=1) for k, v in record.items()}
    return Rollout(
        **stacked,
        rewards=torch.stack(rewards, dim=1).to(device),
        dones=torch.stack(dones, dim=1).to(device),
        last_values=last_values,
        episode_returns=[e.episode_return for e in ended],
        episode_lengths=[e.length for e in ended],
        trial_returns=[e.trial_returns for e in ended if e.trial_returns is not None],
        initial_state=initial,
    )


@dataclass
class Episodes:
    """The first episode of each of N environments."""

    returns: list[float]
    lengths: list[int]
    value_loss: float  # 0.5 mean squared error of the critic against the discounted return-to-go
    frames: list[np.ndarray] = field(default_factory=list)  # of environment 0, when recorded
    finished: bool = True  # every episode ended within max_steps
    trial_returns: list[np.ndarray] = field(default_factory=list)  # (n_trials,) per episode, where reported


@torch.no_grad()
def run_episodes(
    agent: ActorCritic,
    runner: EnvRunner,
    gamma: float,
    deterministic: bool = True,
    max_steps: int = 10_000,
    record: bool = False,
    max_frames: int = 500,
) -> Episodes:
    """Play until every environment ended its first episode (or `max_steps`); frames of env 0 if `record`."""
    device = next(agent.parameters()).device
    state = agent.initial_state(runner.n)
    resets_t = torch.ones(runner.n, dtype=torch.bool, device=device)
    active = np.ones(runner.n, dtype=bool)
    returns, lengths = np.zeros(runner.n), np.zeros(runner.n, dtype=np.int64)
    values, rewards, trials = [], [], {}
    frames = [runner.envs.envs[0].render()] if record else []
    for _ in range(max_steps):
        actions, _, v, state = act(agent, runner.inputs().to(device), resets_t, state, deterministic)
        r, d, ended = runner.step(actions)
        trials |= {e.env: e.trial_returns for e in ended if active[e.env] and e.trial_returns is not None}
        values.append(np.where(active, v.cpu().numpy(), np.nan))
        rewards.append(np.where(active, r, np.nan))
        returns += np.where(active, r, 0.0)
        lengths += active
        if record and active[0] and not d[0] and len(frames) < max_frames:
            frames.append(runner.envs.envs[0].render())
        active &= ~d
        resets_t = torch.as_tensor(d, device=device)
        if not active.any():
            break
    return Episodes(
        returns.tolist(),
        lengths.tolist(),
        episode_value_loss(np.stack(values), np.stack(rewards), gamma),
        frames,
        finished=not active.any(),
        trial_returns=[trials[i] for i in sorted(trials)],
    )


def episode_value_loss(values: np.ndarray, rewards: np.ndarray, gamma: float) -> float:
    """values, rewards (T, N) with NaN after each column's episode -> 0.5 mean (V_t - G_t)^2 over the episodes' steps,
    G_t the discounted return-to-go (an episode cut by max_steps counts its rewards so far)."""
    returns, g = np.full_like(rewards, np.nan), np.zeros(rewards.shape[1])
    for t in reversed(range(len(rewards))):
        g = np.where(np.isnan(rewards[t]), 0.0, rewards[t] + gamma * g)
        returns[t] = np.where(np.isnan(rewards[t]), np.nan, g)
    return float(0.5 * np.nanmean((values - returns) ** 2))
