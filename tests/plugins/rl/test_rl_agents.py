"""The agent's memories: the resettable scan equals the step recurrence, and a reset cuts the past off."""

import pytest
import torch
from gymnasium import spaces

from ssmkit.models import BackboneConfig
from ssmkit_rl.agents import ActorCritic, RNNMemory, SSMMemory, make_memory, resets_mixers
from ssmkit_rl.spaces import ActionSpec

B, L, D_IN = 3, 29, 5


def ssm(mixer: str) -> SSMMemory:
    from ssmkit.registry import mixer_class

    torch.manual_seed(0)
    kwargs = {**mixer_class(mixer).tiny_kwargs, "d_state": 8}
    return SSMMemory(D_IN, BackboneConfig(d_model=8, n_layers=2, mixer=mixer, mixer_kwargs=kwargs))


def random_resets(seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    resets = torch.rand(B, L, generator=g) < 0.15
    resets[:, 0] = True  # the memory starts empty
    return resets


def run_steps(memory, x, resets):
    state, ys = memory.initial_state(x.shape[0]), []
    for t in range(x.shape[1]):
        y, state = memory.step(x[:, t], resets[:, t], state)
        ys.append(y)
    return torch.stack(ys, 1)


def test_every_resettable_causal_mixer_qualifies():
    assert {"s5", "lru", "mamba", "mamba2"} <= set(resets_mixers())


@pytest.mark.parametrize("mixer", resets_mixers())
def test_the_resettable_scan_equals_the_step_recurrence(mixer):
    memory, x, resets = ssm(mixer), torch.randn(B, L, D_IN), random_resets()
    with torch.no_grad():
        torch.testing.assert_close(memory.sequence(x, resets), run_steps(memory, x, resets), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("memory", [*resets_mixers(), "lstm"])
def test_a_done_cuts_the_outputs_after_it_off_the_inputs_before_it(memory):
    memory, x = RNNMemory(D_IN, 8, "lstm") if memory == "lstm" else ssm(memory), torch.randn(B, L, D_IN)
    resets = torch.zeros(B, L, dtype=torch.bool)
    resets[:, 0], resets[:, 11] = True, True  # the episode that ended at step 10 is over
    changed = x.clone()
    changed[:, :11] += 10 * torch.randn(B, 11, D_IN)
    with torch.no_grad():
        y, y_changed = memory.sequence(x, resets), memory.sequence(changed, resets)
    torch.testing.assert_close(y[:, 11:], y_changed[:, 11:], atol=1e-6, rtol=0)
    assert not torch.allclose(y[:, :11], y_changed[:, :11])  # before the reset the inputs do matter


def test_the_actor_critic_acts_as_it_learns():
    """Distribution and values from `step` equal those of one `sequence` call (categorical and Gaussian)."""
    for space in (spaces.Discrete(3), spaces.Box(-1, 1, (2,))):
        agent = ActorCritic(ssm("s5"), ActionSpec(space), head_hidden=8)
        x, resets = torch.randn(B, L, D_IN), random_resets(2)
        with torch.no_grad():
            dist, values = agent.sequence(x, resets)
            state, params, stepped = agent.initial_state(B), [], []
            for t in range(L):
                d, v, state = agent.step(x[:, t], resets[:, t], state)
                params.append(d.logits if isinstance(space, spaces.Discrete) else d.mean)
                stepped.append(v)
        expected = dist.logits if isinstance(space, spaces.Discrete) else dist.mean
        torch.testing.assert_close(torch.stack(params, 1), expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(torch.stack(stepped, 1), values, atol=1e-5, rtol=1e-5)


def test_a_mixer_without_resets_is_refused_by_name():
    with pytest.raises(ValueError, match="takes no episode resets.*mamba.*s5"):
        SSMMemory(D_IN, BackboneConfig(d_model=8, n_layers=1, mixer="s4d"))
    with pytest.raises(ValueError, match="agent must be one of"):
        make_memory("transformer", D_IN, None, 8)
