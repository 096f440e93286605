"""Meta-DT (Wang et al., 2024, "Meta-DT: Offline Meta-RL as Conditional Sequence Modeling with World Model
Disentanglement") on a causal sequence backbone: the context-aware world model, the return-conditioned decision
model, the self-guided prompt, and online play in a domain of `ssmkit_rl.offline` (Point-Robot, CartPole, Pendulum).

- `WorldModel`: a GRU `ContextEncoder` reads the h most recent transitions (s, a, r, s') before step t
  (`context_windows`; zeros before the episode start) into a task embedding z_t; a reward decoder and a next-state
  decoder predict r_t and s'_t from (s_t, a_t, z_t). The encoder is trained only through these decoders. Options
  (the anchor's form is the default): the encoder reads only (s', r) of each transition (`context_inputs="reward"`:
  no action, so not the behaviour's heading); a deep set `SetEncoder` in place of the GRU; each z_t decodes every
  step of its episode (`targets="episode"`, `WorldModel.loss`).
- `DecisionModel`: tokens (return-to-go, state + z, action) per step, each with a timestep embedding, interleaved
  as R_0, s_0, a_0, R_1, ... and read by a causal `SequenceBackbone` (Mamba / S5 / attention, `BackboneConfig`);
  the action a_t is predicted (tanh) from the hidden state at the s_t token. An optional prompt of k steps
  (R, s, a, with embeddings of its own) goes before the sequence. `z_dim=0` is the plain DT (no context).
  Options: read only the K latest steps (`horizon`), zeros in place of the past actions (`action_tokens=False`),
  z standardised per dimension (`standardise_z`).
- The self-guided prompt (`select_prompt`): from an episode of the task, the k-step segment whose world-model
  prediction error is largest (starting at h or later, so that its z saw a full context).
- Test-time task inference by fitting the world model (`ZFit`): the z among the encoder's and the training tasks'
  codes (`task_codes`, per-task means of `episode_codes`) whose decoders best explain the transitions seen so far,
  optionally refined by Adam steps.
- `play_meta_dt`: N episodes at once, the whole prefix (or its last K steps, with a horizon) re-read at every step,
  optionally after given opening actions (an exploring start), with z from the encoder or the fit, and optionally
  an earlier episode of the task as history.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ssmkit.models import BackboneConfig, SequenceBackbone

Tensor = torch.Tensor
CONTEXT_INPUTS = ("transition", "reward")
WORLD_TARGETS = ("step", "episode")


def context_windows(transitions: Tensor, h: int) -> Tensor:
    """transitions (B, T, d) -> (B, T, h, d): row t holds transitions t-h .. t-1, zeros where t-i < 0."""
    padded = nn.functional.pad(transitions, (0, 0, h, 0))  # (B, T + h, d)
    return padded.unfold(1, h, 1)[:, : transitions.shape[1]].transpose(2, 3)


def recent_windows(x: Tensor, k: int) -> Tensor:
    """x (B, T, ...) -> (B, T, k, ...): row t holds steps t-k+1 .. t, zeros where the step is before 0."""
    flat = x.reshape(*x.shape[:2], -1)
    windows = context_windows(nn.functional.pad(flat, (0, 0, 0, 1)), k)[:, 1:]  # (B, T, k, d)
    return windows.reshape(*x.shape[:2], k, *x.shape[2:])


def returns_to_go(rewards: Tensor) -> Tensor:
    """rewards (B, T) -> (B, T): the sum of rewards from t to the end."""
    return rewards.flip(1).cumsum(1).flip(1)


@dataclass
class Steps:
    """Transitions of B episodes of T steps: observations, next_observations (B, T, d_obs), actions (B, T, d_act),
    rewards (B, T)."""

    observations: Tensor
    actions: Tensor
    rewards: Tensor
    next_observations: Tensor

    def transitions(self) -> Tensor:
        """(B, T, 2 d_obs + d_act + 1): (s, a, r, s') per step."""
        parts = (self.observations, self.actions, self.rewards[..., None], self.next_observations)
        return torch.cat(parts, dim=-1)

    def arrivals(self) -> Tensor:
        """(B, T, d_obs + 1): (s', r) per step, where the step ended and its reward (no action, no heading)."""
        return torch.cat([self.next_observations, self.rewards[..., None]], dim=-1)

    def context(self, inputs: str) -> Tensor:
        """The context encoder's input per step: "transition" (s, a, r, s') or "reward" (s', r)."""
        return self.transitions() if inputs == "transition" else self.arrivals()


def gather_steps(x: Tensor, index: Tensor) -> Tensor:
    """x (B, T, ...) and index (B, k) -> (B, k, ...)."""
    return x[torch.arange(len(x), device=x.device)[:, None], index]


class ContextEncoder(nn.Module):
    def __init__(self, d_transition: int, z_dim: int, hidden: int) -> None:
        """A GRU over h transitions -> a task embedding (the anchor's).

        Args:
            d_transition: the width of one transition as read ((s, a, r, s') or (s', r)).
            z_dim: the task embedding's width.
            hidden: the GRU's width.
        """
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(d_transition, hidden), nn.ReLU())
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.out = nn.Linear(hidden, z_dim)

    def forward(self, windows: Tensor, valid: Tensor) -> Tensor:
        """windows (..., h, d_transition), valid (..., h, 1) (unused: the zeros before the start are read as they
        are) -> z (..., z_dim)."""
        lead = windows.shape[:-2]
        _, last = self.gru(self.embed(windows.reshape(-1, *windows.shape[-2:])))
        return self.out(last[-1]).reshape(*lead, -1)


