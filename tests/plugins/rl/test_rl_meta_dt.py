"""Meta-DT: the context encoder's window, the self-guided prompt selector, npz errors, shapes."""

import numpy as np
import pytest
import torch

from ssmkit.data import DataError
from ssmkit.models import BackboneConfig
from ssmkit_rl.datamodules import MetaDTData
from ssmkit_rl.meta_dt import (
    DecisionModel,
    Prompt,
    Steps,
    WorldModel,
    ZFit,
    context_windows,
    episode_codes,
    play_meta_dt,
    recent_windows,
    select_prompt,
)
from ssmkit_rl.offline import NPZ_KEYS, generate, load_npz, save_npz
from ssmkit_rl.point_robot import PointRobot
from ssmkit_rl.tasks import MetaDT

TINY = BackboneConfig(d_model=16, n_layers=1, mixer="mamba", mixer_kwargs={"d_state": 4})


def random_steps(b: int = 3, t: int = 12) -> Steps:
    g = torch.Generator().manual_seed(0)
    return Steps(*(torch.randn(b, t, *d, generator=g) for d in ((2,), (2,), (), (2,))))


def test_context_windows_hold_the_h_transitions_before_each_step():
    x = torch.arange(1, 6, dtype=torch.float32).reshape(1, 5, 1)
    windows = context_windows(x, 3)[0, :, :, 0]
    assert windows.tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 4]]


def changed(steps: Steps, t: int) -> Steps:
    """A copy of steps with every part of transition t moved."""
    parts = [x.clone() for x in (steps.observations, steps.actions, steps.rewards, steps.next_observations)]
    for x in parts:
        x[:, t] += 5.0
    return Steps(*parts)


def test_the_encoder_sees_only_the_past_h_transitions():
    torch.manual_seed(0)
    h, t = 4, 9
    model = WorldModel(2, 2, z_dim=8, hidden=16, context_len=h)
    steps = random_steps()
    z = model.embed(steps)[:, t]
    for older in range(t - h):  # before the window
        assert torch.equal(model.embed(changed(steps, older))[:, t], z)
    assert torch.equal(model.embed(changed(steps, t))[:, t], z)  # step t itself is not known when acting at t
    for inside in range(t - h, t):
        assert not torch.allclose(model.embed(changed(steps, inside))[:, t], z)


def test_the_prompt_selector_picks_the_largest_error_segment():
    errors = torch.tensor([[0.0, 0, 0, 1, 1, 1, 0, 0, 0, 0], [5.0, 0, 0, 0, 0, 0, 0, 2, 2, 0]])
    assert select_prompt(errors, 3).tolist() == [3, 0]
    assert select_prompt(errors, 3, first=2).tolist() == [3, 6]  # windows from step 2: [7, 8] + 2 at 6 beats 0
    steps = random_steps(2, 10)
    prompt = Prompt.of(steps, torch.tensor([3, 6]), 3)
    assert torch.equal(prompt.observations[1], steps.observations[1, 6:9])
    assert prompt.timesteps.tolist() == [[3, 4, 5], [6, 7, 8]]
    assert torch.allclose(prompt.returns_to_go[0, 0], steps.rewards[0, 3:].sum())


@pytest.mark.parametrize("z_dim", [0, 4])
def test_shapes_and_causality_of_the_decision_model(z_dim):
    torch.manual_seed(0)
    model = DecisionModel(2, 2, z_dim, max_timestep=12, backbone=TINY, return_scale=10.0, max_action=0.1)
    s = random_steps(3, 12)
    z = torch.randn(3, 12, z_dim) if z_dim else None
    prompt = Prompt.of(s, torch.tensor([0, 2, 5]), 4)
    out = model(s.rewards, s.observations, z, s.actions, prompt)
    assert out.shape == (3, 12, 2) and out.abs().max() <= 1
    later = s.actions.clone()
    later[:, 6:] = 9.0  # actions from step 6 on cannot change the prediction of a_0 .. a_6
    assert torch.allclose(model(s.rewards, s.observations, z, later, prompt)[:, :7], out[:, :7], atol=1e-5)


