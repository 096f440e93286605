"""Shared Lightning glue: the base task module, optimiser groups, callbacks, checkpoint I/O, the CLI."""

from ssmkit.train.module import TaskModule

__all__ = ["TaskModule"]
