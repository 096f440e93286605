"""The motion tasks.

`MotionClassifier` (`motion.classify`): windows (B, L, n_features) -> action logits. `encoder: ssm` (default): the
core's `SequenceBackbone` (`model.backbone`: mixer, width, depth; bidirectional in the shipped configs);
`encoder: gru`: the baseline, a bidirectional GRU of the backbone's d_model and n_layers. Mean pooling, linear head;
the kit's loss, metrics, confusion report and predictions.csv. Its pooled features (`features`) are the fixed
evaluator of the generation metrics.

`MotionGenerator` (`motion.generate`): MLD-style two-stage training in one run, switched by the step count:
steps < `vae_steps` train the motion VAE (feature MSE + `kl_weight` x KL); later steps train the denoiser on the
frozen VAE's posterior means, scaled to unit standard deviation (the scale is measured on the first denoiser batch
and kept as a buffer), with classifier-free guidance (`cond_drop`). `denoiser: mamba` is Motion Mamba's HTM/BSM
U-Net (`ssmkit_motion.motion_mamba`); `denoiser: transformer` is the MLD-style baseline, its width chosen to match
the Mamba denoiser's parameter count (logged). Validation logs `val/recon`, `val/diffusion` and their sum
`val/loss`. Sampling: DDIM (`sampling_steps`) with guidance `guidance`, then the VAE decoder.

`write_report` (after fit and test) generates `report_per_class` motions per label, times them (AITS: seconds per
sample), writes `report_gifs` GIFs + BVH files and `plots/<stage>_samples.png`, and, given `evaluator` (a
`motion.classify` checkpoint trained on the same data settings), the metrics of `ssmkit_motion.metrics`:
FID(generated, real), FID(real train, real), R-precision top-1, diversity, multimodality; written to
`<stage>_generation.csv` and logged. Without an evaluator it says so and writes the timing only.
`predict` generates one motion per window of the predict split (its label: `--data.labels walk,jump
--data.n_samples 4`) and writes `generated/<i>_<label>.bvh` and `.gif`, printing the folder.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_info

from ssmkit.models import DEFAULT_BACKBONE, BackboneConfig, ClassificationHead
from ssmkit.train.checkpoint import load_checkpoint
from ssmkit.train.classification import ClassificationTask
from ssmkit.train.module import TaskModule
from ssmkit_motion import metrics
from ssmkit_motion.animation import plot_strips, write_gif
from ssmkit_motion.bvh import write_bvh
from ssmkit_motion.datamodules import MotionData
from ssmkit_motion.diffusion import LatentDiffusion
from ssmkit_motion.models import GRUEncoder, MotionVAE, kl_divergence, n_parameters
from ssmkit_motion.motion_mamba import MotionMambaDenoiser
from ssmkit_motion.transformer_denoiser import TransformerDenoiser, matched_width

Tensor = torch.Tensor
ENCODERS = ("ssm", "gru")
DENOISERS = ("mamba", "transformer")
# The VAE's encoder and decoder backbones by default (the shipped generate config sets the same).
VAE_BACKBONE = BackboneConfig(d_model=64, n_layers=2, mixer="mamba", mixer_kwargs={"d_state": 8}, bidirectional=True)


class MotionClassifier(ClassificationTask):
    data_links = {"n_classes": "n_classes", "n_features": "n_features"}

    def __init__(
        self,
        n_classes: int,
        n_features: int,
        encoder: str = "ssm",
        backbone: BackboneConfig = DEFAULT_BACKBONE,
        head_dropout: float = 0.0,
        **kwargs: Any,
    ) -> None:
        """An action classifier of motion windows: an encoder, mean pooling over time and a linear head.

        Args:
            n_classes: number of action labels (the command line takes it from the data).
            n_features: features per frame of the motion representation (the command line takes it from the data).
            encoder: "ssm" (the sequence backbone) or "gru" (a bidirectional GRU, the backbone's d_model and n_layers).
            backbone: the SSM encoder's settings (with encoder "gru" only its d_model and n_layers are used).
            head_dropout: dropout on the pooled features before the linear head.
        """
        super().__init__(n_classes=n_classes, **kwargs)
        self.save_hyperparameters()
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {encoder!r}")
        config = BackboneConfig.of(backbone)
        if encoder == "ssm":
            self.encoder: torch.nn.Module = self.make_backbone(config, d_input=n_features)
        else:
            self.encoder = GRUEncoder(n_features, config.d_model, config.n_layers)
        self.head = ClassificationHead(config.d_model, n_classes, "mean", head_dropout)

    def features(self, x: Tensor) -> Tensor:
        """x: (B, L, n_features) -> pooled features (B, d_model) (the evaluator's embedding)."""
        return self.encoder(x).mean(1)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, L, n_features) -> logits (B, n_classes)."""
        return self.head(self.encoder(x))


def load_evaluator(path: str | Path, n_classes: int, n_features: int) -> MotionClassifier:
    """A `motion.classify` checkpoint as a frozen evaluator (eval mode); its data must match this run's."""
    ckpt = load_checkpoint(path)
    hparams = dict(ckpt["hyper_parameters"])
    if (hparams.get("n_classes"), hparams.get("n_features")) != (n_classes, n_features):
        raise ValueError(
            f"evaluator {path} was trained on {hparams.get('n_classes')} classes x {hparams.get('n_features')} "
            f"features, this run has {n_classes} x {n_features}: train it with the same data settings"
        )
    model = MotionClassifier(**{k: v for k, v in hparams.items() if not k.startswith("_")})
    model.load_state_dict(ckpt["state_dict"])
    return model.eval().requires_grad_(False)


def frame_mask(ranges: str, window: int) -> Tensor:
    """ "0:10,30:40" -> (window,) bool, true on frames 0-9 and 30-39; ranges must be non-empty and inside the window,
    and leave at least one frame to generate."""
    mask = torch.zeros(window, dtype=torch.bool)
    for part in ranges.split(","):
        try:
            start, stop = (int(v) for v in part.split(":"))
        except ValueError:
            raise ValueError(f"keep_frames: {part!r} is not a frame range start:stop") from None
        if not 0 <= start < stop <= window:
            raise ValueError(f"keep_frames: {part!r} is not a non-empty range inside the window of {window} frames")
        mask[start:stop] = True
    if mask.all():
        raise ValueError(f"keep_frames {ranges!r} keeps every frame of the window: nothing to generate")
    return mask


class MotionGenerator(TaskModule):
    data_links = {"n_classes": "n_classes", "n_features": "n_features", "window": "window"}

    def __init__(
        self,
        n_classes: int,
        n_features: int,
        window: int,
        denoiser: str = "mamba",
        vae: BackboneConfig = VAE_BACKBONE,
        d_latent: int = 8,
        downsample: int = 4,
        kl_weight: float = 1e-4,
        d_model: int = 64,
        n_levels: int = 3,
        d_spatial: int = 8,
        mamba_kwargs: dict[str, Any] | None = None,
        grouped_scans: bool = True,
        transformer_layers: int = 5,
        transformer_heads: int = 4,
        vae_steps: int = 1000,
        cond_drop: float = 0.1,
        sampling_steps: int = 50,
        guidance: float = 2.5,
        evaluator: str | None = None,
        report_per_class: int = 32,
        report_gifs: int = 2,
        keep_frames: str | None = None,
        **kwargs: Any,
    ) -> None:
        """A motion VAE and a label-conditioned latent denoiser, trained one after the other in one run.

        Args:
            n_classes: number of action labels (the command line takes it from the data).
            n_features: features per frame of the motion representation (the command line takes it from the data).
            window: frames per window, a multiple of downsample (the command line takes it from the data).
            denoiser: "mamba" (the Motion Mamba HTM / BSM U-Net) or "transformer" (the MLD-style baseline).
            vae: settings of the VAE's encoder and decoder backbones (one each, same settings).
            d_latent: channels per latent token.
            downsample: frames per latent token (the latent has window / downsample tokens).
            kl_weight: weight of the KL term beside the reconstruction MSE in the VAE loss.
            d_model: width of the Motion Mamba denoiser (its parameter count also sets the Transformer's width).
            n_levels: U-Net levels N of Motion Mamba: 2N-1, ..., 3 scans down, 1 at the bottleneck, 3, ..., 2N-1 up.
            d_spatial: width of each channel step of BSM's spatial scans.
            mamba_kwargs: settings of every mamba mixer in the Motion Mamba denoiser (e.g. d_state).
            grouped_scans: run each HTM's and BSM's scans as one call (True) or one call per scan (False); the same
                outputs, only the speed differs (README).
            transformer_layers: layers of the Transformer baseline (odd: in, middle, out).
            transformer_heads: attention heads of the Transformer baseline (its width is a multiple of them).
            vae_steps: training steps of the first stage (the VAE); the later steps train the denoiser.
            cond_drop: probability of replacing the label by "no label" in denoiser training (classifier-free guidance).
            sampling_steps: DDIM steps per generated sample.
            guidance: classifier-free guidance scale in sampling.
            evaluator: a motion.classify checkpoint trained with the same data settings, for the generation metrics
                (None: the report times generation only).
            report_per_class: motions generated per label for the report after fit and test (0: no report).
            report_gifs: how many report motions (the first of each label) are written as GIF and BVH files.
            keep_frames: in-betweening in predict: frame ranges of each served window that are given and kept, e.g.
                "0:10" (continue a motion from its first 10 frames) or "0:8,32:40" (fill frames 8-31); None: generate
                whole windows from the label.
        """
        super().__init__(**kwargs)
        self.save_hyperparameters()
        if denoiser not in DENOISERS:
            raise ValueError(f"denoiser must be one of {DENOISERS}, got {denoiser!r}")
        self.n_classes, self.vae_steps, self.cond_drop = n_classes, vae_steps, cond_drop
        self.keep = None if keep_frames is None else frame_mask(keep_frames, window)
        self.vae = MotionVAE(n_features, window, vae, d_latent, downsample)
        mamba = MotionMambaDenoiser(d_latent, n_classes, d_model, n_levels, d_spatial, mamba_kwargs)
        mamba.group_scans(grouped_scans)
        if denoiser == "mamba":
            self.denoiser: torch.nn.Module = mamba
        else:
            tokens = self.vae.n_tokens

            def build(width: int) -> TransformerDenoiser:
                return TransformerDenoiser(d_latent, n_classes, tokens, width, transformer_layers, transformer_heads)

            self.denoiser = build(matched_width(build, n_parameters(mamba), transformer_heads))
        self.diffusion = LatentDiffusion()
        self.register_buffer("latent_scale", torch.zeros(()))
        rank_zero_info(
            f"motion.generate: VAE {n_parameters(self.vae):,} parameters, {denoiser} denoiser "
            f"{n_parameters(self.denoiser):,} (Motion Mamba at these settings: {n_parameters(mamba):,})"
        )

    # ---- training ---------------------------------------------------------------------------------------------

    def latents(self, x: Tensor) -> Tensor:
        """Scaled posterior means of the frozen VAE: (B, L, n_features) -> (B, N, d_latent)."""
        with torch.no_grad():
            mean, _ = self.vae.encode(x)
        scale = self.latent_scale if self.latent_scale > 0 else 1 / mean.std().clamp_min(1e-6)
        return mean * scale

    def vae_loss(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(reconstruction MSE, KL) of a batch."""
        reconstruction, mean, log_var = self.vae(x)
        return (reconstruction - x).pow(2).mean(), kl_divergence(mean, log_var)

    def diffusion_loss(self, x: Tensor, labels: Tensor) -> Tensor:
        return self.diffusion.loss(self.denoiser, self.latents(x), labels, self.n_classes, self.cond_drop)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, labels = batch
        if self.global_step < self.vae_steps:
            recon, kl = self.vae_loss(x)
            self.log("train/recon", recon, prog_bar=True)
            loss = recon + self.hparams.kl_weight * kl
        else:
            if self.latent_scale == 0:
                with torch.no_grad():
                    self.latent_scale.fill_(1 / self.vae.encode(x)[0].std().clamp_min(1e-6))
            self.vae.eval()
            loss = self.diffusion_loss(x, labels)
            self.log("train/diffusion", loss, prog_bar=True)
        self.log("train/loss", loss)
        return loss

    def shared_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, labels = batch
        recon, _ = self.vae_loss(x)
        diffusion = self.diffusion_loss(x, labels)
        self.log(f"{stage}/recon", recon)
        self.log(f"{stage}/diffusion", diffusion)
        self.log(f"{stage}/loss", recon + diffusion, prog_bar=True)
        return recon + diffusion

    # ---- generation --------------------------------------------------------------------------------------------

    @torch.no_grad()
    def generate(
        self, labels: Tensor, seed: int = 0, known: Tensor | None = None, keep: Tensor | None = None
    ) -> Tensor:
        """labels (B,) -> normalised feature windows (B, window, n_features). In-betweening: the frames where `keep`
        (window,) bool is true are given by `known` (B, window, n_features); each DDIM step's clean-latent estimate
        is decoded, those frames replaced by the given ones and the result encoded again (replacement in pose space
        through the VAE), and the output has the given frames exactly."""
        was_training = self.training
        self.eval()
        generator = torch.Generator(self.device).manual_seed(seed)
        shape = (len(labels), self.vae.n_tokens, self.vae.d_latent)
        scale = self.latent_scale if self.latent_scale > 0 else torch.ones_like(self.latent_scale)

        def keep_given(x: Tensor) -> Tensor:
            return x if keep is None else torch.where(keep[:, None].to(x.device), known.to(x), x)

        def project(z0: Tensor) -> Tensor:
            return self.vae.encode(keep_given(self.vae.decode(z0 / scale)))[0] * scale

        z = self.diffusion.sample(
            self.denoiser,
            shape,
            labels.to(self.device),
            self.n_classes,
            self.hparams.sampling_steps,
            self.hparams.guidance,
            generator,
            None if keep is None else project,
        )
        out = keep_given(self.vae.decode(z / scale))
        self.train(was_training)
        return out

    def timed_generate(self, labels: Tensor, batch_size: int = 64) -> tuple[Tensor, float]:
        """(samples, AITS: average seconds per sample) generating in batches of `batch_size`."""
        start = time.perf_counter()
        out = torch.cat([self.generate(chunk, seed=i) for i, chunk in enumerate(labels.split(batch_size))])
        return out, (time.perf_counter() - start) / max(len(labels), 1)

    def write_samples(self, data: MotionData, samples: Tensor, labels: Tensor, folder: str) -> Path | None:
        """Samples as `<folder>/<i>_<label>.bvh` and `.gif`; returns the folder (None off rank zero)."""
        first = self.run_file(f"{folder}/.keep", required=True)
        if first is None:
            return None
        for i, (sample, label) in enumerate(zip(samples.cpu().numpy(), labels.tolist(), strict=True)):
            motion = data.to_motion(sample)
            name = f"{i}_{data.classes[label]}"
            write_bvh(motion, first.parent / f"{name}.bvh")
            write_gif(motion.positions(), motion.skeleton.parents, first.parent / f"{name}.gif", motion.fps, name)
        first.unlink(missing_ok=True)
        return first.parent

    def predict_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        """Whole windows from the labels, or (`keep_frames`) the served windows' other frames filled in."""
        known = None if self.keep is None else batch[0]
        return self.generate(batch[1], seed=batch_idx, known=known, keep=self.keep)

    def on_predict_epoch_start(self) -> None:
        self.predicted: list[tuple[Tensor, Tensor]] = []

    def on_predict_batch_end(self, outputs: Tensor, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self.predicted.append((outputs.cpu(), batch[1].cpu()))

    def on_predict_epoch_end(self) -> None:
        data = self.trainer.datamodule
        if not self.predicted or not isinstance(data, MotionData):
            return
        samples, labels = (torch.cat(parts) for parts in zip(*self.predicted, strict=True))
        folder = self.write_samples(data, samples, labels, "generated")
        if folder is not None:
            print(f"{len(samples)} generated motion(s) (BVH + GIF): {folder}")

    # ---- report ----------------------------------------------------------------------------------------------

    def write_report(self, stage: str) -> None:
        data = getattr(self.trainer, "datamodule", None)
        if not isinstance(data, MotionData) or self.hparams.report_per_class < 1:
            return
        labels = torch.arange(self.n_classes).repeat_interleave(self.hparams.report_per_class)
        samples, aits = self.timed_generate(labels)
        rows = {"denoiser": self.hparams.denoiser, "n_generated": len(labels), "aits_s": aits}
        rows.update(self.evaluate(data, stage, samples.cpu(), labels))
        self.report(stage, rows)
        png = self.run_file(f"plots/{stage}_samples.png")
        if png is None:
            return
        shown = [int(i) for i in torch.arange(self.n_classes) * self.hparams.report_per_class]
        positions = [data.to_motion(samples[i].cpu().numpy()).positions() for i in shown]
        titles = [f"generated: {data.classes[int(labels[i])]}" for i in shown]
        plot_strips(positions, data.skeleton.parents, titles, png)
        gifs = min(self.hparams.report_gifs, len(shown))
        if gifs:
            picked = torch.tensor(shown[:gifs])
            self.write_samples(data, samples[picked], labels[picked], f"samples/{stage}")

    def evaluate(self, data: MotionData, stage: str, samples: Tensor, labels: Tensor) -> dict[str, Any]:
        """The generation metrics with the evaluator, or a note that there is none."""
        if self.hparams.evaluator is None:
            rank_zero_info(
                f"{stage}: no evaluator (model.evaluator: a motion.classify checkpoint): no FID / R-precision"
            )
            return {"evaluator": "missing"}
        evaluator = load_evaluator(self.hparams.evaluator, self.n_classes, self.hparams.n_features)
        real, real_labels = data.real_windows(stage)
        train = torch.stack([data.datasets["train"][i][0] for i in range(len(real))])
        with torch.no_grad():
            f_gen, f_real, f_train = (evaluator.features(x).numpy() for x in (samples, real, train))
            predicted = evaluator(samples).argmax(-1)
        per_label = metrics.per_label_fid(f_gen, labels.numpy(), f_real, real_labels.numpy())
        shuffled = metrics.per_label_fid(f_gen, labels.numpy(), f_real, real_labels.numpy(), shift=1)
        return {
            "evaluator": str(self.hparams.evaluator),
            "fid": metrics.fid(f_gen, f_real),
            "fid_real_train": metrics.fid(f_train, f_real),
            "r_precision_top1": float((predicted == labels).float().mean()),
            "fid_per_label": per_label,
            "fid_per_label_shuffled": shuffled,
            "diversity": metrics.diversity(f_gen),
            "diversity_real": metrics.diversity(f_real),
            "multimodality": metrics.multimodality(f_gen, labels.numpy()),
        }

    def report(self, stage: str, rows: dict[str, Any]) -> None:
        """`<stage>_generation.csv` (metric, value) and the numbers logged as `<stage>/gen_<metric>`."""
        path = self.run_file(f"{stage}_generation.csv")
        if path is None:
            return
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["metric", "value"])
            writer.writerows(rows.items())
        numbers = {f"{stage}/gen_{k}": float(v) for k, v in rows.items() if isinstance(v, (int, float))}
        if self.trainer.logger is not None:
            self.trainer.logger.log_metrics(numbers, step=self.global_step)
        shown = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in rows.items())
        rank_zero_info(f"{stage} generation: {shown}; {path}")
