"""`EnvData`: the environment a PPO run acts in, and the index sets Lightning's loops iterate over.

RL has no dataset: the "data" is an environment id (any gymnasium id, or a popgym name such as
`RepeatPreviousEasy`, see `ssmkit_rl.envs`). Lightning still drives the run through loaders, so each split is a
set of indices: "train" holds `updates_per_epoch` update indices (one batch = one PPO update: a rollout and its
optimisation epochs), and "val", "test", "predict" hold one index each (one batch = `eval_episodes` episodes on
environments of their own). The environments are made here, seeded per split so that evaluation never reuses
training episodes: train `seed + restart`, val `seed + 10^6`, test `seed + 2·10^6`, predict `seed + 3·10^6`.
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import Env
from gymnasium.vector import SyncVectorEnv
from torch.utils.data import Dataset

from ssmkit.data import BaseDataModule
from ssmkit_rl.envs import make_env, make_vector_env, resolve_env_id

SPLIT_SEED_OFFSET = {"train": 0, "val": 1_000_000, "test": 2_000_000, "predict": 3_000_000}


class Indices(Dataset):
    """0, 1, ..., n - 1 as tensors (the batches of an RL loop)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.tensor(i)


class EnvData(BaseDataModule):
    def __init__(
        self,
        env_id: str = "RepeatPreviousEasy",
        env_kwargs: dict[str, Any] | None = None,
        updates_per_epoch: int = 10,
        eval_episodes: int = 16,
        seed: int = 0,
    ) -> None:
        """The environment and the lengths of Lightning's loops.

        Args:
            env_id: a gymnasium id or a popgym name (RepeatPreviousEasy); an unknown id is a DataError.
            env_kwargs: keyword arguments for `gymnasium.make`.
            updates_per_epoch: PPO updates per Lightning epoch (validation runs after each epoch).
            eval_episodes: episodes played by each validation, test and predict.
            seed: the environments' seeds (each split has its own offset).
        """
        super().__init__(batch_size=1, num_workers=0, seed=seed)
        if updates_per_epoch < 1 or eval_episodes < 1:
            raise ValueError(
                f"updates_per_epoch and eval_episodes must be >= 1, got {updates_per_epoch}, {eval_episodes}"
            )
        self.env_id = resolve_env_id(env_id)
        self.env_kwargs = dict(env_kwargs or {})
        self.updates_per_epoch, self.eval_episodes = updates_per_epoch, eval_episodes

    def build(self, stage: str) -> dict[str, Dataset]:
        return {"train": Indices(self.updates_per_epoch), "val": Indices(1), "test": Indices(1), "predict": Indices(1)}

    def env_seed(self, split: str, restart: int = 0) -> int:
        """The seed of `split`'s environments (train: `restart` counts the times they were made again)."""
        return self.seed + SPLIT_SEED_OFFSET[split] + restart

    def make_envs(self, n_envs: int, render_mode: str | None = None) -> SyncVectorEnv:
        """`n_envs` environments in one vector env (same-step autoreset)."""
        kwargs = self.env_kwargs | ({"render_mode": render_mode} if render_mode else {})
        return make_vector_env(self.env_id, n_envs, **kwargs)

    def make_env(self) -> Env:
        """One environment, to read its spaces and metadata."""
        return make_env(self.env_id, **self.env_kwargs)
