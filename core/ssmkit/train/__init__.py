"""Shared Lightning glue: the base task module, optimiser groups, callbacks, checkpoint I/O, the CLI, and the
sequence-parallel strategy (importing this package registers `--trainer.strategy sequence_parallel`)."""

from ssmkit.train.module import TaskModule
from ssmkit.train.sequence_parallel import SequenceParallelStrategy

__all__ = ["SequenceParallelStrategy", "TaskModule"]
