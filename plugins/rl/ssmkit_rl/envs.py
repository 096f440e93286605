"""Environments by id: any gymnasium id, or a popgym name without its prefix (`RepeatPreviousEasy`).

popgym registers its environments as `popgym-<Name>-v0`; `resolve_env_id` accepts the short name too, and
`StatelessCartPole<Level>` (popjaxrl's name) for popgym's `PositionOnlyCartPole<Level>` (cart position and pole
angle, no velocities). An id that is neither is a `DataError` with the closest names.

Vector environments are gymnasium's `SyncVectorEnv` with same-step autoreset: the observation returned with
`terminated | truncated` is already the first one of the next episode, so a rollout holds episodes back to back
and the step after a done starts a new episode (what the agent's resets mark).

The meta-RL task of the S5 paper (`ssmkit_rl.meta_rl`) is registered here as `MetaStatelessCartPole-v0`
(popjaxrl's: CartPole-v1's positions projected to 4), `MetaCartPole-v0` (the full state projected, actions permuted)
and `MetaPendulum-v0` (Pendulum-v1, rewards scaled by 0.1); `--data.env_kwargs '{n_trials: 8}'` sets its options.
"""

from __future__ import annotations

import difflib
import warnings
from typing import Any

import gymnasium as gym
import popgym.envs  # noqa: F401  (registers popgym-*-v0)
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from ssmkit.data import DataError

POPGYM_PREFIX = "popgym-"
ALIASES = {f"StatelessCartPole{level}": f"PositionOnlyCartPole{level}" for level in ("", "Easy", "Medium", "Hard")}
META_RL_ENVS = {
    "MetaCartPole-v0": {"env_id": "CartPole-v1"},
    # popjaxrl's NoisyStatelessMetaCartPole (noise 0): the positions (x, theta) projected to 4, actions as they are
    "MetaStatelessCartPole-v0": {"env_id": "CartPole-v1", "observe": [0, 2], "d_proj": 4, "project_actions": False},
    "MetaPendulum-v0": {"env_id": "Pendulum-v1", "reward_scale": 0.1},
}
for _name, _kwargs in META_RL_ENVS.items():
    if _name not in gym.registry:
        gym.register(_name, entry_point="ssmkit_rl.meta_rl:MetaRLEnv", kwargs=_kwargs)


def popgym_names() -> list[str]:
    """The short names of popgym's registered environments (`RepeatPreviousEasy`, ...)."""
    return sorted(k[len(POPGYM_PREFIX) : -3] for k in gym.registry if k.startswith(POPGYM_PREFIX))


def resolve_env_id(env_id: str) -> str:
    """The registered gymnasium id of `env_id` (a gymnasium id, a popgym short name or an alias)."""
    if env_id in gym.registry:
        return env_id
    candidate = f"{POPGYM_PREFIX}{ALIASES.get(env_id, env_id)}-v0"
    if candidate in gym.registry:
        return candidate
    known = [*gym.registry, *popgym_names(), *ALIASES]
    close = difflib.get_close_matches(env_id, known, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise DataError(
        f"unknown environment id {env_id!r}{hint} (give a gymnasium id such as CartPole-v1, or a popgym name such "
        f"as RepeatPreviousEasy; popgym has {len(popgym_names())})",
        source="env_id",
    )


def make_env(env_id: str, render_mode: str | None = None, **kwargs: Any) -> gym.Env:
    """One environment; `kwargs` go to `gymnasium.make`."""
    with warnings.catch_warnings():  # popgym's envs predate gymnasium 1.x's checker (float rewards, int obs)
        warnings.filterwarnings("ignore", module="gymnasium.utils.passive_env_checker")
        # popgym's constructors take no render_mode: pass it only when asked for
        return gym.make(resolve_env_id(env_id), **kwargs, **({"render_mode": render_mode} if render_mode else {}))


def make_vector_env(env_id: str, n_envs: int, **kwargs: Any) -> SyncVectorEnv:
    """`n_envs` copies in one process, autoreset on the same step."""
    if n_envs < 1:
        raise ValueError(f"n_envs must be >= 1, got {n_envs}")
    env_id = resolve_env_id(env_id)
    return SyncVectorEnv(
        [lambda: make_env(env_id, **kwargs) for _ in range(n_envs)], autoreset_mode=AutoresetMode.SAME_STEP
    )


def can_render(env: gym.Env) -> bool:
    """Whether the environment draws rgb_array frames."""
    return "rgb_array" in (env.metadata.get("render_modes") or [])
