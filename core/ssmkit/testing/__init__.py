"""Contract test classes that mixer and plugin tests subclass (as langchain-tests does).

class TestMamba(MixerContract):
    name = "mamba"

class TestMyTask(PluginContract):       # with a class-scoped fixture `task_id` returning "myplugin.mytask"
    known_failures = {}
"""

from ssmkit.testing.mixer_contract import MixerContract, mixer_inputs, tiny_mixer
from ssmkit.testing.plugin_contract import ContractError, PluginContract, check_plugin, task_ids

__all__ = ["ContractError", "MixerContract", "PluginContract", "check_plugin", "mixer_inputs", "task_ids", "tiny_mixer"]
