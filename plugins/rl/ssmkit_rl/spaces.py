"""What the agent reads and does: observation spaces as flat feature vectors, action spaces as distributions.

- Observations (`OBSERVATION_SPACES`): Box (flattened floats), Discrete (one-hot), MultiDiscrete (one one-hot per
  component, concatenated), MultiBinary (0/1 floats). `ObservationReader(space)(obs)`: a batch of observations as
  the vector env returns them -> `(N, d_features)` float32.
- Actions (`ACTION_SPACES`): Discrete (categorical over `n` logits) and Box (a diagonal Gaussian over its flattened
  shape; what is sent to the environment is clipped to the bounds). `ActionSpec(space)` builds the distribution,
  turns samples into environment actions and encodes the previous action for the agent's input.

Any other space (Tuple, Dict, Text, Graph, ...) is a `DataError` naming it and listing the supported ones.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from gymnasium import spaces
from torch.distributions import Categorical, Distribution, Independent, Normal

from ssmkit.data import DataError

Tensor = torch.Tensor
OBSERVATION_SPACES = ("Box", "Discrete", "MultiDiscrete", "MultiBinary")
ACTION_SPACES = ("Discrete", "Box")


class ObservationReader:
    """A batch of observations of `space` -> `(N, d_features)` float32 features."""

    def __init__(self, space: spaces.Space, source: str = "observation space") -> None:
        if isinstance(space, spaces.Box | spaces.MultiBinary):
            self.d_features = int(math.prod(space.shape))
        elif isinstance(space, spaces.Discrete):
            self.d_features = int(space.n)
        elif isinstance(space, spaces.MultiDiscrete):
            self.d_features = int(space.nvec.sum())
        else:
            raise DataError(
                f"the agent cannot read a {type(space).__name__} observation space ({space}); supported observation "
                f"spaces: {', '.join(OBSERVATION_SPACES)} (flatten others with a gymnasium wrapper)",
                source=source,
            )
        self.space = space

    def __call__(self, obs: np.ndarray) -> Tensor:
        """obs: (N, *space.shape) -> (N, d_features)."""
        space, obs = self.space, np.asarray(obs)
        if isinstance(space, spaces.Discrete):
            return one_hot(obs - space.start, int(space.n))
        if isinstance(space, spaces.MultiDiscrete):
            parts = (obs - space.start).reshape(len(obs), -1)
            sizes = space.nvec.reshape(-1).tolist()
            return torch.cat([one_hot(parts[:, i], n) for i, n in enumerate(sizes)], dim=1)
        return torch.as_tensor(obs.reshape(len(obs), -1), dtype=torch.float32)


def one_hot(index: np.ndarray, n: int) -> Tensor:
    """index: (N,) ints in [0, n) -> (N, n) float32."""
    return torch.nn.functional.one_hot(torch.as_tensor(np.asarray(index), dtype=torch.long), n).float()


class ActionSpec:
    """A Discrete or Box action space: its distribution's parameter count, the distribution, the environment's
    action of a sample, and the previous action as the agent reads it."""

    def __init__(self, space: spaces.Space, source: str = "action space") -> None:
        if isinstance(space, spaces.Discrete):
            self.discrete, self.n_params = True, int(space.n)
        elif isinstance(space, spaces.Box):
            self.discrete, self.n_params = False, int(math.prod(space.shape))
        else:
            raise DataError(
                f"the agent cannot act in a {type(space).__name__} action space ({space}); supported action spaces: "
                f"{', '.join(ACTION_SPACES)}",
                source=source,
            )
        self.space = space
        self.d_encoded = self.n_params  # one-hot of a Discrete action, the flattened Box action

    def distribution(self, params: Tensor, log_std: Tensor | None = None) -> Distribution:
        """params: (..., n_params) logits or means -> a distribution with batch shape `...`."""
        if self.discrete:
            return Categorical(logits=params)
        return Independent(Normal(params, log_std.exp().expand_as(params)), 1)

    def to_env(self, actions: Tensor) -> np.ndarray:
        """Sampled actions (N,) long or (N, n_params) float -> what the vector env takes (N, *space.shape)."""
        a = actions.detach().cpu().numpy()
        if self.discrete:
            return a + self.space.start
        a = a.reshape(len(a), *self.space.shape)
        return np.clip(a, self.space.low, self.space.high).astype(self.space.dtype)

    def encode(self, actions: Tensor) -> Tensor:
        """Actions (N,) long or (N, n_params) float -> (N, d_encoded) float32: one-hot, or the clipped action."""
        if self.discrete:
            return torch.nn.functional.one_hot(actions.long().cpu(), self.n_params).float()
        low = torch.as_tensor(self.space.low.reshape(-1), dtype=torch.float32)
        high = torch.as_tensor(self.space.high.reshape(-1), dtype=torch.float32)
        return torch.clamp(actions.detach().float().cpu(), low, high)
