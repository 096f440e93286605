"""The rl tasks: `PPO` (`rl.ppo`) and `MetaDT` (`rl.meta_dt`, documented on the class).

`PPO` (`rl.ppo`): proximal policy optimisation with GAE for an actor-critic with memory (`ssmkit_rl.agents`).

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

Meta-RL (`--data.env_id MetaCartPole-v0`, `ssmkit_rl.meta_rl`): environments that report per-trial returns get
`train/trial_return_first`, `train/trial_return_last` (means over the episodes ended in the rollout) and
`val/trial_return_first`, `val/trial_return_last`, `val/trial_gain` (last - first, greedy) logged; at the end of
fit `trial_returns.csv` (per trial: the training episodes of the last 5 rollouts and the last validation) and
`plots/trial_returns.png`. `restart_envs: true` restarts every environment at each rollout's start, so no episode
loses its memory at a rollout boundary (the memory starts empty at every rollout, see below); the episodes cut at
a rollout's end still train (bootstrapped) but are not counted as returns.

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
from ssmkit.train.optim import param_groups, restarting_schedule, warmup_cosine
from ssmkit_rl.agents import S5_MEMORY, ActorCritic, make_memory
from ssmkit_rl.datamodules import EnvData, MetaDTData
from ssmkit_rl.envs import can_render, make_env
from ssmkit_rl.meta_dt import (
    DECISION_Z,
    Z_INFERENCE,
    DecisionModel,
    Prompt,
    Steps,
    WorldModel,
    ZFit,
    episode_codes,
    few_shot_prompt,
    gather_steps,
    play_meta_dt,
    returns_to_go,
    segment_returns,
    task_codes,
)
from ssmkit_rl.offline import OfflineData, play
from ssmkit_rl.plots import plot_learning_curves, plot_returns_by_task, plot_trial_returns, write_gif
from ssmkit_rl.ppo import gae, minibatch_rows, normalise, policy_loss, value_loss
from ssmkit_rl.rollout import EnvRunner, Episodes, Rollout, collect, run_episodes
from ssmkit_rl.spaces import ActionSpec, ObservationReader

Tensor = torch.Tensor
CURVE_COLUMNS = ("env_steps", "update", "episode_return", "train_seconds")
TRIAL_WINDOW = 5  # rollouts whose ended episodes make the training per-trial returns of trial_returns.csv


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
        restart_envs: bool = False,
        carry_memory: bool = False,
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
            backbone: the SSM stack (agent "ssm"); its mixer must take episode resets (s5, lru, mamba, mamba2).
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
            restart_envs: restart every environment at each rollout's start (no episode spans two rollouts, so none
                loses its memory mid-way; meant for long meta-RL episodes).
            carry_memory: each rollout starts from the memory the previous one left (as popjaxrl's agents do), and
                the update's scan starts from it too (`prefill` with resets), so an episode spanning two rollouts
                keeps its past; false: the memory starts empty at every rollout.
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
        self.trial_curve: list[list[float]] = []  # per update with meta-RL episodes: [env_steps, mean per trial...]
        self.val_trials: list[float] = []  # the last validation's mean return per trial
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
        elif self.hparams.restart_envs:
            self.runner.restart()
        return self.runner

    def on_train_end(self) -> None:
        if self.runner is not None:
            self.runner.close()
            self.runner = None

    # ---- training ----------------------------------------------------------------------------------------

    def training_step(self, batch: Tensor, batch_idx: int) -> None:
        start = time.perf_counter()
        rollout = collect(self.agent, self.train_runner(), self.hparams.n_steps, self.hparams.carry_memory)
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
                loss, parts = self.ppo_loss(rollout.rows(rows, self.agent), advantages[rows], returns[rows])
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
        dist, values = self.agent.sequence(batch.inputs, batch.resets, batch.initial_state)
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
        if rollout.trial_returns:
            trials = np.mean(rollout.trial_returns, axis=0)
            log |= {"train/trial_return_first": float(trials[0]), "train/trial_return_last": float(trials[-1])}
            self.trial_curve.append([self.env_steps, *map(float, trials)])
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
        if episodes.trial_returns:
            trials = np.mean(episodes.trial_returns, axis=0)
            first, last = float(trials[0]), float(trials[-1])
            log = {f"{stage}/trial_return_first": first, f"{stage}/trial_return_last": last}
            self.log_dict(log | {f"{stage}/trial_gain": last - first}, batch_size=1)
            if stage == "val":
                self.val_trials = trials.tolist()

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
        self.write_trial_returns()

    def write_trial_returns(self) -> None:
        """Meta-RL: trial_returns.csv (source, trial, return) and plots/trial_returns.png, return against trial."""
        if not self.trial_curve:
            return
        per_trial = {
            f"train (sampled, last {TRIAL_WINDOW} rollouts)": np.mean(
                [row[1:] for row in self.trial_curve[-TRIAL_WINDOW:]], axis=0
            ).tolist()
        }
        if self.val_trials:
            per_trial["val (greedy, last validation)"] = self.val_trials
        rows = [
            {"source": source, "trial": k + 1, "return": r}
            for source, returns in per_trial.items()
            for k, r in enumerate(returns)
        ]
        path = self.write_rows(rows, "trial_returns.csv")
        png = plot_trial_returns(
            per_trial, self.run_file("plots/trial_returns.png"), f"{self.env_data().env_id}, {self.agent_label()}"
        )
        rank_zero_info(f"returns per trial: {path} and {png}")

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
            "trial_curve": [list(map(float, row)) for row in self.trial_curve],
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        progress = checkpoint.get("rl_progress", {})
        self.env_steps = int(progress.get("env_steps", 0))
        self.updates = int(progress.get("updates", 0))
        self.train_seconds = float(progress.get("train_seconds", 0.0))
        self.curve = [list(row) for row in progress.get("curve", [])]
        self.trial_curve = [list(row) for row in progress.get("trial_curve", [])]
        self.runner = None  # environments are made again on the next training step


# ==== Meta-DT ================================================================================================

META_DT_BACKBONE = BackboneConfig(d_model=64, n_layers=3, mixer="mamba", mixer_kwargs={"d_state": 16})
EVAL_MODES = ("zero_shot", "few_shot", "oracle", "random")


class MetaDT(TaskModule):
    """`rl.meta_dt`: Meta-DT on offline multi-task data (`ssmkit_rl.meta_dt`): Point-Robot goals, or CartPole /
    Pendulum with varied physics (`--data.domain`, `ssmkit_rl.offline`).

    A training batch is B episodes, each with a prompt episode of the same goal and its task index. The loss is
    the world model's (reward + next-state squared error; its gradient alone trains the context encoder) plus the
    decision model's action MSE (actions scaled to [-1, 1]) given z (detached); with `world_steps` > 0 the world
    model trains alone first (the decision model is not run), then is frozen while the decision model trains. With
    probability `prompt_prob` a batch carries prompts: the k-step segment of largest world-model error in each
    prompt episode; the others none, so one model serves both the zero-shot and the few-shot mode. Logged:
    `<stage>/loss`, `<stage>/action_loss` (not in the world phase), `<stage>/world_loss`.

    `test` and `predict` play online on the held-out tasks, `data.eval_episodes` episodes each, and log
    `<stage>/return_<mode>` for zero_shot (no prompt; z from the agent's own transitions: the encoder's last h, or
    the fit, `z_inference`), few_shot (the prompt chosen by the world model from the zero-shot episode of the same
    start; with `few_shot_history` that episode is also read as history), oracle (the task-aware
    controller) and random, plus `<stage>/score_<mode>` = (R - random) / (oracle - random). They write
    `<stage>_returns.csv` (test) / `episode_returns.csv` (predict) with one row per episode and a bar plot of the
    mean per goal; predict also writes `episode.gif` (a few-shot episode) and prints the paths.
    """

    monitor = "val/loss"
    monitor_mode = "min"
    data_links = {
        "episode_length": "episode_length",
        "obs_dim": "obs_dim",
        "action_dim": "action_dim",
        "max_action": "max_action",
    }

    def __init__(
        self,
        episode_length: int,
        obs_dim: int = 2,
        action_dim: int = 2,
        max_action: float = 0.1,
        backbone: BackboneConfig = META_DT_BACKBONE,
        context: bool = True,
        z_dim: int = 16,
        context_len: int = 4,
        world_hidden: int = 64,
        prompt_len: int = 5,
        prompt_prob: float = 0.5,
        return_scale: float = 10.0,
        horizon: int | None = None,
        train_windows: bool = False,
        world_steps: int = 0,
        context_inputs: str = "transition",
        world_targets: str = "step",
        context_encoder: str = "gru",
        action_tokens: bool = True,
        standardise_z: bool = False,
        decision_z: str = "step",
        z_inference: str = "encoder",
        few_shot_history: bool = False,
        z_fit_iters: int = 0,
        z_fit_prior: float = 1e-3,
        target_return: float | None = None,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        warmup_steps: int = 100,
        min_lr_ratio: float = 0.1,
        betas: tuple[float, float] = (0.9, 0.999),
    ) -> None:
        """Meta-DT: a context-aware world model and a return-conditioned decision model on `backbone`.

        Args:
            episode_length: steps per episode (taken from the data).
            obs_dim: the observation's width (taken from the data; Point-Robot 2).
            action_dim: the action's width (taken from the data; Point-Robot 2).
            max_action: the action bound (taken from the data; Point-Robot 0.1).
            backbone: the decision model's causal backbone (mamba, s5, ...; attention is the Transformer baseline).
            context: false gives the plain DT ablation: no world model, no task embedding, no prompt.
            z_dim: the task embedding's width.
            context_len: h, the most recent transitions the context encoder reads.
            world_hidden: the context encoder's and decoders' width.
            prompt_len: k, the prompt's steps.
            prompt_prob: the share of training batches that carry prompts.
            return_scale: returns-to-go are divided by it before embedding.
            horizon: K, the most recent steps the decision model reads to predict a_t (None: the whole episode so
                far).
            train_windows: with a horizon K, each training episode gives one window of K consecutive steps at a
                random start (the original DT's sampling: the window's i-th action reads i + 1 steps), not every
                step's own K-step window (B T windows): T / K times fewer tokens, what makes 100-step episodes
                affordable. Acting reads the last K steps either way.
            world_steps: optimiser steps that train the world model alone; after them it is frozen and the decision
                model trains alone (0: both train together from the start, the world model never frozen).
            context_inputs: what the context encoder reads of each transition: "transition" (s, a, r, s'; the
                anchor's) or "reward" (s', r: no action, so it cannot read the goal off the behaviour's heading).
            world_targets: what each z_t is trained to decode: "step" (its own step t; the anchor's) or "episode"
                (every step of its episode, so z_t must hold the task).
            context_encoder: "gru" (the anchor's) or "set" (a deep set over the h transitions, order-blind).
            action_tokens: false: the decision model's action tokens carry zeros, not the episode's past actions.
            standardise_z: standardise each z dimension before the decision model reads it (running statistics
                when acting).
            decision_z: the z the decision model trains on: "step" (z_t, the encoder's on the h transitions before
                step t; the anchor's) or "episode" (every step gets its episode's code, the mean of z_t over the
                steps with a full window: a clean task code, as a goal-conditioned policy reads its goal) or "task"
                (every episode gets its task's code, the mean of the episode codes of the task's offline episodes:
                the very codes the fit chooses among, `task_code_table`).
            z_inference: how z is inferred when acting online: "encoder" (the context encoder on the last h
                transitions; the anchor's) or "fit" (the z that best explains the transitions seen so far through
                the world model's decoders, `ZFit`: the lowest-error candidate among the encoder's z and the
                training tasks' codes, then `z_fit_iters` Adam steps).
            few_shot_history: in few-shot play, the zero-shot episode's transitions are read as this task's history
                before the episode's own (the encoder's window reaches back into them; the fit uses them all), so z
                is informed from the first step; false: as the anchor, the prompt is the only thing carried over.
            z_fit_iters: Adam steps of the "fit" inference per acting step, from the best candidate (0: the
                candidate itself, which stays on the codes the decision model trained on).
            z_fit_prior: the weight of the "fit" inference's prior |(z - mean) / std|^2 over the training codes.
            target_return: the return the policy is conditioned on when acting (None: the best offline episode's);
                it then drops by each reward, capped at the offline data's largest return-to-go at each step.
            lr: AdamW's peak learning rate.
            weight_decay: AdamW's weight decay.
            warmup_steps: linear warm-up, in optimiser steps.
            min_lr_ratio: the cosine schedule's final share of lr.
            betas: AdamW's betas.
        """
        super().__init__(lr, weight_decay, warmup_steps, min_lr_ratio, betas)
        if z_inference not in Z_INFERENCE or decision_z not in DECISION_Z:
            raise ValueError(
                f"z_inference must be one of {Z_INFERENCE} and decision_z one of {DECISION_Z}, got {z_inference!r} "
                f"and {decision_z!r}"
            )
        if decision_z == "task" and context and world_steps == 0:
            raise ValueError(
                "decision_z 'task' needs world_steps > 0: the task codes are computed over all offline episodes "
                "once the world model is frozen; with world_steps 0 it is never frozen and every step would "
                "recompute them"
            )
        self.save_hyperparameters()
        z = z_dim if context else 0
        self.world_model = (
            WorldModel(
                obs_dim, action_dim, z_dim, world_hidden, context_len, context_inputs, world_targets, context_encoder
            )
            if context
            else None
        )
        self.policy = DecisionModel(
            obs_dim,
            action_dim,
            z,
            episode_length,
            backbone,
            return_scale,
            max_action,
            horizon,
            action_tokens,
            standardise_z,
        )
        self._task_codes: Tensor | None = None

    # ---- training --------------------------------------------------------------------------------------------

    def shared_step(self, batch: tuple[Tensor, ...], stage: str) -> Tensor:
        episodes, prompt_episodes = Steps(*batch[:4]), Steps(*batch[4:8])
        z, world_loss = None, torch.zeros((), device=episodes.rewards.device)
        world_phase = self.world_phase(stage)
        if self.world_model is not None:
            frozen = stage == "train" and self.hparams.world_steps > 0 and not world_phase
            with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
                z = self.world_model.embed(episodes)
                world_loss = self.world_model.loss(episodes, z)
            z = z.detach()
            if self.hparams.decision_z == "episode":
                z = episode_codes(z, self.world_model.context_len)[:, None].expand_as(z)
            elif self.hparams.decision_z == "task" and not world_phase:
                z = self.task_code_table()[batch[8]][:, None].expand_as(z)
        parts = {f"{stage}/world_loss": world_loss}
        loss = world_loss
        if not world_phase:  # in the world phase the decision model is not run
            prompt = self.training_prompt(prompt_episodes) if self.carries_prompt(stage) else None
            actions = episodes.actions / self.hparams.max_action
            rtg, states, timesteps = returns_to_go(episodes.rewards), episodes.observations, None
            if self.hparams.train_windows and self.hparams.horizon and self.hparams.horizon < rtg.shape[1]:
                timesteps = self.random_windows(rtg, self.hparams.horizon)
                rtg, states, actions = (gather_steps(x, timesteps) for x in (rtg, states, actions))
                z = None if z is None else gather_steps(z, timesteps)
            predicted = self.policy(rtg, states, z, actions, prompt, timesteps)
            parts[f"{stage}/action_loss"] = action_loss = torch.nn.functional.mse_loss(predicted, actions)
            loss = loss + action_loss
        n = len(episodes.rewards)
        self.log_dict(parts, on_step=stage == "train", on_epoch=stage != "train", batch_size=n)
        self.log(
            f"{stage}/loss", loss, prog_bar=True, on_step=stage == "train", on_epoch=stage != "train", batch_size=n
        )
        return loss

    @staticmethod
    def random_windows(steps: Tensor, k: int) -> Tensor:
        """steps (B, T) -> (B, k) step indices: one window of k consecutive steps of each episode, its start uniform
        in 0 .. T - k (torch's global RNG)."""
        n, n_steps = steps.shape
        starts = torch.randint(n_steps - k + 1, (n, 1)).to(steps.device)
        return starts + torch.arange(k, device=steps.device)

    def configure_optimizers(self) -> dict[str, Any]:
        """The kit's AdamW with warm-up + cosine; with `world_steps` the schedule runs twice, over the world phase
        and again over the decision phase (one cosine over both would leave the decision model its low tail)."""
        config = super().configure_optimizers()
        world = self.hparams.world_steps
        total = max(1, int(self.trainer.estimated_stepping_batches))
        if self.world_model is None or not 0 < world < total:
            return config
        opt, c = config["optimizer"], self.optim_config
        schedule = restarting_schedule(opt, [world, total - world], c["warmup_steps"], c["min_lr_ratio"])
        return {"optimizer": opt, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def world_phase(self, stage: str) -> bool:
        """A training step of the world model alone (the first `world_steps`; never without context)."""
        return self.world_model is not None and stage == "train" and self.global_step < self.hparams.world_steps

    def carries_prompt(self, stage: str) -> bool:
        """Prompts in this batch: never without context; validation always; training with prompt_prob."""
        if self.world_model is None:
            return False
        return stage != "train" or bool(torch.rand(()) < self.hparams.prompt_prob)

    def training_prompt(self, prompt_episodes: Steps) -> Prompt:
        """The k-step segment of largest world-model error in each prompt episode."""
        self.world_model.eval()  # no-op today (no dropout); the selector reads the model as it acts
        prompt = few_shot_prompt(self.world_model, prompt_episodes, self.hparams.prompt_len)
        self.world_model.train(self.training)
        return prompt

    # ---- online evaluation -----------------------------------------------------------------------------------

    def offline_data(self) -> MetaDTData:
        """The trainer's data module, or one with default settings (a module used alone)."""
        data = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        return data if isinstance(data, MetaDTData) else MetaDTData()

    def evaluate(self, split: str) -> tuple[dict[str, np.ndarray], np.ndarray, Steps]:
        """Online play on the held-out tasks: ({mode: returns (G * n,)}, each episode's task (G * n,), the
        few-shot (zero-shot without context) episodes)."""
        data = self.offline_data()
        offline, d = data.offline, data.domain
        tasks = np.repeat(offline.test_tasks, data.eval_episodes)
        params, length, seed = offline.task_params[tasks], offline.episode_length, data.eval_seed(split)
        rtg_cap = returns_to_go(torch.as_tensor(offline.rewards)).max(0).values  # (T,)
        target = self.hparams.target_return
        target = float(rtg_cap[0]) if target is None else target
        opening, z_fit = self.opening(len(tasks), seed), self.z_fit(offline)
        env = d.env(params, np.random.default_rng(seed))
        hold = self.hparams.decision_z != "step"
        zero = play_meta_dt(
            self.policy, self.world_model, env, target, rtg_cap, opening=opening, z_fit=z_fit, hold_z=hold
        )
        shown, returns = zero, {"zero_shot": segment_returns(zero)}
        if self.world_model is not None:
            prompt = few_shot_prompt(self.world_model, zero, self.hparams.prompt_len)
            env = d.env(params, np.random.default_rng(seed))
            history = zero if self.hparams.few_shot_history else None
            shown = play_meta_dt(
                self.policy, self.world_model, env, target, rtg_cap, prompt, opening, z_fit, history, hold
            )
            returns["few_shot"] = segment_returns(shown)
        oracle_env, random_rng = d.env(params, np.random.default_rng(seed)), np.random.default_rng(seed + 1)
        returns["oracle"] = play(oracle_env, lambda o, t: d.oracle(o, params), length)[2].sum(1)
        random_env = d.env(params, np.random.default_rng(seed))
        returns["random"] = play(random_env, lambda o, t: d.random(len(o), random_rng), length)[2].sum(1)
        return returns, tasks, shown

    def z_fit(self, offline: OfflineData) -> ZFit | None:
        """The "fit" inference of z (`z_inference`) with the training tasks' codes from the offline episodes (None
        with the encoder, or without context)."""
        if self.world_model is None or self.hparams.z_inference == "encoder":
            return None
        codes = self.task_code_table()[torch.as_tensor(offline.train_tasks)]
        return ZFit(self.world_model, codes, self.hparams.z_fit_iters, prior=self.hparams.z_fit_prior)

    def task_code_table(self) -> Tensor:
        """(G, z_dim): each training task's code (`task_codes` over all its offline episodes; zeros for the
        held-out tasks), the z that `decision_z="task"` trains on and the fit chooses among. Kept once the world
        model is frozen (after `world_steps`; `decision_z="task"` refuses world_steps 0), else computed afresh."""
        frozen = 0 < self.hparams.world_steps <= self.global_step
        if frozen and self._task_codes is not None:
            return self._task_codes
        offline = self.offline_data().offline
        device = next(self.world_model.parameters()).device
        parts = (offline.observations, offline.actions, offline.rewards, offline.next_observations)
        steps = Steps(*(torch.as_tensor(x, device=device) for x in parts))
        table = torch.zeros(len(offline.task_params), self.world_model.z_dim, device=device)
        train = torch.as_tensor(offline.train_tasks, device=device)
        table[train] = task_codes(self.world_model, steps, torch.as_tensor(offline.tasks, device=device))
        self._task_codes = table if frozen else None
        return table

    def opening(self, n: int, seed: int) -> Tensor | None:
        """The exploring start of n episodes (`data.explore_steps`): (n, steps, d_act) random actions, seeded (None
        without one)."""
        data = self.offline_data()
        if data.explore_steps == 0:
            return None
        rng = np.random.default_rng(seed + 2)
        return torch.as_tensor(np.stack([data.domain.random(n, rng) for _ in range(data.explore_steps)], axis=1))

    def report_returns(self, stage: str, returns: dict[str, np.ndarray], tasks: np.ndarray, name: str) -> None:
        """Log `<stage>/return_<mode>` and `<stage>/score_<mode>`; write the per-episode CSV and the bar plot."""
        means = {mode: float(np.mean(r)) for mode, r in returns.items()}
        span = means["oracle"] - means["random"]
        scores = {mode: (m - means["random"]) / span for mode, m in means.items() if mode not in ("oracle", "random")}
        log = {f"{stage}/return_{m}": v for m, v in means.items()} | {
            f"{stage}/score_{m}": v for m, v in scores.items()
        }
        if stage != "predict":  # Lightning's predict loop takes no logging
            self.log_dict(log, batch_size=1)
        data = self.offline_data()
        params, names = data.offline.task_params, data.domain.param_names
        counts = np.zeros(len(tasks), dtype=np.int64)
        for i in range(1, len(tasks)):
            counts[i] = counts[i - 1] + 1 if tasks[i] == tasks[i - 1] else 0
        rows = [
            {"task": int(t)}
            | {k: float(v) for k, v in zip(names, params[t], strict=True)}
            | {"mode": mode, "episode": int(e), "return": float(r[i])}
            for mode, r in returns.items()
            for i, (t, e) in enumerate(zip(tasks, counts, strict=True))
        ]
        csv_path = self.write_rows(rows, f"{name}.csv")
        order = list(dict.fromkeys(tasks.tolist()))
        per_task = {mode: [float(np.mean(r[tasks == t])) for t in order] for mode, r in returns.items()}
        png = self.run_file(f"plots/{name}.png", required=stage == "predict")
        if png is not None:
            plot_returns_by_task(per_task, [f"task {t}" for t in order], png, self.label())
        summary = ", ".join(f"{m} {v:.2f}" for m, v in means.items())
        rank_zero_info(
            f"{self.label()} on {len(order)} held-out {data.domain.name} tasks: mean return {summary}; "
            f"returns: {csv_path}, plot: {png}"
        )

    def label(self) -> str:
        """ "Meta-DT mamba x3 (d_model 64)" or "DT ..." for tables and titles."""
        config = self.policy.backbone.config
        name = "Meta-DT" if self.world_model is not None else "DT"
        return f"{name} {config.mixer} x{config.n_layers} (d_model {config.d_model})"

    def test_step(self, batch: Tensor, batch_idx: int) -> None:
        returns, tasks, _ = self.evaluate("test")
        self.report_returns("test", returns, tasks, "test_returns")

    def predict_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        """Online play on the held-out tasks: episode_returns.csv, plots/episode_returns.png and episode.gif."""
        returns, tasks, shown = self.evaluate("predict")
        self.report_returns("predict", returns, tasks, "episode_returns")
        path = self.run_file("episode.gif", required=True)
        if path is not None:
            d = self.offline_data().domain
            observations = torch.cat([shown.observations[0], shown.next_observations[0, -1:]]).cpu().numpy()
            env = d.env(self.offline_data().offline.task_params[tasks[:1]], np.random.default_rng(0), render=True)
            write_gif(d.frames(env, observations), path, fps=d.fps)
            rank_zero_info(f"episode GIF (task {tasks[0]}, return {returns[next(iter(returns))][0]:.2f}): {path}")
        return torch.as_tensor(returns["few_shot" if "few_shot" in returns else "zero_shot"])