def test_online_play_and_the_task_loss():
    torch.manual_seed(0)
    task = MetaDT(episode_length=6, backbone=TINY, z_dim=4, world_hidden=8, context_len=2, prompt_len=2)
    env = PointRobot(np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32), np.random.default_rng(0))
    steps = play_meta_dt(task.policy, task.world_model, env, -5.0, torch.full((6,), -1.0))
    assert steps.actions.shape == (2, 6, 2) and steps.actions.abs().max() <= 0.1 + 1e-6
    assert torch.allclose(steps.observations[:, 1:], steps.next_observations[:, :-1])
    data = MetaDTData(n_tasks=4, n_test_tasks=1, episodes_per_task=3, episode_length=6, batch_size=4)
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    assert [tuple(x.shape) for x in batch[:4]] == [(4, 6, 2), (4, 6, 2), (4, 6), (4, 6, 2)]
    assert torch.isfinite(task.shared_step(batch, "val"))


def test_npz_round_trip_and_named_errors(tmp_path):
    data = generate("point_robot", n_tasks=4, n_test_tasks=1, episodes_per_task=2, episode_length=5)
    path = save_npz(data, tmp_path / "point.npz")
    back = load_npz(path)
    assert np.array_equal(back.rewards, data.rewards) and back.episode_length == 5
    arrays = dict(np.load(path))
    np.savez(tmp_path / "missing.npz", **{k: v for k, v in arrays.items() if k != "rewards"})
    with pytest.raises(DataError, match=r"missing.npz: missing key\(s\) \['rewards'\]"):
        load_npz(tmp_path / "missing.npz")
    ragged = dict(arrays, episode_lengths=np.array([5, 5, 4, 6, 5, 5]))
    np.savez(tmp_path / "ragged.npz", **ragged)
    with pytest.raises(DataError, match="ragged.npz: key episode_lengths: ragged episodes \\(episode 2 has 4"):
        load_npz(tmp_path / "ragged.npz")
    short = dict(arrays, actions=arrays["actions"][:-1])
    np.savez(tmp_path / "short.npz", **short)
    with pytest.raises(DataError, match="short.npz: key actions: 29 rows"):
        load_npz(tmp_path / "short.npz")
    assert set(NPZ_KEYS) == set(arrays)


def test_recent_windows_hold_the_k_steps_up_to_each_step():
    x = torch.arange(1, 5, dtype=torch.float32).reshape(1, 4)
    assert recent_windows(x, 2)[0].tolist() == [[0, 1], [1, 2], [2, 3], [3, 4]]
    assert recent_windows(torch.randn(2, 5, 3), 4).shape == (2, 5, 4, 3)


def test_a_horizon_limits_what_each_action_reads():
    torch.manual_seed(0)
    model = DecisionModel(2, 2, 4, max_timestep=12, backbone=TINY, return_scale=10.0, max_action=0.1, horizon=3)
    s, z = random_steps(2, 12), torch.randn(2, 12, 4)
    prompt = Prompt.of(s, torch.tensor([0, 2]), 4)
    out = model(s.rewards, s.observations, z, s.actions, prompt)
    assert out.shape == (2, 12, 2)
    moved = s.observations.clone()
    moved[:, 5] += 3.0  # read by the windows of steps 5, 6, 7 only
    diff = (model(s.rewards, moved, z, s.actions, prompt) - out).abs().amax(dim=(0, 2))
    assert torch.all(diff[5:8] > 0) and torch.all(diff[:5] == 0) and torch.all(diff[8:] == 0)
    prefix = model(s.rewards[:, :7], s.observations[:, :7], z[:, :7], s.actions[:, :7], prompt)
    assert torch.allclose(prefix, out[:, :7], atol=1e-5)  # online play reads prefixes
    last = model(
        s.rewards[:, 4:7], s.observations[:, 4:7], z[:, 4:7], s.actions[:, 4:7], prompt, torch.arange(4, 7).expand(2, 3)
    )
    assert torch.allclose(last[:, -1], out[:, 6], atol=1e-5)  # the last K steps alone, at their own timesteps
    shifted = model(s.rewards[:, 4:7], s.observations[:, 4:7], z[:, 4:7], s.actions[:, 4:7], prompt)
    assert not torch.allclose(shifted[:, -1], out[:, 6], atol=1e-3)  # read as steps 0 .. 2 it is another input


