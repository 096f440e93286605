"""ssmkit-rl: in-context reinforcement learning with S5 (PPO over resettable scans) on gymnasium and popgym."""
