"""Environments by id, the spaces the agent reads, rollouts on the step path, and bad input."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from ssmkit.data import DataError
from ssmkit_rl.agents import ActorCritic, MLPMemory
from ssmkit_rl.datamodules import EnvData
from ssmkit_rl.envs import make_vector_env, resolve_env_id
from ssmkit_rl.rollout import EnvRunner, collect
from ssmkit_rl.spaces import ActionSpec, ObservationReader
from ssmkit_rl.tasks import PPO


class TupleObservations(gym.Env):
    observation_space = spaces.Tuple((spaces.Discrete(2), spaces.Discrete(3)))
    action_space = spaces.Discrete(2)


gym.register("TupleObservations-v0", entry_point=TupleObservations)


def test_ids_popgym_short_names_aliases_and_gymnasium():
    assert resolve_env_id("RepeatPreviousEasy") == "popgym-RepeatPreviousEasy-v0"
    assert resolve_env_id("StatelessCartPoleEasy") == "popgym-PositionOnlyCartPoleEasy-v0"
    assert resolve_env_id("CartPole-v1") == "CartPole-v1"
    for env_id in ("RepeatFirstEasy", "CountRecallEasy"):
        assert resolve_env_id(env_id).startswith("popgym-")


def test_an_unknown_id_is_a_data_error_with_the_closest_names():
    with pytest.raises(DataError, match="unknown environment id 'RepeatPreviusEasy'.*RepeatPreviousEasy"):
        EnvData("RepeatPreviusEasy")


def test_observations_are_read_as_flat_features():
    assert ObservationReader(spaces.Discrete(4))(np.array([3, 0])).tolist() == [[0, 0, 0, 1], [1, 0, 0, 0]]
    multi = ObservationReader(spaces.MultiDiscrete([2, 3]))(np.array([[1, 2]]))
    assert multi.tolist() == [[0, 1, 0, 0, 1]]
    assert ObservationReader(spaces.Box(-1, 1, (2, 3))).d_features == 6


def test_unreadable_spaces_are_named_with_the_supported_ones():
    with pytest.raises(DataError, match="cannot read a Tuple observation space.*Box, Discrete, MultiDiscrete"):
        PPO("TupleObservations-v0")
    with pytest.raises(DataError, match="cannot act in a MultiDiscrete action space.*Discrete, Box"):
        ActionSpec(spaces.MultiDiscrete([8, 8]))


def test_a_rollout_marks_episode_starts_and_zeroes_the_previous_action_there():
    torch.manual_seed(0)
    envs = make_vector_env("RepeatPreviousEasy", 2)
    agent = ActorCritic(MLPMemory(4 + 4 + 1, 8), ActionSpec(envs.single_action_space), 8)
    runner = EnvRunner(envs, agent, seed=0)
    rollout = collect(agent, runner, 120)  # 51-step episodes: two ends per environment
    assert rollout.resets[:, 0].all()
    torch.testing.assert_close(rollout.resets[:, 1:], rollout.dones[:, :-1])
    assert rollout.dones.sum(1).tolist() == [2, 2] and len(rollout.episode_returns) == 4
    starts = rollout.inputs[rollout.resets]  # (n, obs 4 + previous action 4 + previous reward 1)
    assert (starts[:, 4:] == 0).all()
    assert (rollout.inputs[~rollout.resets][:, 4:8].sum(-1) == 1).all()  # a one-hot previous action elsewhere
    assert all(-1.0 <= r <= 1.0 for r in rollout.episode_returns)
    runner.close()


@pytest.mark.parametrize("memory", ["s5", "mamba", "gru"])
def test_a_carried_memory_gives_the_update_what_acting_saw(memory):
    """With `carry`, the second rollout starts mid-episode from the memory the first left: the update's scan from
    `initial_state` (prefill with resets; a GRU stepping from it) recomputes the values acting recorded, for every
    row and a minibatch of rows; from an empty memory it does not (episodes of 51 steps span the 30-step rollouts)."""
    from ssmkit.models import BackboneConfig
    from ssmkit.registry import mixer_class
    from ssmkit_rl.agents import RNNMemory, SSMMemory

    torch.manual_seed(0)
    envs = make_vector_env("RepeatPreviousEasy", 3)
    d_in = 4 + 4 + 1
    if memory == "gru":
        made = RNNMemory(d_in, 8, "gru")
    else:
        kwargs = {**mixer_class(memory).tiny_kwargs, "d_state": 4}
        made = SSMMemory(d_in, BackboneConfig(d_model=8, n_layers=2, mixer=memory, mixer_kwargs=kwargs))
    agent = ActorCritic(made, ActionSpec(envs.single_action_space), 8)
    runner = EnvRunner(envs, agent, seed=0)
    collect(agent, runner, 30, carry=True)
    rollout = collect(agent, runner, 30, carry=True)
    assert rollout.initial_state is not None and not rollout.resets[:, 0].any()
    with torch.no_grad():
        _, values = agent.sequence(rollout.inputs, rollout.resets, rollout.initial_state)
        _, fresh = agent.sequence(rollout.inputs, rollout.resets)
        rows = torch.tensor([2, 0])
        part = rollout.rows(rows, agent)
        _, part_values = agent.sequence(part.inputs, part.resets, part.initial_state)
    torch.testing.assert_close(values, rollout.values, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(part_values, rollout.values[rows], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(fresh, rollout.values, atol=1e-4)
    runner.close()
