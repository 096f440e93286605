"""AdamW parameter groups following the S4 / Mamba convention, and the warm-up + cosine schedule (once, or restarting
at the start of each phase of a task that trains in phases).

Parameters tagged by a mixer with `_optim` (see `ssmkit.layers.mixer.no_weight_decay`) get their own group
with that weight decay and, if given, `lr_scale * lr`. Otherwise matrices decay and vectors (biases, norm
weights, per-channel scales) do not.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable

import torch
from torch import nn


def param_groups(model: nn.Module, lr: float, weight_decay: float) -> list[dict]:
    groups: dict[tuple, list[nn.Parameter]] = defaultdict(list)
    for p in model.parameters():
        if not p.requires_grad:
            continue
        tag = getattr(p, "_optim", None)
        if tag is not None:
            key = (tag.get("weight_decay", weight_decay), tag.get("lr_scale", 1.0))
        else:
            key = (weight_decay if p.dim() >= 2 else 0.0, 1.0)
        groups[key].append(p)
    return [
        {"params": params, "weight_decay": wd, "lr": lr * scale}
        for (wd, scale), params in sorted(groups.items(), key=lambda kv: kv[0])
    ]


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    warmup_steps: int,
    total_steps: int,
    min_lr_ratio: float = 0.1,
    elapsed: Callable[[], float] | None = None,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up from 0 over `warmup_steps`, then cosine decay to `min_lr_ratio` at `total_steps`.

    Args:
        optimizer: the optimiser whose learning rates are scaled.
        warmup_steps: steps of linear warm-up.
        total_steps: the step at which the decay ends.
        min_lr_ratio: the final share of the learning rate.
        elapsed: the share of a training budget used so far, in [0, 1] (a time budget: see `TaskModule`'s
            `lr_schedule_by`); the decay then follows whichever of it and the steps is further along, so a run that
            stops on its budget still ends at `min_lr_ratio`.
    """

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        if elapsed is not None:
            progress = max(progress, min(1.0, elapsed()))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def restarting_schedule(
    optimizer: torch.optim.Optimizer, phases: list[int], warmup_steps: int, min_lr_ratio: float = 0.1
) -> torch.optim.lr_scheduler.LRScheduler:
    """Warm-up + cosine (`warmup_cosine`) over each phase's steps in turn, restarting at each: a task whose training
    runs in phases (self-pretraining then fine-tuning, a world model then a decision model) gives each its whole
    schedule instead of one phase the low tail of a single cosine."""
    schedules = [warmup_cosine(optimizer, min(warmup_steps, n), n, min_lr_ratio) for n in phases]
    milestones = [sum(phases[: i + 1]) for i in range(len(phases) - 1)]
    return torch.optim.lr_scheduler.SequentialLR(optimizer, schedules, milestones=milestones)