class SetEncoder(nn.Module):
    def __init__(self, d_transition: int, z_dim: int, hidden: int) -> None:
        """A deep set over h transitions -> a task embedding: an MLP per transition, the mean over the window's
        transitions (those before the episode start left out), an MLP. Order-blind: it cannot read a path's
        direction from the order of its steps.

        Args:
            d_transition: the width of one transition as read ((s, a, r, s') or (s', r)).
            z_dim: the task embedding's width.
            hidden: the MLPs' width.
        """
        super().__init__()
        self.each = mlp(d_transition, hidden, hidden)
        self.out = nn.Sequential(nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, z_dim))

    def forward(self, windows: Tensor, valid: Tensor) -> Tensor:
        """windows (..., h, d_transition), valid (..., h, 1) (1: a transition, 0: before the start)
        -> z (..., z_dim)."""
        pooled = (self.each(windows) * valid).sum(-2) / valid.sum(-2).clamp(min=1.0)
        return self.out(pooled)


def mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, d_out)
    )


class WorldModel(nn.Module):
    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        z_dim: int,
        hidden: int,
        context_len: int,
        context_inputs: str = "transition",
        targets: str = "step",
        encoder: str = "gru",
    ) -> None:
        """The context encoder and its reward and next-state decoders.

        Args:
            obs_dim: the state's width.
            action_dim: the action's width.
            z_dim: the task embedding's width.
            hidden: the encoder's and decoders' width.
            context_len: h, the transitions the encoder reads.
            context_inputs: what the encoder reads of each transition: "transition" (s, a, r, s'; the anchor's) or
                "reward" (s', r: where the step ended and its reward, so no action and no heading).
            targets: what each z_t is trained to decode (`loss`): "step" (step t; the anchor's) or "episode"
                (every step of its episode).
            encoder: the context encoder: "gru" (the anchor's) or "set" (a deep set, order-blind).
        """
        super().__init__()
        if context_inputs not in CONTEXT_INPUTS or targets not in WORLD_TARGETS or encoder not in ENCODERS:
            raise ValueError(
                f"context_inputs must be one of {CONTEXT_INPUTS}, targets one of {WORLD_TARGETS} and encoder one of "
                f"{tuple(ENCODERS)}, got {context_inputs!r}, {targets!r} and {encoder!r}"
            )
        self.context_len, self.context_inputs, self.targets = context_len, context_inputs, targets
        self.z_dim = z_dim
        d_context = 2 * obs_dim + action_dim + 1 if context_inputs == "transition" else obs_dim + 1
        self.encoder = ENCODERS[encoder](d_context, z_dim, hidden)
        self.reward = mlp(obs_dim + action_dim + z_dim, hidden, 1)
        self.next_state = mlp(obs_dim + action_dim + z_dim, hidden, obs_dim)

    def embed(self, steps: Steps) -> Tensor:
        """z_t from transitions t-h .. t-1 (as `context_inputs`): (B, T, z_dim)."""
        features = steps.context(self.context_inputs)
        valid = context_windows(torch.ones_like(features[..., :1]), self.context_len)
        return self.encoder(context_windows(features, self.context_len), valid)

    def errors(self, steps: Steps, z: Tensor | None = None) -> Tensor:
        """Squared prediction errors per step (B, T): (r - r^)^2 + |s' - s'^|^2, with z_t = embed(steps)."""
        z = self.embed(steps) if z is None else z
        inputs = torch.cat([steps.observations, steps.actions, z], dim=-1)
        reward_error = (self.reward(inputs).squeeze(-1) - steps.rewards) ** 2
        state_error = ((self.next_state(inputs) - steps.next_observations) ** 2).sum(-1)
        return reward_error + state_error

    def loss(self, steps: Steps, z: Tensor) -> Tensor:
        """The mean squared error that trains the world model, z (B, T, z_dim) = embed(steps): "step" targets,
        each z_t decodes its own step t (the anchor's); "episode" targets, each z_t decodes every step of its
        episode (B T^2 predictions), so that z_t must hold the task itself rather than what step t needs of it."""
        if self.targets == "step":
            return self.errors(steps, z).mean()
        n = steps.rewards.shape[1]
        every = Steps(*(x.unsqueeze(1).expand(-1, n, *x.shape[1:]) for x in vars(steps).values()))  # (B, T_z, T, ...)
        return self.errors(every, z.unsqueeze(2).expand(-1, -1, n, -1)).mean()


