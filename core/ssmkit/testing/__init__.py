"""Contract test classes that mixer and plugin tests subclass (as langchain-tests does).

class TestMamba(MixerContract):
    name = "mamba"
"""

from ssmkit.testing.mixer_contract import MixerContract

__all__ = ["MixerContract"]
