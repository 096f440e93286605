"""The `rl` plugin's entry point (imports no torch, gymnasium or lightning)."""

from ssmkit.plugins import Plugin, Task

plugin = Plugin(
    name="rl",
    description="In-context reinforcement learning: S5-PPO with resettable scans on gymnasium and popgym",
    requires_ssmkit=">=0.1,<0.2",
    tasks={
        "ppo": Task.in_package(
            "ssmkit_rl",
            "PPO",
            "EnvData",
            "ppo",
            "PPO with GAE on vector environments; S5 / LRU memory over episode resets, MLP / GRU / LSTM baselines",
        ),
    },
)
