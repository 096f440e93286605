"""The `rl` plugin's entry point (imports no torch, gymnasium or lightning)."""

from ssmkit.plugins import Plugin, Task

plugin = Plugin(
    name="rl",
    description="In-context and offline meta-RL: S5-PPO with resettable scans; Meta-DT on an SSM decision backbone",
    requires_ssmkit=">=0.1,<0.2",
    tasks={
        "ppo": Task.in_package(
            "ssmkit_rl",
            "PPO",
            "EnvData",
            "ppo",
            "PPO with GAE on vector environments; S5 / LRU memory over episode resets, MLP / GRU / LSTM baselines",
        ),
        "meta_dt": Task.in_package(
            "ssmkit_rl",
            "MetaDT",
            "MetaDTData",
            "meta_dt",
            "Meta-DT offline meta-RL on Point-Robot goals or CartPole / Pendulum physics, SSM decision model",
        ),
    },
)
