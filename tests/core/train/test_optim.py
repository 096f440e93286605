import math
from types import SimpleNamespace

import pytest
import torch

from ssmkit.models import LanguageModel
from ssmkit.train.module import TaskModule
from ssmkit.train.optim import param_groups, restarting_schedule, warmup_cosine


def test_ssm_parameters_get_no_weight_decay_and_their_own_lr():
    lm = LanguageModel(7, 16, 1, mixer="mamba", mixer_kwargs={"d_state": 4})
    mixer = lm.backbone.layers[0].mixer
    mixer.A_log._optim = {"weight_decay": 0.0, "lr_scale": 0.5}
    groups = param_groups(lm, lr=1e-3, weight_decay=0.1)
    where = {id(p): g for g in groups for p in g["params"]}
    assert where[id(mixer.A_log)]["weight_decay"] == 0.0 and where[id(mixer.A_log)]["lr"] == 5e-4
    assert where[id(mixer.D)]["weight_decay"] == 0.0 and where[id(mixer.D)]["lr"] == 1e-3
    assert where[id(mixer.in_proj.weight)]["weight_decay"] == 0.1
    assert where[id(lm.backbone.norm_f.weight)]["weight_decay"] == 0.0
    assert sum(len(g["params"]) for g in groups) == len(list(lm.parameters()))


def test_warmup_then_cosine():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = warmup_cosine(opt, warmup_steps=10, total_steps=110, min_lr_ratio=0.1)
    lrs = []
    for _ in range(110):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == 0.1 and math.isclose(lrs[9], 1.0)
    assert math.isclose(lrs[60], 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))


def test_the_decay_follows_a_budget_when_it_is_further_along_than_the_steps():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    used = [0.0]
    sched = warmup_cosine(opt, warmup_steps=2, total_steps=1002, min_lr_ratio=0.1, elapsed=lambda: used[0])
    cosine = lambda progress: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))  # noqa: E731
    for share in (0.0, 0.0, 0.25, 0.5, 1.0, 2.0):  # the first two steps warm up, whatever the budget says
        used[0] = share
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)  # the budget ran out (and past it): fully decayed
    used[0] = 0.5
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(cosine(0.5))  # 7 of 1,000 steps, half the budget


def test_a_time_schedule_decays_over_max_time(monkeypatch):
    """`lr_schedule_by="time"` reads Lightning's Timer (the callback `--trainer.max_time` adds): half the time used is
    half the cosine, though few steps have run; without a max_time it is refused by name."""
    from lightning.pytorch.callbacks import Timer

    timer = Timer(duration={"seconds": 100})
    clock = {"train": 0.0}
    monkeypatch.setattr(timer, "time_elapsed", lambda stage="train": clock[stage])
    task = TaskModule(lr=1.0, warmup_steps=1, min_lr_ratio=0.0, lr_schedule_by="time")
    task._trainer = SimpleNamespace(
        estimated_stepping_batches=10**6, fit_loop=SimpleNamespace(_combined_loader=[]), callbacks=[timer]
    )
    task.layer = torch.nn.Linear(2, 2)
    opt, sched = task.optimizer_for(task)
    clock["train"] = 50.0
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5, abs=1e-4)
    task._trainer.callbacks = []
    with pytest.raises(ValueError, match="max_time"):
        task.optimizer_for(task)
    with pytest.raises(ValueError, match="lr_schedule_by"):
        TaskModule(lr_schedule_by="epochs")


def test_a_task_builds_one_optimiser_per_network():
    """`TaskModule.optimizer_for`: AdamW over one network's parameters (a GAN's generator, its discriminator) with the
    warm-up + cosine schedule over the fit's steps; `configure_optimizers` is the same over the whole task."""

    class TwoNetworks(TaskModule):
        def __init__(self) -> None:
            super().__init__(lr=1e-3, warmup_steps=4)
            self.generator, self.critic = torch.nn.Linear(3, 3), torch.nn.Linear(3, 1)

    task = TwoNetworks()
    task._trainer = SimpleNamespace(estimated_stepping_batches=10, fit_loop=SimpleNamespace(_combined_loader=[]))
    opt_g, sched_g = task.optimizer_for(task.generator)
    opt_c, _ = task.optimizer_for(task.critic, lr=5e-3)
    ids = lambda opt: {id(p) for g in opt.param_groups for p in g["params"]}  # noqa: E731
    assert ids(opt_g) == {id(p) for p in task.generator.parameters()}
    assert ids(opt_c) == {id(p) for p in task.critic.parameters()}
    assert opt_g.param_groups[0]["lr"] == 1e-3 / 4 and opt_c.param_groups[0]["lr"] == 5e-3 / 4  # warm-up step 1 of 4
    for _ in range(9):
        opt_g.step()
        sched_g.step()
    assert math.isclose(opt_g.param_groups[0]["lr"], 1e-3 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 5 / 6))))
    whole = task.configure_optimizers()
    assert ids(whole["optimizer"]) == {id(p) for p in task.parameters()}
    assert whole["lr_scheduler"]["interval"] == "step" and task.trainer.fit_loop._combined_loader is None


def test_restarting_schedule_gives_each_phase_its_warm_up_and_cosine():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = restarting_schedule(opt, [4, 6], warmup_steps=2, min_lr_ratio=0.1)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:4] == pytest.approx([0.5, 1.0, 1.0, 0.55])  # warm-up, then cosine over the first phase
    assert lrs[4:6] == pytest.approx([0.5, 1.0]) and lrs[-1] == pytest.approx(
        0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 3 / 4))
    )
