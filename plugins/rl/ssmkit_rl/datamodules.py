"""`EnvData`: the environment a PPO run acts in, and the index sets Lightning's loops iterate over.

RL has no dataset: the "data" is an environment id (any gymnasium id, or a popgym name such as
`RepeatPreviousEasy`, see `ssmkit_rl.envs`). Lightning still drives the run through loaders, so each split is a
set of indices: "train" holds `updates_per_epoch` update indices (one batch = one PPO update: a rollout and its
optimisation epochs), and "val", "test", "predict" hold one index each (one batch = `eval_episodes` episodes on
environments of their own). The environments are made here, seeded per split so that evaluation never reuses
training episodes: train `seed + restart`, val `seed + 10^6`, test `seed + 2·10^6`, predict `seed + 3·10^6`.

`MetaDTData` (task `meta_dt`): offline multi-task episodes of a domain (Point-Robot goals, CartPole / Pendulum
with varied physics; generated and seeded, or read from npz or a Minari dataset), each served with a prompt
episode of the same task and its task index; test / predict are one index each (online play on the held-out
tasks, starts seeded with the same offsets).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import Env
from gymnasium.vector import SyncVectorEnv
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import Dataset

from ssmkit.data import BaseDataModule, DataError
from ssmkit_rl.envs import make_env, make_vector_env, resolve_env_id
from ssmkit_rl.offline import OfflineData, generate, load_offline, save_offline
from ssmkit_rl.offline import domain as offline_domain

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


class TaskEpisodes(Dataset):
    """Episodes of an `OfflineData`, each with a prompt episode: another episode of the same task in this split,
    drawn afresh per item (torch's global RNG, seeded by the run's seed). An item is 9 tensors: observations
    (T, d_obs), actions (T, d_act), rewards (T,), next_observations (T, d_obs) of the episode, then the same of the
    prompt episode, then the episode's task index ()."""

    def __init__(self, data: OfflineData, episodes: np.ndarray) -> None:
        self.steps = [
            torch.as_tensor(x) for x in (data.observations, data.actions, data.rewards, data.next_observations)
        ]
        self.episodes = episodes
        self.same_task = {int(t): episodes[data.tasks[episodes] == t] for t in np.unique(data.tasks[episodes])}
        self.tasks = data.tasks

    def __len__(self) -> int:
        return len(self.episodes)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        episode = int(self.episodes[i])
        pool = self.same_task[int(self.tasks[episode])]
        prompt = int(pool[torch.randint(len(pool), ()).item()])
        task = torch.tensor(int(self.tasks[episode]))
        return *(x[episode] for x in self.steps), *(x[prompt] for x in self.steps), task


class MetaDTData(BaseDataModule):
    def __init__(
        self,
        domain: str = "point_robot",
        path: str | None = None,
        n_tasks: int = 50,
        n_test_tasks: int = 5,
        episodes_per_task: int = 40,
        episode_length: int = 20,
        random_fraction: float = 0.1,
        aim_noise: float = 0.1,
        max_explore_steps: int = 6,
        line_openings: float = 0.0,
        val_fraction: float = 0.1,
        eval_episodes: int = 10,
        explore_steps: int = 0,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        """Offline multi-task episodes of a domain (`ssmkit_rl.offline`), generated and seeded here, or read.

        The "train" and "val" splits hold episodes of the training tasks (`val_fraction` of each task's episodes
        in val); "test" and "predict" are one index each: those stages play `eval_episodes` episodes online on
        each held-out task.

        Args:
            domain: "point_robot" (goals on the half circle), "cartpole" or "pendulum" (varied physics); data read
                from `path` must be of this domain.
            path: an .npz file or a Minari dataset folder `<root>/<dataset_id>` (any other path; the layouts are in
                `ssmkit_rl.offline`): read when it exists, else the generated data is written there. None:
                generate in memory.
            n_tasks: tasks (Point-Robot goals, or sets of physical constants).
            n_test_tasks: held-out tasks (no offline data; evaluated online).
            episodes_per_task: behaviour-policy episodes per training task.
            episode_length: steps per episode.
            random_fraction: the share of all-random episodes.
            aim_noise: the behaviour policy's error about the task (Point-Robot: std of the goal per axis; physics:
                the relative error of each constant its controller uses).
            max_explore_steps: the most random steps a behaviour episode opens with.
            line_openings: Point-Robot: the share of those openings that are a straight line at full speed in a
                random direction (then the turn toward the goal) instead of random steps.
            val_fraction: the share of each training task's episodes held out for validation.
            eval_episodes: online episodes per held-out task in test / predict.
            explore_steps: an exploring start in test / predict: the first n actions of every online episode are
                random (the domain's random policy, seeded), then the policy acts.
            batch_size: episodes per batch.
            num_workers: loader processes.
            seed: the tasks, the offline data and the evaluation episodes' starts.
        """
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        self.domain = offline_domain(domain)
        self.path = Path(path) if path else None
        self.settings = {
            "domain_name": domain,
            "n_tasks": n_tasks,
            "n_test_tasks": n_test_tasks,
            "episodes_per_task": episodes_per_task,
            "episode_length": episode_length,
            "random_fraction": random_fraction,
            "aim_noise": aim_noise,
            "max_explore_steps": max_explore_steps,
            "line_openings": line_openings,
            "seed": seed,
        }
        self.val_fraction, self.eval_episodes, self.explore_steps = val_fraction, eval_episodes, explore_steps
        self._offline: OfflineData | None = None

    @property
    def offline(self) -> OfflineData:
        """The offline data: read from `path`, or generated (and written to `path` when given)."""
        if self._offline is None:
            if self.path is not None and self.path.exists():
                data = load_offline(self.path)
                if data.domain != self.domain.name:
                    raise DataError(
                        f"the data is of domain {data.domain!r}, but data.domain is {self.domain.name!r}",
                        source=self.path,
                    )
                self._offline = data
                rank_zero_info(f"{data.domain} data read from {self.path}")
            else:
                self._offline = generate(**self.settings)
                if self.path is not None:
                    rank_zero_info(f"{self.domain.name} data written to {save_offline(self._offline, self.path)}")
        return self._offline

    @property
    def obs_dim(self) -> int:
        return self.domain.obs_dim

    @property
    def action_dim(self) -> int:
        return self.domain.action_dim

    @property
    def max_action(self) -> float:
        return self.domain.max_action

    @property
    def episode_length(self) -> int:
        return self.offline.episode_length

    def build(self, stage: str) -> dict[str, Dataset]:
        data = self.offline
        rng = np.random.default_rng(self.seed)
        val = np.concatenate(
            [
                rng.permutation(np.flatnonzero(data.tasks == t))[
                    : max(1, round(self.val_fraction * np.sum(data.tasks == t)))
                ]
                for t in np.unique(data.tasks)
            ]
        )
        train = np.setdiff1d(np.arange(len(data.tasks)), val)
        return {
            "train": TaskEpisodes(data, train),
            "val": TaskEpisodes(data, np.sort(val)),
            "test": Indices(1),
            "predict": Indices(1),
        }

    def eval_seed(self, split: str) -> int:
        """The seed of `split`'s online episodes (start positions)."""
        return self.seed + SPLIT_SEED_OFFSET[split]
