"""Contract test classes that mixer and plugin tests subclass (as langchain-tests does).

class TestEveryMixer(MixerContract):     # every registered mixer; `name = "mamba"` (+ `kwargs`) for one variant
    pass

class TestEveryBackend(BackendContract): # every backend of every op in the dispatch table, against the reference
    pass

class TestMyTask(PluginContract):       # with a class-scoped fixture `task_id` returning "myplugin.mytask"
    known_failures = {}
"""

from ssmkit.testing.backend_contract import BackendContract
from ssmkit.testing.mixer_contract import MixerContract, mixer_inputs, step_through, tiny_mixer
from ssmkit.testing.plugin_contract import ContractError, PluginContract, check_plugin, task_ids

__all__ = [
    "BackendContract",
    "ContractError",
    "MixerContract",
    "PluginContract",
    "check_plugin",
    "mixer_inputs",
    "step_through",
    "task_ids",
    "tiny_mixer",
]
