"""The actor-critic: agent input -> a memory -> separate actor and critic heads.

Agent input at step t: the observation's features, the previous action (one-hot / the action vector) and the
previous reward, both zero at an episode's first step (popjaxrl's `AliasPrevActionV2`). Memories, all with one
interface (`sequence` reads a whole rollout, `step` acts one step at a time, and both restart where `resets` is
set, i.e. at each episode's first step):

- `SSMMemory` (default): dense + leaky ReLU -> a `SequenceBackbone` stack of a registry mixer that `takes_resets`
  (S5, LRU); `sequence` is one parallel scan per layer over the whole rollout with the episode boundaries as
  `resets` (the core mixers' scan), `step` the mixers' recurrent step with the state rows of restarting episodes
  zeroed, which is what `resets` means (h_t = B u_t).
- `RNNMemory`: dense + leaky ReLU -> `torch.nn.GRU` / `LSTM`, read step by step in both modes, the hidden state
  zeroed at resets (as CleanRL's ppo_lstm does).
- `MLPMemory`: the memoryless baseline.

Heads: two-layer tanh MLPs with orthogonal initialisation (actor output gain 0.01, critic 1), as in CleanRL and
PureJaxRL; a Box action's log standard deviation is a free parameter per dimension (state-independent).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.distributions import Distribution

from ssmkit.layers.mixer import State
from ssmkit.models import BackboneConfig, SequenceBackbone
from ssmkit.registry import list_mixers, mixer_class
from ssmkit_rl.spaces import ActionSpec

Tensor = torch.Tensor
AGENTS = ("ssm", "gru", "lstm", "mlp")
# the SSM memory's default: two S5 layers (the config files set it explicitly)
S5_MEMORY = BackboneConfig(d_model=64, n_layers=2, mixer="s5", mixer_kwargs={"d_state": 32})


def resets_mixers() -> list[str]:
    """Registry mixers whose scan takes episode resets (`takes_resets`)."""
    return [name for name in list_mixers() if mixer_class(name).takes_resets and mixer_class(name).causal]


def keep_rows(state: Tensor, resets: Tensor) -> Tensor:
    """state (B, ...) with the rows where resets (B,) is true zeroed."""
    keep = (~resets).to(state.real.dtype if state.is_complex() else state.dtype)
    return state * keep.view(-1, *[1] * (state.dim() - 1))


class SSMMemory(nn.Module):
    """dense -> SequenceBackbone of a mixer with `takes_resets`; x (B, L, d_in) -> (B, L, d_model)."""

    def __init__(self, d_in: int, backbone: BackboneConfig | dict[str, Any] = S5_MEMORY) -> None:
        super().__init__()
        config = BackboneConfig.of(backbone)
        if config.bidirectional:
            raise ValueError("an acting agent reads the past only: set backbone.bidirectional false")
        self.encoder = nn.Sequential(nn.Linear(d_in, config.d_model), nn.LeakyReLU())
        self.backbone = SequenceBackbone(config)
        for block in self.backbone.layers:
            family = type(block.mixer)
            if not (family.takes_resets and family.causal):
                raise ValueError(
                    f"mixer {family.__name__} takes no episode resets (takes_resets is False), so its scan cannot "
                    f"restart at episode boundaries; mixers that can: {', '.join(resets_mixers())}"
                )
        self.d_out = config.d_model

    def sequence(self, x: Tensor, resets: Tensor, state: list[State] | None = None) -> Tensor:
        """x (B, L, d_in), resets (B, L) bool -> (B, L, d_model): one resettable scan per layer, from `state` (the
        memory a rollout started with) if given, else from zeros."""
        if state is None:
            return self.backbone(self.encoder(x), resets=resets)
        state = [dict(layer) for layer in state]  # prefill replaces the entries of the dicts it is given
        return self.backbone.prefill(self.encoder(x), state, resets=resets)[0]

    @staticmethod
    def state_rows(state: list[State], index: Tensor) -> list[State]:
        """The memory of the environments `index`."""
        return [{k: v[index] for k, v in layer.items()} for layer in state]

    def initial_state(self, batch_size: int) -> list[State]:
        p = next(self.parameters())
        return self.backbone.allocate_state(batch_size, p.device, p.dtype)

    def step(self, x_t: Tensor, resets_t: Tensor, state: list[State]) -> tuple[Tensor, list[State]]:
        """x_t (B, d_in), resets_t (B,) bool -> (B, d_model); the state of restarting rows is zeroed first."""
        state = [{k: keep_rows(v, resets_t) for k, v in layer.items()} for layer in state]
        return self.backbone.step(self.encoder(x_t), state)


class RNNMemory(nn.Module):
    """dense -> GRU or LSTM, read step by step with the hidden state zeroed at resets."""

    def __init__(self, d_in: int, hidden: int, cell: str = "gru") -> None:
        super().__init__()
        if cell not in ("gru", "lstm"):
            raise ValueError(f"cell must be 'gru' or 'lstm', got {cell!r}")
        self.cell = cell
        self.encoder = nn.Sequential(nn.Linear(d_in, hidden), nn.LeakyReLU())
        self.rnn = (nn.GRU if cell == "gru" else nn.LSTM)(hidden, hidden, batch_first=True)
        self.d_out = hidden

    def initial_state(self, batch_size: int) -> tuple[Tensor, ...]:
        p = next(self.parameters())
        h = torch.zeros(1, batch_size, self.d_out, device=p.device, dtype=p.dtype)
        return (h,) if self.cell == "gru" else (h, h.clone())

    def step(self, x_t: Tensor, resets_t: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        """x_t (B, d_in), resets_t (B,) bool -> (B, hidden)."""
        state = tuple(keep_rows(s.transpose(0, 1), resets_t).transpose(0, 1) for s in state)
        y, new = self.rnn(self.encoder(x_t)[:, None], state[0] if self.cell == "gru" else state)
        return y[:, 0], (new,) if self.cell == "gru" else new

    def sequence(self, x: Tensor, resets: Tensor, state: tuple[Tensor, ...] | None = None) -> Tensor:
        """x (B, L, d_in), resets (B, L) bool -> (B, L, hidden), one step at a time from `state` (zeros if None)."""
        state, ys = self.initial_state(x.shape[0]) if state is None else state, []
        for x_t, r_t in zip(x.unbind(1), resets.unbind(1), strict=True):
            y, state = self.step(x_t, r_t, state)
            ys.append(y)
        return torch.stack(ys, dim=1)

    @staticmethod
    def state_rows(state: tuple[Tensor, ...], index: Tensor) -> tuple[Tensor, ...]:
        return tuple(s[:, index] for s in state)  # (layers, B, hidden)


class MLPMemory(nn.Module):
    """No memory: two dense layers per step."""

    def __init__(self, d_in: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_in, hidden), nn.LeakyReLU(), nn.Linear(hidden, hidden), nn.LeakyReLU())
        self.d_out = hidden

    def initial_state(self, batch_size: int) -> None:
        return None

    def step(self, x_t: Tensor, resets_t: Tensor, state: None) -> tuple[Tensor, None]:
        return self.net(x_t), None

    def sequence(self, x: Tensor, resets: Tensor, state: None = None) -> Tensor:
        return self.net(x)

    @staticmethod
    def state_rows(state: None, index: Tensor) -> None:
        return None


def make_memory(agent: str, d_in: int, backbone: BackboneConfig | dict[str, Any], hidden: int) -> nn.Module:
    """The memory of `agent` ("ssm", "gru", "lstm", "mlp")."""
    if agent == "ssm":
        return SSMMemory(d_in, backbone)
    if agent in ("gru", "lstm"):
        return RNNMemory(d_in, hidden, agent)
    if agent == "mlp":
        return MLPMemory(d_in, hidden)
    raise ValueError(f"agent must be one of {AGENTS}, got {agent!r}")


def head(d_in: int, hidden: int, d_out: int, gain: float) -> nn.Sequential:
    """Two tanh layers, orthogonal initialisation, the output layer scaled by `gain`."""
    net = nn.Sequential(
        nn.Linear(d_in, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, d_out)
    )
    for layer, g in zip(net[::2], (2**0.5, 2**0.5, gain), strict=True):
        nn.init.orthogonal_(layer.weight, g)
        nn.init.zeros_(layer.bias)
    return net


class ActorCritic(nn.Module):
    """memory -> actor (distribution parameters) and critic (value) heads."""

    def __init__(self, memory: nn.Module, action: ActionSpec, head_hidden: int = 64) -> None:
        super().__init__()
        self.memory, self.action = memory, action
        self.actor = head(memory.d_out, head_hidden, action.n_params, 0.01)
        self.critic = head(memory.d_out, head_hidden, 1, 1.0)
        self.log_std = None if action.discrete else nn.Parameter(torch.zeros(action.n_params))

    def heads(self, features: Tensor) -> tuple[Distribution, Tensor]:
        """features (..., d) -> (the action distribution with batch shape `...`, values (...))."""
        return self.action.distribution(self.actor(features), self.log_std), self.critic(features)[..., 0]

    def sequence(self, inputs: Tensor, resets: Tensor, state: Any = None) -> tuple[Distribution, Tensor]:
        """inputs (B, L, d_in), resets (B, L) bool -> (distribution over (B, L), values (B, L)); from the memory
        `state` a rollout started with if given (else empty)."""
        return self.heads(self.memory.sequence(inputs, resets, state))

    def initial_state(self, batch_size: int) -> Any:
        return self.memory.initial_state(batch_size)

    def step(self, inputs_t: Tensor, resets_t: Tensor, state: Any) -> tuple[Distribution, Tensor, Any]:
        """inputs_t (B, d_in), resets_t (B,) bool -> (distribution over (B,), values (B,), state)."""
        features, state = self.memory.step(inputs_t, resets_t, state)
        dist, values = self.heads(features)
        return dist, values, state