ENCODERS = {"gru": ContextEncoder, "set": SetEncoder}
Z_INFERENCE = ("encoder", "fit")


DECISION_Z = ("step", "episode", "task")


def episode_codes(z: Tensor, h: int) -> Tensor:
    """z (B, T, z_dim) of whole episodes -> (B, z_dim): the mean of z_t over the steps whose window was full
    (t >= h; all steps when T <= h), the episode's task code."""
    return z[:, h:].mean(1) if z.shape[1] > h else z.mean(1)


def task_codes(world_model: WorldModel, steps: Steps, tasks: Tensor) -> Tensor:
    """The episode codes of offline episodes (E, T) averaged per task: tasks (E,) -> (G, z_dim), one row per task
    present (in ascending task order)."""
    with torch.no_grad():
        z = episode_codes(world_model.embed(steps), world_model.context_len)  # (E, z_dim)
    return torch.stack([z[tasks == t].mean(0) for t in torch.unique(tasks)])


class ZFit:
    """Test-time inference of z by fitting the world model: z = argmin_z sum_j err_j(z) + prior |(z - m) / s|^2,
    err_j the reward + next-state decoders' squared error (`WorldModel.errors`) on the transitions j seen so far,
    m and s the mean and std of the training tasks' codes (the prior keeps z near the training distribution).

    The search: the lowest-error candidate among the encoder's z and the training tasks' codes (G, z_dim) (a
    multi-start: after one step the rewards leave two mirror goals, and descent from one start can settle in the
    wrong one); then `iters` steps of Adam (learning rate `lr`, in standardised units) from it. iters = 0 returns
    the candidate: a z the decision model has trained on, where descent can leave the codes' manifold."""

    def __init__(
        self, world_model: WorldModel, codes: Tensor, iters: int = 0, lr: float = 0.1, prior: float = 1e-3
    ) -> None:
        self.world_model, self.codes, self.iters, self.lr, self.prior = world_model, codes, iters, lr, prior
        self.mean, self.std = codes.mean(0), codes.std(0).clamp(min=1e-6)

    def __call__(self, steps: Steps, start: Tensor, code_errors: Tensor | None = None) -> Tensor:
        """steps (N, t) the transitions seen (t >= 1), start (N, z_dim) the encoder's z, code_errors (N, G) the
        codes' summed errors on these steps (`code_errors`; kept as a running sum by online play, so that each
        step costs the decoders one new transition per code) or None to compute them -> z (N, z_dim)."""
        code_errors = self.code_errors(steps) if code_errors is None else code_errors
        with torch.no_grad():
            start_errors = self.world_model.errors(steps, start[:, None].expand(-1, steps.rewards.shape[1], -1))
        errors = torch.cat([start_errors.sum(1, keepdim=True), code_errors], dim=1)  # (N, 1 + G)
        candidates = torch.cat([start[:, None], self.codes.expand(len(start), -1, -1)], dim=1)  # (N, 1 + G, z_dim)
        best = gather_steps(candidates, errors.argmin(1)[:, None])[:, 0]  # (N, z_dim)
        if self.iters == 0:
            return best
        # out of the evaluation's inference mode: its tensors cannot be saved for backward, so they are cloned
        with torch.inference_mode(False), torch.enable_grad():
            steps = Steps(*(x.detach().clone() for x in vars(steps).values()))
            mean, std = self.mean.detach().clone(), self.std.detach().clone()
            u = ((best.detach().clone() - mean) / std).requires_grad_(True)
            optimiser = torch.optim.Adam([u], lr=self.lr)
            for _ in range(self.iters):
                optimiser.zero_grad()
                self.objective(steps, mean + std * u, u).sum().backward()
                optimiser.step()
            return (mean + std * u).detach()

    def code_errors(self, steps: Steps) -> Tensor:
        """steps (N, t) -> (N, G): each code's decoder error summed over the steps."""
        n, t = steps.rewards.shape
        g = len(self.codes)
        wide = Steps(*(x.unsqueeze(1).expand(-1, g, *x.shape[1:]) for x in vars(steps).values()))  # (N, G, t, ...)
        with torch.no_grad():
            return self.world_model.errors(wide, self.codes[None, :, None].expand(n, -1, t, -1)).sum(-1)

    def objective(self, steps: Steps, z: Tensor, u: Tensor) -> Tensor:
        """(N,): the summed decoder error of z (N, z_dim) over the steps (N, t), plus prior |u|^2 (u: z
        standardised)."""
        errors = self.world_model.errors(steps, z[:, None].expand(-1, steps.rewards.shape[1], -1))
        return errors.sum(1) + self.prior * (u**2).sum(-1)


