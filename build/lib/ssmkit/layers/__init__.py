"""Sequence mixers (one file per family), norms and MLPs. Importing this package registers the mixers."""

from ssmkit.layers.attention import Attention
from ssmkit.layers.bimamba import BiMambaV2
from ssmkit.layers.dss import DSS
from ssmkit.layers.gated_output import GatedOutput
from ssmkit.layers.gss import GSS
from ssmkit.layers.h3 import H3
from ssmkit.layers.hydra import Hydra
from ssmkit.layers.hyena import Hyena
from ssmkit.layers.linear_recurrence import DiagonalRecurrence
from ssmkit.layers.liquid_s4 import LiquidS4
from ssmkit.layers.long_conv import LongConv
from ssmkit.layers.longvq import LongVQ
from ssmkit.layers.lru import LRU
from ssmkit.layers.lssl import LSSL
from ssmkit.layers.mamba import Mamba
from ssmkit.layers.mamba2 import Mamba2
from ssmkit.layers.mixer import Mixer, State, no_weight_decay, set_debug
from ssmkit.layers.mlp import GatedMLP
from ssmkit.layers.mom import MoM
from ssmkit.layers.norms import RMSNorm
from ssmkit.layers.orchid import Orchid
from ssmkit.layers.s4 import S4
from ssmkit.layers.s4d import S4D
from ssmkit.layers.s5 import S5
from ssmkit.layers.seqboat import SeqBoat
from ssmkit.layers.sgconv import SGConv

__all__ = [
    "Attention",
    "BiMambaV2",
    "DSS",
    "DiagonalRecurrence",
    "GatedMLP",
    "H3",
    "GatedOutput",
    "GSS",
    "Hydra",
    "Hyena",
    "LongConv",
    "LongVQ",
    "LRU",
    "LiquidS4",
    "LSSL",
    "Mamba",
    "Mamba2",
    "Mixer",
    "MoM",
    "Orchid",
    "RMSNorm",
    "S4",
    "S4D",
    "SGConv",
    "SeqBoat",
    "S5",
    "State",
    "no_weight_decay",
    "set_debug",
]
