"""Backbones (stacks of mixer blocks), heads, and generation on the recurrent path."""

from ssmkit.models.backbone import DEFAULT_BACKBONE, BackboneConfig, Block, SequenceBackbone
from ssmkit.models.bidirectional import BidirectionalMixer, reverse_valid
from ssmkit.models.generation import beam_search, filter_logits, generate, select_state
from ssmkit.models.heads import ClassificationHead, LMHead, RegressionHead, pool
from ssmkit.models.lm import LanguageModel

__all__ = [
    "BackboneConfig",
    "DEFAULT_BACKBONE",
    "BidirectionalMixer",
    "Block",
    "ClassificationHead",
    "LMHead",
    "LanguageModel",
    "RegressionHead",
    "SequenceBackbone",
    "beam_search",
    "filter_logits",
    "generate",
    "pool",
    "reverse_valid",
    "select_state",
]