def test_acting_with_a_horizon_reads_the_last_k_steps_as_the_whole_prefix_would():
    torch.manual_seed(0)
    task = MetaDT(episode_length=8, backbone=TINY, z_dim=4, world_hidden=8, context_len=2, horizon=3)
    env = PointRobot(np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32), np.random.default_rng(0))
    played = play_meta_dt(task.policy, task.world_model, env, -5.0, torch.full((8,), -1.0))
    z = task.world_model.embed(played)
    rtg = torch.full((2, 8), -5.0)
    for t in range(1, 8):  # the return-to-go the play conditioned on: -5, then minus each reward, capped at -1
        rtg[:, t] = torch.clamp(rtg[:, t - 1] - played.rewards[:, t - 1], max=-1.0)
    with torch.no_grad():  # the full episode, each step's own window (zeros before the start for steps 0, 1)
        full = task.policy(rtg, played.observations, z, played.actions / 0.1) * 0.1
    assert torch.allclose(full[:, 2:], played.actions[:, 2:], atol=1e-5)


def test_training_windows_are_k_consecutive_steps_read_at_their_timesteps(monkeypatch):
    torch.manual_seed(0)
    windows = MetaDT.random_windows(torch.zeros(500, 10), 4)
    assert windows.shape == (500, 4) and torch.all(windows.diff(dim=1) == 1)
    assert windows[:, 0].min() == 0 and windows[:, 0].max() == 6  # every start 0 .. T - k
    task = MetaDT(
        episode_length=6, backbone=TINY, z_dim=4, world_hidden=8, context_len=2, horizon=3, train_windows=True
    )
    data = MetaDTData(n_tasks=4, n_test_tasks=1, episodes_per_task=3, episode_length=6, batch_size=4)
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    seen = {}

    def policy(rtg, states, z, actions, prompt=None, timesteps=None):
        seen.update(states=states, timesteps=timesteps)
        return actions

    monkeypatch.setattr(task.policy, "forward", policy)
    task.shared_step(batch, "val")
    assert seen["states"].shape == (4, 3, 2) and seen["timesteps"].shape == (4, 3)
    index = seen["timesteps"][:, :, None].expand(-1, -1, 2)
    assert torch.equal(seen["states"], batch[0].gather(1, index))  # the states of the window's steps


def test_world_steps_train_the_world_model_first_then_freeze_it(monkeypatch):
    torch.manual_seed(0)
    task = MetaDT(episode_length=6, backbone=TINY, z_dim=4, world_hidden=8, context_len=2, prompt_len=2, world_steps=3)
    data = MetaDTData(n_tasks=4, n_test_tasks=1, episodes_per_task=3, episode_length=6, batch_size=4)
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))

    def grads(step: int) -> tuple[bool, bool]:
        monkeypatch.setattr(MetaDT, "global_step", property(lambda self: step))
        task.zero_grad(set_to_none=True)
        task.shared_step(batch, "train").backward()
        has = [p.grad is not None and p.grad.abs().sum() > 0 for p in task.policy.head.parameters()]
        return any(has), any(p.grad is not None for p in task.world_model.parameters())

    assert grads(0) == (False, True)  # the world model alone
    assert grads(3) == (True, False)  # then the decision model alone
    plain = MetaDT(episode_length=6, backbone=TINY, context=False, world_steps=3)
    assert not plain.world_phase("train")  # no world model: the policy trains from the start


def with_moved(steps: Steps, part: str, t: int) -> Steps:
    """A copy of steps with one part (observations, actions, rewards, next_observations) moved at step t."""
    moved = Steps(*(x.clone() for x in vars(steps).values()))
    getattr(moved, part)[:, t] += 5.0
    return moved


@pytest.mark.parametrize("encoder", ["gru", "set"])
def test_the_reward_only_encoder_reads_where_each_step_ended_and_its_reward_not_the_action(encoder):
    torch.manual_seed(0)
    model = WorldModel(2, 2, z_dim=8, hidden=16, context_len=4, context_inputs="reward", encoder=encoder)
    steps, t = random_steps(), 7
    z = model.embed(steps)[:, t]
    for inside in range(t - 4, t):  # in the window: the action and the state it left are not read
        assert torch.equal(model.embed(with_moved(steps, "actions", inside))[:, t], z)
        assert torch.equal(model.embed(with_moved(steps, "observations", inside))[:, t], z)
        assert not torch.allclose(model.embed(with_moved(steps, "rewards", inside))[:, t], z)
        assert not torch.allclose(model.embed(with_moved(steps, "next_observations", inside))[:, t], z)
    anchor = WorldModel(2, 2, z_dim=8, hidden=16, context_len=4)  # the anchor's encoder reads the action
    assert not torch.allclose(anchor.embed(with_moved(steps, "actions", t - 1))[:, t], anchor.embed(steps)[:, t])
    with pytest.raises(ValueError, match="context_inputs must be one of"):
        WorldModel(2, 2, 8, 16, 4, context_inputs="heading")


