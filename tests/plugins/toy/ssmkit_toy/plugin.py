"""The toy plugin's entry point: imports nothing heavy (no torch), only names its task's classes."""

from ssmkit.plugins import Plugin, Task

plugin = Plugin(
    name="toy",
    description="The smallest ssmkit plugin: is a bit sequence mostly ones?",
    requires_ssmkit=">=0.1,<0.2",
    tasks={"majority": Task.in_package("ssmkit_toy", "MajorityClassifier", "BitsData", "majority", "majority vote")},
)
