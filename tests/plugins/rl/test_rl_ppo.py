"""PPO's pieces against hand-computed cases."""

import pytest
import torch

from ssmkit_rl.ppo import gae, minibatch_rows, normalise, policy_loss, value_loss


def test_gae_matches_a_hand_computed_case():
    # one environment, 3 steps, the episode ends after step 1: nothing after it is bootstrapped into it
    rewards = torch.tensor([[1.0, 2.0, 3.0]])
    values = torch.tensor([[0.5, 1.0, 1.5]])
    dones = torch.tensor([[False, True, False]])
    gamma, lam = 0.9, 0.8
    advantages, returns = gae(rewards, values, dones, torch.tensor([2.0]), gamma, lam)
    a2 = 3.0 + gamma * 2.0 - 1.5  # bootstrapped from the value after the rollout
    a1 = 2.0 - 1.0  # the episode ended: no next value, no later advantage
    a0 = (1.0 + gamma * 1.0 - 0.5) + gamma * lam * a1
    torch.testing.assert_close(advantages, torch.tensor([[a0, a1, a2]]))
    torch.testing.assert_close(returns, advantages + values)


def test_gae_with_lambda_one_is_the_discounted_return_minus_the_value():
    rewards, values = torch.rand(2, 6), torch.rand(2, 6)
    dones = torch.zeros(2, 6, dtype=torch.bool)
    _, returns = gae(rewards, values, dones, torch.zeros(2), 0.5, 1.0)
    expected = sum(0.5**k * rewards[:, k] for k in range(6))
    torch.testing.assert_close(returns[:, 0], expected)


def test_the_clipped_surrogate_and_its_statistics():
    advantages = torch.tensor([1.0, -1.0, 1.0, -1.0])
    old = torch.zeros(4)
    new = torch.log(torch.tensor([1.5, 1.5, 0.5, 1.1]))  # ratios
    out = policy_loss(new, old, advantages, clip=0.2)
    # min(ρA, clip(ρ)A): 1.2 (clipped), -1.5 (unclipped: the worse), 0.5 (unclipped), -1.1
    torch.testing.assert_close(out.loss, -torch.tensor([1.2, -1.5, 0.5, -1.1]).mean())
    assert out.clip_fraction.item() == pytest.approx(0.75)
    ratio = torch.tensor([1.5, 1.5, 0.5, 1.1])
    torch.testing.assert_close(out.approx_kl, ((ratio - 1) - ratio.log()).mean())
    same = policy_loss(old, old, advantages, clip=0.2)
    assert same.loss.item() == pytest.approx(0.0) and same.approx_kl.item() == 0.0


def test_the_value_loss_takes_the_larger_of_the_clipped_and_unclipped_errors():
    values, old, returns = torch.tensor([2.0, 0.0]), torch.tensor([1.0, 0.0]), torch.tensor([3.0, 0.5])
    # row 0: unclipped (2-3)^2 = 1, clipped 1.2 -> (1.2-3)^2 = 3.24; row 1: 0.25 both
    assert value_loss(values, old, returns, 0.2).item() == pytest.approx(0.5 * (3.24 + 0.25) / 2)
    assert value_loss(values, old, returns, None).item() == pytest.approx(0.5 * (1.0 + 0.25) / 2)


def test_minibatches_partition_the_environments_and_advantages_normalise():
    rows = minibatch_rows(10, 3, torch.Generator().manual_seed(0))
    assert sorted(torch.cat(rows).tolist()) == list(range(10)) and [len(r) for r in rows] == [4, 3, 3]
    with pytest.raises(ValueError, match="n_minibatches"):
        minibatch_rows(2, 3)
    a = normalise(torch.tensor([1.0, 2.0, 3.0]))
    assert a.mean().abs() < 1e-6 and a.std().item() == pytest.approx(1.0, abs=1e-4)
