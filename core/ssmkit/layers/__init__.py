"""Sequence mixers (one file per family), norms and MLPs. Importing this package registers the mixers."""

from ssmkit.layers.attention import Attention
from ssmkit.layers.h3 import H3
from ssmkit.layers.hydra import Hydra
from ssmkit.layers.hyena import Hyena
from ssmkit.layers.long_conv import LongConv
from ssmkit.layers.longvq import LongVQ
from ssmkit.layers.mamba import Mamba
from ssmkit.layers.mamba2 import Mamba2
from ssmkit.layers.mixer import Mixer, State, no_weight_decay, set_debug
from ssmkit.layers.mlp import GatedMLP
from ssmkit.layers.mom import MoM
from ssmkit.layers.norms import RMSNorm
from ssmkit.layers.orchid import Orchid
from ssmkit.layers.s4d import S4D
from ssmkit.layers.seqboat import SeqBoat
from ssmkit.layers.sgconv import SGConv

__all__ = [
    "Attention",
    "GatedMLP",
    "H3",
    "Hydra",
    "Hyena",
    "LongConv",
    "LongVQ",
    "Mamba",
    "Mamba2",
    "Mixer",
    "MoM",
    "Orchid",
    "RMSNorm",
    "S4D",
    "SGConv",
    "SeqBoat",
    "State",
    "no_weight_decay",
    "set_debug",
]