def select_prompt(errors: Tensor, k: int, first: int = 0) -> Tensor:
    """errors (B, T) -> starts (B,): the start s in [first, T - k] of the k-step window with the largest summed
    error (the earliest on ties)."""
    first = min(first, errors.shape[1] - k)
    sums = errors.unfold(1, k, 1).sum(-1)[:, first:]  # (B, T - k + 1 - first)
    return sums.argmax(dim=1) + first


@dataclass
class Prompt:
    """k steps of B prompts: returns_to_go (B, k), observations (B, k, d_obs), actions (B, k, d_act),
    timesteps (B, k) long."""

    returns_to_go: Tensor
    observations: Tensor
    actions: Tensor
    timesteps: Tensor

    @classmethod
    def of(cls, steps: Steps, starts: Tensor, k: int) -> Prompt:
        """The segments starts .. starts + k - 1 of `steps` (B, T), its returns-to-go counted to the episode end."""
        index = starts[:, None] + torch.arange(k, device=starts.device)
        rtg = gather_steps(returns_to_go(steps.rewards), index)
        return cls(rtg, gather_steps(steps.observations, index), gather_steps(steps.actions, index), index)


class TokenEmbedding(nn.Module):
    """(return-to-go, state [+ z], action) and timesteps -> interleaved tokens (B, 3 T, d_model)."""

    def __init__(self, d_state: int, action_dim: int, max_timestep: int, d_model: int) -> None:
        super().__init__()
        self.rtg = nn.Linear(1, d_model)
        self.state = nn.Linear(d_state, d_model)
        self.action = nn.Linear(action_dim, d_model)
        self.time = nn.Embedding(max_timestep, d_model)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, rtg: Tensor, states: Tensor, actions: Tensor, timesteps: Tensor) -> Tensor:
        """rtg (B, T), states (B, T, d_state), actions (B, T, d_act), timesteps (B, T) -> (B, 3 T, d_model)."""
        time = self.time(timesteps)
        tokens = torch.stack([self.rtg(rtg[..., None]), self.state(states), self.action(actions)], dim=2)
        tokens = tokens + time[:, :, None]
        return self.norm(tokens.flatten(1, 2))


