"""`PPO` (`rl.ppo`): proximal policy optimisation with GAE for an actor-critic with memory (`ssmkit_rl.agents`).

One training batch is one PPO update (manual optimisation):
1. `collect`: `n_steps` steps of `n_envs` environments on the agent's recurrent `step` path (sampled actions);
2. GAE over the rollout (`ssmkit_rl.ppo.gae`);
3. `update_epochs` passes over the rollout in `n_minibatches` minibatches of whole environment rows; each
   minibatch is read in ONE call of `agent.sequence` (for S5 / LRU one parallel scan per layer, the episode
   boundaries as resets), then one AdamW step on the clipped PPO loss (gradient norm clipped to `max_grad_norm`).
So the trainer's `global_step` counts optimiser steps (`update_epochs * n_minibatches` per update); set the
budget with `trainer.max_epochs` x `data.updates_per_epoch` updates of `n_envs * n_steps` environment steps.

Logged per update: `train/episode_return` and `train/episode_length` (means of the episodes that ended in the
rollout), `train/env_steps`, the loss and its parts, `train/approx_kl`, `train/clip_fraction`,
`train/update_seconds`. After each epoch, validation plays `data.eval_episodes` episodes with the greedy action
(argmax / mean; `deterministic_eval: false` samples) on its own seeded environments: `val/episode_return`
(picks the best checkpoint), `val/episode_length`, `val/value_loss` (the critic against the discounted
return-to-go). At the end of fit: `learning_curve.csv` and `plots/learning_curve.png` (return vs environment
steps). `test` logs the same under `test/`; `predict` writes `episode_returns.csv` and `episode.gif` (one episode,
where the environment renders rgb_array frames) and prints where.

Resume: the environments cannot be saved, so a resumed run makes them again (seeded by the number of updates
done, so it does not replay the first episodes); the episodes in flight at the checkpoint are dropped. The
counters (environment steps, updates, training seconds) and the learning curve travel in the checkpoint.
"""

from __future__ import annotations

import csv
import time
from typing import Any

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info

from ssmkit.models import BackboneConfig
from ssmkit.train.module import TaskModule
from ssmkit.train.optim import param_groups, warmup_cosine
from ssmkit_rl.agents import S5_MEMORY, ActorCritic, make_memory
from ssmkit_rl.datamodules import EnvData
from ssmkit_rl.envs import can_render, make_env
from ssmkit_rl.plots import plot_learning_curves, write_gif
from ssmkit_rl.ppo import gae, minibatch_rows, normalise, policy_loss, value_loss
from ssmkit_rl.rollout import EnvRunner, Episodes, Rollout, collect, run_episodes
from ssmkit_rl.spaces import ActionSpec, ObservationReader

Tensor = torch.Tensor
CURVE_COLUMNS = ("env_steps", "update", "episode_return", "train_seconds")


