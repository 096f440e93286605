"""Shared data utilities: the base data module, the one bad-data error, splits, windowing, padding with lengths,
and the synthetic tasks' generators (`ssmkit.data.synthetic`)."""

from ssmkit.data.checks import check_finite, check_labels
from ssmkit.data.collate import PadCollate, pad_sequences
from ssmkit.data.datamodule import BaseDataModule
from ssmkit.data.errors import DataError
from ssmkit.data.splits import group_split, stratified_split, time_split
from ssmkit.data.windows import window_starts

__all__ = [
    "BaseDataModule",
    "DataError",
    "PadCollate",
    "check_finite",
    "check_labels",
    "group_split",
    "pad_sequences",
    "stratified_split",
    "time_split",
    "window_starts",
]