class DecisionModel(nn.Module):
    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        z_dim: int,
        max_timestep: int,
        backbone: BackboneConfig,
        return_scale: float,
        max_action: float = 1.0,
        horizon: int | None = None,
        action_tokens: bool = True,
        standardise_z: bool = False,
    ) -> None:
        """The return-conditioned policy over (R, s + z, a) tokens, with an optional prompt.

        Args:
            obs_dim: the state's width.
            action_dim: the action's width.
            z_dim: the task embedding's width (0: a plain DT without context).
            max_timestep: the episode length (timestep embeddings).
            backbone: the causal sequence backbone's settings.
            return_scale: returns-to-go are divided by it.
            max_action: the action bound (actions are read and predicted divided by it, in [-1, 1]).
            horizon: K, the most recent steps a_t is predicted from (DT's context length; zeros before the episode
                start); None: the whole episode so far.
            action_tokens: false: the action tokens carry zeros instead of the past actions (the episode's own
                heading is then read only through the states; the prompt keeps its actions).
            standardise_z: standardise each z dimension (batch statistics in training, running ones when acting;
                no learned scale) before it joins the state: the task shows in z as small variations around a
                large common part, which the decision model otherwise barely reads.
        """
        super().__init__()
        self.z_dim, self.return_scale, self.max_action, self.horizon = z_dim, return_scale, max_action, horizon
        self.action_tokens = action_tokens
        self.z_norm = nn.BatchNorm1d(z_dim, affine=False) if standardise_z and z_dim else None
        self.backbone = SequenceBackbone(backbone)
        d = self.backbone.d_model
        self.tokens = TokenEmbedding(obs_dim + z_dim, action_dim, max_timestep, d)
        self.prompt_tokens = TokenEmbedding(obs_dim, action_dim, max_timestep, d)
        self.head = nn.Linear(d, action_dim)

    def forward(
        self,
        rtg: Tensor,
        states: Tensor,
        z: Tensor | None,
        actions: Tensor,
        prompt: Prompt | None = None,
        timesteps: Tensor | None = None,
    ) -> Tensor:
        """rtg (B, T), states (B, T, d_obs), z (B, T, z_dim) or None, actions (B, T, d_act) scaled to [-1, 1],
        timesteps (B, T) long, the steps' indices in their episode (None: 0 .. T-1, an episode from its start)
        -> predicted actions (B, T, d_act) in [-1, 1]; a_t is read at the s_t token, so it sees a_{<t} only (none
        without action tokens), and with a horizon K < T only steps t-K+1 .. t (each step's window is read as a
        sequence of its own)."""
        n, n_steps = rtg.shape
        if timesteps is None:
            timesteps = torch.arange(n_steps, device=rtg.device).expand(n, n_steps)
        actions = actions if self.action_tokens else torch.zeros_like(actions)
        if z is not None and self.z_dim:
            z = z if self.z_norm is None else self.z_norm(z.reshape(-1, self.z_dim)).reshape(z.shape)
            states = torch.cat([states, z], dim=-1)
        k = self.horizon
        if k is None or k >= n_steps:
            return self.read(rtg, states, actions, timesteps, prompt)
        parts = [recent_windows(x, k).flatten(0, 1) for x in (rtg, states, actions, timesteps)]  # (B T, k, ...)
        if prompt is not None:
            prompt = Prompt(*(x.repeat_interleave(n_steps, dim=0) for x in vars(prompt).values()))
        return self.read(*parts, prompt)[:, -1].reshape(n, n_steps, -1)

    def read(self, rtg: Tensor, states: Tensor, actions: Tensor, timesteps: Tensor, prompt: Prompt | None) -> Tensor:
        """rtg, timesteps (B, T), states (B, T, d_state), actions (B, T, d_act) -> actions (B, T, d_act), each read
        at its state token."""
        n_steps = rtg.shape[1]
        tokens = self.tokens(rtg / self.return_scale, states, actions, timesteps)
        if prompt is not None:
            p = self.prompt_tokens(
                prompt.returns_to_go / self.return_scale,
                prompt.observations,
                prompt.actions / self.max_action,
                prompt.timesteps,
            )
            tokens = torch.cat([p, tokens], dim=1)
        hidden = self.backbone(tokens)[:, -3 * n_steps :]
        return torch.tanh(self.head(hidden[:, 1::3]))


# ---- online play ---------------------------------------------------------------------------------------------