class PPO(TaskModule):
    monitor = "val/episode_return"
    monitor_mode = "max"
    data_links = {"env_id": "env_id"}

    def __init__(
        self,
        env_id: str,
        agent: str = "ssm",
        backbone: BackboneConfig = S5_MEMORY,
        hidden: int = 64,
        head_hidden: int = 64,
        n_envs: int = 16,
        n_steps: int = 256,
        update_epochs: int = 4,
        n_minibatches: int = 4,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        clip_coef: float = 0.2,
        value_clip: float | None = 0.2,
        vf_coef: float = 0.5,
        ent_coef: float = 0.01,
        max_grad_norm: float = 0.5,
        deterministic_eval: bool = True,
        max_eval_steps: int = 10_000,
        gif_frames: int = 300,
        lr: float = 3e-4,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        min_lr_ratio: float = 1.0,
        betas: tuple[float, float] = (0.9, 0.999),
    ) -> None:
        """PPO over `n_envs` environments of the data's `env_id`.

        Args:
            env_id: the environment (taken from the data: set it as --data.env_id).
            agent: the memory: "ssm" (the `backbone` stack), "gru", "lstm" or "mlp" (memoryless).
            backbone: the SSM stack (agent "ssm"); its mixer must take episode resets (s5, lru).
            hidden: the width of the GRU / LSTM / MLP memories.
            head_hidden: the width of the actor's and the critic's two tanh layers.
            n_envs: environments acting in parallel (rows of a rollout).
            n_steps: steps per environment in one rollout (the sequence length of the update's scan).
            update_epochs: passes over each rollout.
            n_minibatches: minibatches per pass, each a set of whole environment rows.
            gamma: the discount factor.
            gae_lambda: GAE's lambda.
            clip_coef: PPO's ratio clip epsilon.
            value_clip: the value-loss clip around the rollout's values (None: unclipped).
            vf_coef: the value loss's weight.
            ent_coef: the entropy bonus's weight.
            max_grad_norm: the gradient norm each optimiser step is clipped to.
            deterministic_eval: validation / test / predict act greedily (argmax / mean); false samples.
            max_eval_steps: steps after which an evaluation episode is cut.
            gif_frames: the most frames predict's episode.gif holds.
            lr: AdamW's learning rate (constant unless warmup_steps / min_lr_ratio say otherwise).
            weight_decay: AdamW's weight decay (SSM dynamics parameters get none).
            warmup_steps: linear warm-up, in optimiser steps.
            min_lr_ratio: the cosine schedule's final share of lr (1: constant).
            betas: AdamW's betas.
        """
        super().__init__(lr, weight_decay, warmup_steps, min_lr_ratio, betas)
        self.save_hyperparameters()
        self.automatic_optimization = False
        env = make_env(env_id)
        reader = ObservationReader(env.observation_space, source=env_id)
        spec = ActionSpec(env.action_space, source=env_id)
        env.close()
        d_in = reader.d_features + spec.d_encoded + 1  # observation, previous action, previous reward
        self.agent = ActorCritic(make_memory(agent, d_in, backbone, hidden), spec, head_hidden)
        self.env_steps, self.updates, self.train_seconds = 0, 0, 0.0
        self.curve: list[list[float]] = []  # rows of CURVE_COLUMNS
        self.runner: EnvRunner | None = None

    # ---- environments ------------------------------------------------------------------------------------

    def env_data(self) -> EnvData:
        """The trainer's data module, or one for `env_id` with default settings (a module used alone)."""
        data = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        return data if isinstance(data, EnvData) else EnvData(self.hparams.env_id)

    def train_runner(self) -> EnvRunner:
        """The training environments, made on first use (again after a resume, seeded by the updates done)."""
        if self.runner is None:
            data = self.env_data()
            envs = data.make_envs(self.hparams.n_envs)
            self.runner = EnvRunner(envs, self.agent, data.env_seed("train", restart=self.updates))
        return self.runner

    def on_train_end(self) -> None:
        if self.runner is not None:
            self.runner.close()
            self.runner = None

    # ---- training ----------------------------------------------------------------------------------------

    def training_step(self, batch: Tensor, batch_idx: int) -> None:
        start = time.perf_counter()
        rollout = collect(self.agent, self.train_runner(), self.hparams.n_steps)
        advantages, returns = gae(
            rollout.rewards,
            rollout.values,
            rollout.dones,
            rollout.last_values,
            self.hparams.gamma,
            self.hparams.gae_lambda,
        )
        losses = self.optimise(rollout, advantages, returns)
        seconds = time.perf_counter() - start
        self.env_steps += rollout.rewards.numel()
        self.updates += 1
        self.train_seconds += seconds
        self.log_update(rollout, losses, seconds)

    def optimise(self, rollout: Rollout, advantages: Tensor, returns: Tensor) -> dict[str, float]:
        """`update_epochs` passes of minibatch AdamW steps; the mean of each loss part over them."""
        opt, sched = self.optimizers(), self.lr_schedulers()
        totals: dict[str, float] = {}
        n = 0
        for _ in range(self.hparams.update_epochs):
            for rows in minibatch_rows(rollout.rewards.shape[0], self.hparams.n_minibatches):
                loss, parts = self.ppo_loss(rollout.rows(rows), advantages[rows], returns[rows])
                opt.zero_grad()
                self.manual_backward(loss)
                self.clip_gradients(opt, gradient_clip_val=self.hparams.max_grad_norm, gradient_clip_algorithm="norm")
                opt.step()
                sched.step()
                totals = {k: totals.get(k, 0.0) + v for k, v in parts.items()}
                n += 1
        return {k: v / n for k, v in totals.items()}

    def ppo_loss(self, batch: Rollout, advantages: Tensor, returns: Tensor) -> tuple[Tensor, dict[str, float]]:
        """The PPO loss of a minibatch of whole sequences, read in one `agent.sequence` call."""
        h = self.hparams
        dist, values = self.agent.sequence(batch.inputs, batch.resets)
        pg = policy_loss(dist.log_prob(batch.actions), batch.log_probs, normalise(advantages), h.clip_coef)
        vl = value_loss(values, batch.values, returns, h.value_clip)
        entropy = dist.entropy().mean()
        loss = pg.loss + h.vf_coef * vl - h.ent_coef * entropy
        parts = {
            "loss": loss.item(),
            "policy_loss": pg.loss.item(),
            "value_loss": vl.item(),
            "entropy": entropy.item(),
            "approx_kl": pg.approx_kl.item(),
            "clip_fraction": pg.clip_fraction.item(),
        }
        return loss, parts

    def log_update(self, rollout: Rollout, losses: dict[str, float], seconds: float) -> None:
        log = {f"train/{k}": v for k, v in losses.items()}
        log |= {"train/env_steps": float(self.env_steps), "train/update_seconds": seconds}
        if rollout.episode_returns:
            mean_return = float(np.mean(rollout.episode_returns))
            log |= {
                "train/episode_return": mean_return,
                "train/episode_length": float(np.mean(rollout.episode_lengths)),
            }
            self.curve.append([self.env_steps, self.updates, mean_return, self.train_seconds])
        self.log_dict(log, on_step=True, on_epoch=False, batch_size=1)
        if "train/episode_return" in log:
            self.log("return", log["train/episode_return"], prog_bar=True, logger=False, batch_size=1)

    def batch_tokens(self, batch: Tensor) -> int:
        """Environment steps per update (throughput in environment steps per second)."""
        return self.hparams.n_envs * self.hparams.n_steps

    def configure_optimizers(self) -> dict[str, Any]:
        c = self.optim_config
        opt = torch.optim.AdamW(param_groups(self, c["lr"], c["weight_decay"]), lr=c["lr"], betas=c["betas"], eps=1e-5)
        per_update = self.hparams.update_epochs * self.hparams.n_minibatches
        total = max(1, int(self.trainer.estimated_stepping_batches)) * per_update
        # counting the updates built the training loader; drop it so a resumed run gets its saved position (TaskModule)
        self.trainer.fit_loop._combined_loader = None
        return {
            "optimizer": opt,
            "lr_scheduler": warmup_cosine(opt, min(c["warmup_steps"], total), total, c["min_lr_ratio"]),
        }

    # ---- evaluation --------------------------------------------------------------------------------------

    def evaluate(self, split: str) -> Episodes:
        """`data.eval_episodes` episodes on `split`'s environments."""
        data = self.env_data()
        runner = EnvRunner(data.make_envs(data.eval_episodes), self.agent, data.env_seed(split))
        try:
            return run_episodes(
                self.agent, runner, self.hparams.gamma, self.hparams.deterministic_eval, self.hparams.max_eval_steps
            )
        finally:
            runner.close()

    def log_episodes(self, episodes: Episodes, stage: str) -> None:
        self.log_dict(
            {
                f"{stage}/episode_return": float(np.mean(episodes.returns)),
                f"{stage}/episode_length": float(np.mean(episodes.lengths)),
                f"{stage}/value_loss": episodes.value_loss,
            },
            prog_bar=stage == "val",
            batch_size=1,
        )

    def validation_step(self, batch: Tensor, batch_idx: int) -> None:
        self.log_episodes(self.evaluate("val"), "val")

    def test_step(self, batch: Tensor, batch_idx: int) -> None:
        self.log_episodes(self.evaluate("test"), "test")

    def predict_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        """Evaluate online: episode_returns.csv and, where the environment renders, episode.gif (paths printed)."""
        episodes = self.evaluate("predict")
        rows = [
            {"episode": i, "return": r, "length": n}
            for i, (r, n) in enumerate(zip(episodes.returns, episodes.lengths, strict=True))
        ]
        self.write_rows(rows, "episode_returns.csv")
        rank_zero_info(
            f"{self.env_data().env_id}: mean return {np.mean(episodes.returns):.3f} over {len(rows)} episodes"
        )
        self.write_gif()
        return torch.tensor(episodes.returns)

    def write_gif(self) -> None:
        """One greedy episode on the predict seed as episode.gif, or a line saying the environment draws nothing."""
        data = self.env_data()
        env = data.make_env()
        renders = can_render(env)
        env.close()
        if not renders:
            rank_zero_info(f"{data.env_id} has no rgb_array rendering: no episode.gif written")
            return
        runner = EnvRunner(data.make_envs(1, render_mode="rgb_array"), self.agent, data.env_seed("predict"))
        fps = int(runner.envs.envs[0].metadata.get("render_fps") or 25)
        try:
            episodes = run_episodes(
                self.agent, runner, self.hparams.gamma, True, self.hparams.max_eval_steps, True, self.hparams.gif_frames
            )
        finally:
            runner.close()
        path = self.run_file("episode.gif", required=True)
        if path is not None:
            write_gif(episodes.frames, path, fps)
            rank_zero_info(f"episode GIF ({len(episodes.frames)} frames, return {episodes.returns[0]:.3f}): {path}")

    # ---- reports and checkpoints -------------------------------------------------------------------------

    def write_report(self, stage: str) -> None:
        """At the end of fit: learning_curve.csv and plots/learning_curve.png (return vs environment steps)."""
        if stage != "val" or not self.curve:
            return
        path = self.run_file("learning_curve.csv")
        if path is None:
            return
        with open(path, "w", newline="") as f:
            csv.writer(f).writerows([CURVE_COLUMNS, *self.curve])
        steps, returns = [r[0] for r in self.curve], [r[2] for r in self.curve]
        label = self.agent_label()
        png = plot_learning_curves(
            {label: (steps, returns)}, self.run_file("plots/learning_curve.png"), self.env_data().env_id
        )
        rank_zero_info(f"learning curve: {path} and {png}")

    def agent_label(self) -> str:
        """ "s5 x2 (d_model 64)", "gru 64", ... for legends and tables."""
        h = self.hparams
        if h.agent != "ssm":
            return f"{h.agent} {h.hidden}"
        config = self.agent.memory.backbone.config
        return f"{config.mixer} x{config.n_layers} (d_model {config.d_model})"

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["rl_progress"] = {
            "env_steps": self.env_steps,
            "updates": self.updates,
            "train_seconds": self.train_seconds,
            "curve": [list(map(float, row)) for row in self.curve],
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        progress = checkpoint.get("rl_progress", {})
        self.env_steps = int(progress.get("env_steps", 0))
        self.updates = int(progress.get("updates", 0))
        self.train_seconds = float(progress.get("train_seconds", 0.0))
        self.curve = [list(row) for row in progress.get("curve", [])]
        self.runner = None  # environments are made again on the next training step
