"""Sequence-parallel training from the command line: `ssmkit fit PLUGIN.TASK --trainer.strategy sequence_parallel`.

`SequenceParallelStrategy` is Lightning's DDP with three changes:

- every process reads the SAME batches (Lightning's distributed sampler is told there is one replica);
- each process cuts every sequence of a batch to its contiguous chunk (`ssmkit.ops.sequence_parallel.
  shard_sequence`) along the dims the task declares in `TaskModule.sequence_dims` (train, val and test batches;
  `predict` reads whole sequences on every process and rank zero writes the rows);
- the task's steps run inside `sequence_parallel(group)`, where the mixers that declare `sequence_parallel` (S5,
  LRU, Mamba, Mamba-2, ...) carry what each chunk needs from the chunks before it across the processes.

Each process's loss is then the mean over its chunk, and DDP averages the gradients: with chunks of equal size (and
every position counted in the loss) that is the gradient of the whole sequence's mean loss, so P processes train as
one process reading whole sequences does (tests/core/train/test_sequence_parallel_training.py measures it), each
holding 1/P of the activations. A model with a mixer that cannot split (long convolutions, bidirectional ones, ...) is
refused, naming the mixer, before the first step. The processes talk over gloo on CPUs and nccl on GPUs (Lightning's
default for the device), one group over all processes (no data parallelism across groups yet).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.strategies import DDPStrategy, StrategyRegistry

from ssmkit.layers.mixer import Mixer, cannot_split
from ssmkit.ops.sequence_parallel import sequence_parallel, shard_sequence

Tensor = torch.Tensor
SequenceDims = Sequence[int | None] | Mapping[str, int | None]

NAME = "sequence_parallel"


class SequenceParallelStrategy(DDPStrategy):
    """DDP over the positions of each sequence instead of over the samples of a batch (see the module doc)."""

    strategy_name = NAME

    @property
    def distributed_sampler_kwargs(self) -> dict[str, int]:
        return {"num_replicas": 1, "rank": 0}  # every process reads every sample: the split is along the sequence

    def setup(self, trainer: Trainer) -> None:
        check_splittable(self.lightning_module)  # before DDP wraps the model, so nothing has run yet
        super().setup(trainer)

    def batch_to_device(self, batch: Any, device: torch.device | None = None, dataloader_idx: int = 0) -> Any:
        batch = super().batch_to_device(batch, device, dataloader_idx)
        if self.lightning_module.trainer.predicting:
            return batch
        return split_batch(batch, self.lightning_module.sequence_dims)

    def training_step(self, *args: Any, **kwargs: Any) -> Any:
        with sequence_parallel():
            return super().training_step(*args, **kwargs)

    def validation_step(self, *args: Any, **kwargs: Any) -> Any:
        with sequence_parallel():
            return super().validation_step(*args, **kwargs)

    def test_step(self, *args: Any, **kwargs: Any) -> Any:
        with sequence_parallel():
            return super().test_step(*args, **kwargs)


def check_splittable(module: LightningModule) -> None:
    """Raise ValueError unless `module` declares its batches' sequence dims and every mixer in it passes its state
    between processes (the same refusal as a mixer's forward inside `sequence_parallel`, before any step runs)."""
    if getattr(module, "sequence_dims", None) is None:
        raise ValueError(
            f"{type(module).__name__} does not declare `sequence_dims` (which batch tensors run along the sequence), "
            f"so it cannot train with --trainer.strategy {NAME}"
        )
    refused = sorted(
        {type(m).__name__ for m in module.modules() if isinstance(m, Mixer) and not m.splits_across_ranks()}
    )
    if refused:
        raise ValueError(
            f"{type(module).__name__} cannot train with --trainer.strategy {NAME}: " + cannot_split(", ".join(refused))
        )


def split_batch(batch: Any, dims: SequenceDims) -> Any:
    """This process's part of a batch: each tensor cut to its chunk along its sequence dim in `dims` (a tuple / list
    batch: one entry per tensor, in order; a dict batch: by key; None or absent: kept whole, e.g. a label)."""
    if isinstance(batch, Mapping):
        if not isinstance(dims, Mapping):
            raise ValueError(f"a dict batch needs `sequence_dims` by key, got {dims!r}")
        return {key: _chunk(value, dims.get(key)) for key, value in batch.items()}
    if isinstance(dims, Mapping) or len(dims) != len(batch):
        raise ValueError(f"`sequence_dims` {dims!r} does not match a batch of {len(batch)} entries")
    parts = [_chunk(value, dim) for value, dim in zip(batch, dims, strict=True)]
    return tuple(parts) if isinstance(batch, tuple) else parts


def _chunk(value: Any, dim: int | None) -> Any:
    return value if dim is None else shard_sequence(value, dim=dim)


if NAME not in StrategyRegistry:
    StrategyRegistry.register(
        NAME, SequenceParallelStrategy, description="DDP over chunks of each sequence (ssmkit.train.sequence_parallel)"
    )