@torch.no_grad()
def play_meta_dt(
    policy: DecisionModel,
    world_model: WorldModel | None,
    env: Any,
    target_return: float,
    rtg_cap: Tensor,
    prompt: Prompt | None = None,
    opening: Tensor | None = None,
    z_fit: ZFit | None = None,
    history: Steps | None = None,
    hold_z: bool = False,
) -> Steps:
    """One episode of T steps in each of env's N tasks (`reset() -> (N, d_obs)`, `step(actions (N, d_act)) ->
    (next observations, rewards (N,))`), acting with the policy on the whole prefix at every step, or on its last K
    steps with a horizon K (z_t from the agent's own last h transitions; none without a world model) -> Steps (N,
    T). `opening` (N, n, d_act): the actions of the first n steps, played instead of the policy's (an exploring
    start). With `z_fit`, z_t is fitted to the transitions seen before step t (`ZFit`; z_0 is the encoder's without
    history; the codes' errors kept as a running sum, one new transition per step).
    `history` (N, H): transitions of an earlier episode of each task, read before this episode's own (the
    encoder's window reaches back into it; the fit includes them, from step 0). `hold_z`: the policy reads the
    current z_t at every step of the prefix (a decision model trained on one code per episode); otherwise each
    step keeps the z it acted with.

    The return-to-go starts at `target_return` and drops by each reward, capped at rtg_cap (T,), the largest
    return-to-go of the offline data at each step: with Point-Robot's rewards of -distance an agent that still has to
    find its goal would otherwise ask for more than any episode got (even positive returns-to-go), far outside the
    data."""
    episode_length = len(rtg_cap)
    device = next(policy.parameters()).device
    first = torch.as_tensor(env.reset(), device=device)
    n, d_obs = first.shape
    obs = torch.zeros(n, episode_length, d_obs, device=device)
    acts = torch.zeros(n, episode_length, policy.head.out_features, device=device)
    rews = torch.zeros(n, episode_length, device=device)
    nexts = torch.zeros_like(obs)
    rtg = torch.zeros(n, episode_length, device=device)
    zs = torch.zeros(n, episode_length, world_model.z_dim if world_model else 0, device=device)
    obs[:, 0] = first
    rtg[:, 0] = target_return
    horizon, code_errors = policy.horizon or episode_length, None
    for t in range(episode_length):
        s = slice(0, t + 1)
        window = slice(max(0, t + 1 - horizon), t + 1)  # what the policy reads
        if opening is not None and t < opening.shape[1]:
            action = opening[:, t].to(device)
        else:
            steps = Steps(obs[:, s], acts[:, s], rews[:, s], nexts[:, s])
            if world_model is not None:
                zs[:, t] = world_model.embed(joined(history, steps))[:, -1]
                seen = joined(history, Steps(obs[:, :t], acts[:, :t], rews[:, :t], nexts[:, :t]))
                if z_fit is not None and seen.rewards.shape[1] > 0:
                    if code_errors is None:  # the history's (or the first step's) errors, then one step at a time
                        code_errors = z_fit.code_errors(seen)
                    else:
                        code_errors = code_errors + z_fit.code_errors(Steps(*(x[:, -1:] for x in vars(seen).values())))
                    zs[:, t] = z_fit(seen, zs[:, t].clone(), code_errors)
            length = window.stop - window.start
            z = None if world_model is None else zs[:, t : t + 1].expand(-1, length, -1) if hold_z else zs[:, window]
            scale, time = policy.max_action, torch.arange(window.start, t + 1, device=device).expand(n, -1)
            action = policy(rtg[:, window], obs[:, window], z, acts[:, window] / scale, prompt, time)[:, -1] * scale
        following, reward = env.step(action.cpu().numpy())
        acts[:, t], rews[:, t] = action, torch.as_tensor(reward, device=device)
        nexts[:, t] = torch.as_tensor(following, device=device)
        if t + 1 < episode_length:
            obs[:, t + 1], rtg[:, t + 1] = nexts[:, t], torch.clamp(rtg[:, t] - rews[:, t], max=float(rtg_cap[t + 1]))
    return Steps(obs, acts, rews, nexts)


def joined(history: Steps | None, steps: Steps) -> Steps:
    """history (N, H) then steps (N, t) -> (N, H + t); steps alone without history."""
    if history is None:
        return steps
    return Steps(*(torch.cat([a, b], dim=1) for a, b in zip(vars(history).values(), vars(steps).values(), strict=True)))


def few_shot_prompt(world_model: WorldModel, explored: Steps, k: int) -> Prompt:
    """The self-guided prompt: in each explored episode (N, T), the k-step segment of largest world-model error."""
    with torch.no_grad():
        starts = select_prompt(world_model.errors(explored), k, first=world_model.context_len)
    return Prompt.of(explored, starts, k)


def segment_returns(steps: Steps) -> np.ndarray:
    """(N,) episode returns."""
    return steps.rewards.sum(1).cpu().numpy()
