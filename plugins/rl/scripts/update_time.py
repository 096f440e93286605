"""Wall time of one PPO gradient step over 1,024-step sequences: S5 (one parallel scan) beside GRU / LSTM (read step
by step, the hidden state zeroed at dones), and LRU / MLP for reference.

    python plugins/rl/scripts/update_time.py [--length 1024] [--envs 8] [--repeats 3] [--threads 1]

Each agent is the one `configs/ppo.yaml` builds for RepeatPreviousEasy (input 4 + 4 + 1, width 32, two S5 layers
of 32 states); the minibatch is `--envs` random rollouts of `--length` steps with an episode end every 51 steps.
A step is `PPO.ppo_loss` (forward, PPO loss) + backward + AdamW; the median of `--repeats` after one warm-up.
Prints a markdown table; `--json PATH` writes the numbers too.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from gymnasium import spaces

from ssmkit.models import BackboneConfig
from ssmkit.train.plots import markdown_table
from ssmkit_rl.agents import ActorCritic, make_memory
from ssmkit_rl.ppo import gae, normalise, policy_loss, value_loss
from ssmkit_rl.rollout import Rollout
from ssmkit_rl.spaces import ActionSpec

D_IN, N_ACTIONS, EPISODE = 4 + 4 + 1, 4, 51
AGENTS = {
    "s5": ("ssm", BackboneConfig(d_model=32, n_layers=2, mixer="s5", mixer_kwargs={"d_state": 32})),
    "lru": ("ssm", BackboneConfig(d_model=32, n_layers=2, mixer="lru", mixer_kwargs={"d_state": 32})),
    "gru": ("gru", None),
    "lstm": ("lstm", None),
    "mlp": ("mlp", None),
}


def rollout(n_envs: int, length: int) -> Rollout:
    """Random inputs and rewards, episodes of EPISODE steps, offset per environment. Shapes (B, L)."""
    resets = (torch.arange(length)[None, :] + torch.arange(n_envs)[:, None] * 7) % EPISODE == 0
    resets[:, 0] = True
    dones = torch.cat([resets[:, 1:], torch.zeros(n_envs, 1, dtype=torch.bool)], dim=1)
    return Rollout(
        inputs=torch.randn(n_envs, length, D_IN),
        resets=resets,
        actions=torch.randint(0, N_ACTIONS, (n_envs, length)),
        log_probs=torch.full((n_envs, length), -(N_ACTIONS**0.5)),
        values=torch.zeros(n_envs, length),
        rewards=torch.randn(n_envs, length) * 0.02,
        dones=dones,
        last_values=torch.zeros(n_envs),
    )


def step_seconds(name: str, batch: Rollout, repeats: int) -> float:
    """Median seconds of one gradient step of `name`'s agent on `batch`."""
    agent_kind, backbone = AGENTS[name]
    agent = ActorCritic(make_memory(agent_kind, D_IN, backbone, 32), ActionSpec(spaces.Discrete(N_ACTIONS)), 64)
    opt = torch.optim.AdamW(agent.parameters(), lr=1e-3)
    advantages, returns = gae(batch.rewards, batch.values, batch.dones, batch.last_values, 0.99, 0.95)
    times = []
    for _ in range(repeats + 1):  # the first is a warm-up (numba compilation, allocator)
        start = time.perf_counter()
        dist, values = agent.sequence(batch.inputs, batch.resets)
        pg = policy_loss(dist.log_prob(batch.actions), batch.log_probs, normalise(advantages), 0.2)
        loss = pg.loss + 0.5 * value_loss(values, batch.values, returns, 0.2) - 0.01 * dist.entropy().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--length", type=int, default=1024)
    parser.add_argument("--envs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--agents", nargs="+", default=list(AGENTS), choices=list(AGENTS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    batch = rollout(args.envs, args.length)
    seconds = {name: step_seconds(name, batch, args.repeats) for name in args.agents}
    base = seconds.get("s5")
    rows = [[name, f"{s * 1000:.0f}", f"{s / base:.1f}x" if base else ""] for name, s in seconds.items()]
    print(f"one PPO gradient step over {args.envs} x {args.length} steps, {torch.get_num_threads()} thread(s)")
    print(markdown_table(["agent", "ms per step", "vs s5"], rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"length": args.length, "envs": args.envs, "seconds": seconds}, f, indent=1)


if __name__ == "__main__":
    main()