def test_the_set_encoder_is_order_blind_and_skips_the_steps_before_the_start():
    torch.manual_seed(0)
    model = WorldModel(2, 2, z_dim=8, hidden=16, context_len=4, context_inputs="reward", encoder="set")
    windows, valid = torch.randn(5, 4, 3), torch.ones(5, 4, 1)
    z = model.encoder(windows, valid)
    assert torch.allclose(model.encoder(windows[:, [2, 0, 3, 1]], valid), z, atol=1e-6)
    valid[:, :2] = 0  # two padded rows: their content does not count
    padded = windows.clone()
    padded[:, :2] = 9.0
    assert torch.allclose(model.encoder(padded, valid), model.encoder(windows, valid), atol=1e-6)


def test_episode_targets_make_each_z_decode_every_step_of_its_episode():
    torch.manual_seed(0)
    steps = random_steps(2, 6)
    for targets, reads_later_steps in (("step", False), ("episode", True)):
        model = WorldModel(2, 2, z_dim=4, hidden=8, context_len=2, targets=targets)
        grads = []
        for s in (steps, with_moved(steps, "rewards", 4)):
            z = model.embed(s).detach().requires_grad_(True)
            model.loss(s, z).backward()
            grads.append(z.grad[:, 0].clone())  # z_0's gradient: from step 0 only, or from every step
        assert torch.allclose(grads[0], grads[1]) is not reads_later_steps


def test_without_action_tokens_past_actions_do_not_change_the_policy_and_z_is_standardised():
    torch.manual_seed(0)
    model = DecisionModel(2, 2, 4, 12, TINY, 10.0, 0.1, action_tokens=False, standardise_z=True)
    s, z = random_steps(3, 12), torch.randn(3, 12, 4)
    out = model(s.rewards, s.observations, z, s.actions)
    assert torch.allclose(model(s.rewards, s.observations, z, s.actions + 3.0), out, atol=1e-6)
    assert torch.allclose(model(s.rewards, s.observations, z + 100.0, s.actions), out, atol=1e-4)  # batch stats
    assert not torch.allclose(model(s.rewards, s.observations, z * torch.tensor([1, 1, 1, -1.0]), s.actions), out)
    with_actions = DecisionModel(2, 2, 4, 12, TINY, 10.0, 0.1)
    assert not torch.allclose(
        with_actions(s.rewards, s.observations, z, s.actions + 3.0)[:, 1:],
        with_actions(s.rewards, s.observations, z, s.actions)[:, 1:],
    )


def test_an_exploring_start_plays_the_opening_actions_first():
    torch.manual_seed(0)
    task = MetaDT(episode_length=6, backbone=TINY, z_dim=4, world_hidden=8, context_len=2)
    assert task.opening(2, seed=0) is None  # no exploring start by default
    task.offline_data = lambda: MetaDTData(explore_steps=2)
    env = PointRobot(np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32), np.random.default_rng(0))
    opening = task.opening(2, seed=0)
    assert opening.shape == (2, 2, 2) and opening.abs().max() <= 0.1
    steps = play_meta_dt(task.policy, task.world_model, env, -5.0, torch.full((6,), -1.0), opening=opening)
    assert torch.equal(steps.actions[:, :2], opening) and not torch.equal(steps.actions[:, 2], opening[:, 1])


def decoded_steps(model: WorldModel, z: torch.Tensor, t: int = 6) -> Steps:
    """Steps (N, t) whose rewards and next states are the decoders' own outputs for the codes z (N, z_dim)."""
    g = torch.Generator().manual_seed(1)
    obs, acts = torch.randn(len(z), t, 2, generator=g), torch.randn(len(z), t, 2, generator=g)
    inputs = torch.cat([obs, acts, z[:, None].expand(-1, t, -1)], dim=-1)
    with torch.no_grad():
        return Steps(obs, acts, model.reward(inputs).squeeze(-1), model.next_state(inputs))


