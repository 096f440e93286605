"""PPO's pieces (Schulman et al., 2017), over batch-first rollouts `(B, L)` (B environments, L steps).

    GAE:    δ_t = r_t + γ V_{t+1} (1 - done_t) - V_t,   A_t = δ_t + γ λ (1 - done_t) A_{t+1},   R_t = A_t + V_t
            (V_L: the value of the observation after the rollout; `done_t`: the episode ended at step t, so nothing
            after it is bootstrapped; a time-limit truncation counts as an end too, as in popjaxrl / PureJaxRL)
    policy: -mean(min(ρ A, clip(ρ, 1 - ε, 1 + ε) A)),   ρ = exp(log π(a) - log π_old(a)),   A normalised per minibatch
    value:  0.5 mean(max((V - R)^2, (V_old + clip(V - V_old, -ε_v, ε_v) - R)^2))   (unclipped with ε_v None)
    loss:   policy + vf_coef * value - ent_coef * entropy

Minibatches are sets of whole environment rows, so each is still a full sequence read in one scan.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

Tensor = torch.Tensor


def gae(
    rewards: Tensor, values: Tensor, dones: Tensor, last_values: Tensor, gamma: float, lam: float
) -> tuple[Tensor, Tensor]:
    """rewards, values (B, L) float, dones (B, L) bool, last_values (B,) -> (advantages, returns), both (B, L)."""
    not_done = (~dones).to(values.dtype)
    advantages = torch.zeros_like(values)
    next_value, next_advantage = last_values, torch.zeros_like(last_values)
    for t in reversed(range(values.shape[1])):
        delta = rewards[:, t] + gamma * next_value * not_done[:, t] - values[:, t]
        next_advantage = delta + gamma * lam * not_done[:, t] * next_advantage
        advantages[:, t] = next_advantage
        next_value = values[:, t]
    return advantages, advantages + values


def normalise(advantages: Tensor) -> Tensor:
    """Zero mean, unit standard deviation (left centred only when there is a single element)."""
    if advantages.numel() < 2:
        return advantages - advantages.mean()
    return (advantages - advantages.mean()) / (advantages.std() + 1e-8)


@dataclass
class PolicyLoss:
    loss: Tensor
    approx_kl: Tensor  # mean((ρ - 1) - log ρ), the k3 estimator of KL(old || new)
    clip_fraction: Tensor  # share of steps where |ρ - 1| > ε


def policy_loss(log_probs: Tensor, old_log_probs: Tensor, advantages: Tensor, clip: float) -> PolicyLoss:
    """The clipped surrogate over any shape (advantages already normalised)."""
    log_ratio = log_probs - old_log_probs
    ratio = log_ratio.exp()
    surrogate = torch.min(ratio * advantages, ratio.clamp(1 - clip, 1 + clip) * advantages)
    with torch.no_grad():
        approx_kl = ((ratio - 1) - log_ratio).mean()
        clip_fraction = ((ratio - 1).abs() > clip).float().mean()
    return PolicyLoss(-surrogate.mean(), approx_kl, clip_fraction)


def value_loss(values: Tensor, old_values: Tensor, returns: Tensor, clip: float | None) -> Tensor:
    """0.5 * the (clipped) squared error of the critic against the GAE returns."""
    error = (values - returns) ** 2
    if clip is not None:
        clipped = old_values + (values - old_values).clamp(-clip, clip)
        error = torch.max(error, (clipped - returns) ** 2)
    return 0.5 * error.mean()


def minibatch_rows(n_rows: int, n_minibatches: int, generator: torch.Generator | None = None) -> list[Tensor]:
    """A random split of `n_rows` environment rows into `n_minibatches` near-equal index sets."""
    if not 1 <= n_minibatches <= n_rows:
        raise ValueError(f"n_minibatches must be in [1, n_envs={n_rows}], got {n_minibatches}")
    return list(torch.randperm(n_rows, generator=generator).tensor_split(n_minibatches))