def test_fitting_z_recovers_the_code_that_generated_the_rewards():
    torch.manual_seed(0)
    model = WorldModel(2, 2, z_dim=4, hidden=16, context_len=2)
    codes = torch.randn(8, 4)
    truth = codes[[5, 2]]  # the transitions of two episodes, made by the decoders with codes 5 and 2
    steps = decoded_steps(model, truth)
    start = torch.zeros(2, 4)
    picked = ZFit(model, codes, iters=0)(steps, start)  # the lowest-error candidate, no descent
    assert torch.equal(picked, truth)
    fit = ZFit(model, codes, iters=0)
    head, tail = (Steps(*(x[:, part] for x in vars(steps).values())) for part in (slice(0, 4), slice(4, None)))
    running = fit.code_errors(head) + fit.code_errors(tail)  # online play's running sum, step by step
    assert torch.allclose(running, fit.code_errors(steps), atol=1e-5) and running.argmin(1).tolist() == [5, 2]
    assert torch.equal(fit(steps, start, running), truth)
    between = ZFit(model, codes[[0, 1, 3]], iters=200, lr=0.05, prior=0.0)  # the truth is not a candidate
    fitted = between(steps, start)
    error = lambda z: model.errors(steps, z[:, None].expand(-1, 6, -1)).mean(1)  # noqa: E731
    first = ZFit(model, codes[[0, 1, 3]], iters=0)(steps, start)
    with torch.no_grad():
        assert torch.all(error(fitted) < 0.1 * error(first))  # descent from the best candidate cuts the error
    assert (fitted - truth).norm(dim=1).max() < (first - truth).norm(dim=1).min()


def test_episode_codes_and_fitted_play_with_history():
    z = torch.arange(12.0).reshape(1, 6, 2)
    assert episode_codes(z, 2).tolist() == [[7.0, 8.0]]  # the mean of z_2 .. z_5
    torch.manual_seed(0)
    task = MetaDT(episode_length=6, backbone=TINY, z_dim=4, world_hidden=8, context_len=2, decision_z="episode")
    goals = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    fit, cap = ZFit(task.world_model, torch.randn(3, 4), iters=2), torch.full((6,), -1.0)
    env = PointRobot(goals, np.random.default_rng(0))
    first = play_meta_dt(task.policy, task.world_model, env, -5.0, cap, z_fit=fit, hold_z=True)
    env = PointRobot(goals, np.random.default_rng(0))  # the same starts: only z_0 differs, fitted to the history
    again = play_meta_dt(task.policy, task.world_model, env, -5.0, cap, z_fit=fit, history=first, hold_z=True)
    assert torch.equal(again.observations[:, 0], first.observations[:, 0])
    assert again.actions.shape == (2, 6, 2) and not torch.allclose(again.actions[:, 0], first.actions[:, 0])
    with pytest.raises(ValueError, match="z_inference must be one of"):
        MetaDT(episode_length=6, z_inference="guess")
    with pytest.raises(ValueError, match="decision_z 'task' needs world_steps > 0"):
        MetaDT(episode_length=6, decision_z="task")  # the codes would be recomputed over all the data every step


def test_task_codes_are_what_the_decision_model_trains_on_and_what_the_fit_chooses_among(monkeypatch):
    torch.manual_seed(0)
    task = MetaDT(
        episode_length=6,
        backbone=TINY,
        z_dim=4,
        world_hidden=8,
        context_len=2,
        decision_z="task",
        z_inference="fit",
        world_steps=1,
    )
    data = MetaDTData(n_tasks=5, n_test_tasks=1, episodes_per_task=3, episode_length=6, batch_size=6)
    monkeypatch.setattr(MetaDT, "offline_data", lambda self: data)
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    offline = data.offline
    for observations, t in zip(batch[0], batch[8], strict=True):  # each item carries its episode's task index
        episode = np.flatnonzero((offline.observations == observations.numpy()).all(axis=(1, 2)))
        assert offline.tasks[episode].tolist() == [int(t)]
    table = task.task_code_table()
    assert table.shape == (5, 4) and torch.all(table[offline.test_tasks] == 0)
    t = int(offline.train_tasks[1])
    parts = (offline.observations, offline.actions, offline.rewards, offline.next_observations)
    steps = Steps(*(torch.as_tensor(x[offline.tasks == t]) for x in parts))
    with torch.no_grad():
        expected = episode_codes(task.world_model.embed(steps), 2).mean(0)
    assert torch.allclose(table[t], expected, atol=1e-6)
    seen = {}
    monkeypatch.setattr(task.policy, "forward", lambda rtg, s, z, a, p=None, t=None: seen.setdefault("z", z) is z and a)
    task.shared_step(batch, "val")
    assert torch.equal(seen["z"], table[batch[8]][:, None].expand(-1, 6, -1))  # every step reads its task's code
    assert torch.equal(task.z_fit(offline).codes, table[torch.as_tensor(offline.train_tasks)])
