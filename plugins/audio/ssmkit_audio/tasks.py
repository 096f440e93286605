"""`SpokenDigitClassifier` (`audio.classify`): spoken digits from raw waveforms, log-mel frames, or a log-mel CNN.

- `model: ssm, features: raw` (default): the SSM stack reads the samples themselves, one per step at the data's
  rate, as S4 did on Speech Commands (`StagedSSM`: `pools` average-pools time between backbone stages);
- `model: ssm, features: logmel`: the same stack over 10 ms log-mel frames;
- `model: cnn`: the baseline, a small CNN over the log-mel frames (`BandCNN`).

All three end in the same masked mean over time and a linear head, and share the kit's loss, metrics, confusion
report and predictions.csv (`ClassificationTask`). Batches are `(waveforms (B, L), lengths (B,), labels (B,))`.
At the end of fit ("val") and test, `write_report` also writes four clips spread over that split as WAV files
(`clips/<stage>_<i>_<name>.wav`) and their spectrograms with the true and predicted class (`plots/<stage>_clips.png`).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import soundfile as sf
import torch
from lightning.pytorch.utilities import rank_zero_info
from torchmetrics.functional.audio import scale_invariant_signal_noise_ratio

from ssmkit.data import pad_sequences
from ssmkit.models import DEFAULT_BACKBONE, BackboneConfig, ClassificationHead
from ssmkit.train.classification import ClassificationTask
from ssmkit.train.module import TaskModule
from ssmkit_audio import mulaw
from ssmkit_audio.apollo import NETWORKS, BandRestorer, DualPathSSM, RoformerConv, restore_in_chunks
from ssmkit_audio.datamodules import MuLawWindowsData, RestorationData, SpokenDigitsData
from ssmkit_audio.discriminator import (
    GAN_LOSSES,
    MultiFrequencyDiscriminator,
    discriminator_loss,
    feature_matching_loss,
    generator_loss,
)
from ssmkit_audio.models import BandCNN, ConvStem, FilterbankStem, LogMel, StagedSSM
from ssmkit_audio.perceptual import perceptual_scores
from ssmkit_audio.plots import plot_clips
from ssmkit_audio.sashimi import SashimiLM, max_pole_modulus
from ssmkit_audio.spectral import codec_cutoff, lsd, mrstft_loss
from ssmkit_audio.wavenet import WaveNetLM, matched_channels, n_parameters

Tensor = torch.Tensor
MODELS = ("ssm", "cnn")
FEATURES = ("raw", "logmel")
STEMS = ("conv", "filterbank")
N_REPORTED_CLIPS = 4


class SpokenDigitClassifier(ClassificationTask):
    n_inputs = 2  # waveforms, lengths
    data_links = {"n_classes": "n_classes", "sample_rate": "sample_rate", "max_length": "max_length"}

    def __init__(
        self,
        n_classes: int,
        sample_rate: int,
        max_length: int,
        model: str = "ssm",
        features: str = "raw",
        backbone: BackboneConfig = DEFAULT_BACKBONE,
        pools: list[int] | None = None,
        expand: int = 1,
        n_mels: int = 40,
        logmel_norm: str = "mean",
        spec_masks: int = 0,
        stem: str = "conv",
        stem_compression: str = "log",
        stem_stride: int = 1,
        stem_channels: int = 32,
        band_conv_channels: list[int] | None = None,
        cnn_channels: list[int] | None = None,
        cnn_keep_bands: bool = False,
        pooling: str = "mean",
        head_dropout: float = 0.0,
        **kwargs: Any,
    ) -> None:
        """A spoken-digit classifier: the SSM stages over samples or log-mel frames, or the log-mel CNN baseline.

        Args:
            n_classes: number of classes (the command line takes it from the data).
            sample_rate: the clips' rate in Hz (the command line takes it from the data).
            max_length: the longest clip in samples (the command line takes it from the data).
            model: "ssm" (the SSM stages, `StagedSSM`) or "cnn" (the log-mel CNN baseline; needs features "logmel").
            features: "raw" (one sample per step) or "logmel" (10 ms frames of `n_mels` log-mel bands).
            backbone: the SSM stages' backbone settings (stage 0's width; model "ssm").
            pools: average-pooling factors in time between the SSM stages, one per extra stage (None: one stage).
            expand: each SSM stage is this many times as wide as the one before.
            n_mels: mel bands per log-mel frame (features "logmel").
            logmel_norm: per-clip normalisation of each mel band (log-mel frames, or the "filterbank" stem's
                bands) over the clip's frames: "mean" (CMN) or "meanvar" (CMVN).
            spec_masks: SpecAugment in training (features "logmel"): this many random mel-band and time masks per
                clip (0: none).
            stem: features "raw" with stem_stride > 1: how samples become frames: "conv" (`ConvStem`, a learned
                strided convolution, kernel 2 x stride, then GELU) or "filterbank" (`FilterbankStem`, learnable
                Gabor filters at mel-spaced centres, energy, low-pass, `stem_compression`, normalised per clip as
                `logmel_norm`).
            stem_compression: the "filterbank" stem's compression of the band energies: "log" or "pcen" (learned
                per-channel energy normalisation, LEAF's default).
            stem_stride: features "raw": the stem turns the samples into frames every `stem_stride` samples for the
                SSM stages (1: no stem, one sample per step).
            stem_channels: the stem's output channels, the filters of "filterbank" (stem_stride > 1).
            band_conv_channels: stem "filterbank" only: the channels of 3x3 convolution blocks over (band, frame)
                between the stem and the SSM stages (`BandCNN`: ReLU, max-pooling by 2 along bands only, the
                frame rate kept); None or empty: none, the stages read the bands directly.
            cnn_channels: the CNN's output channels per convolution block (None: 16, 32, 64).
            cnn_keep_bands: the CNN's frames keep the remaining mel bands side by side (False: their mean, as
                checkpoints from before this setting; `cnn.yaml` sets it).
            pooling: how the head pools over time: "mean" (valid steps), "meanmax" (their mean and maximum side by
                side), "last" (last valid step) or "cls" (step 0).
            head_dropout: dropout before the linear head.
        """
        super().__init__(n_classes=n_classes, **kwargs)
        self.save_hyperparameters()
        if model not in MODELS or features not in FEATURES:
            raise ValueError(f"model must be one of {MODELS} and features one of {FEATURES}")
        if stem not in STEMS:
            raise ValueError(f"stem must be one of {STEMS}, got {stem!r}")
        if model == "cnn" and features != "logmel":
            raise ValueError("the CNN baseline reads log-mel frames: set features: logmel")
        self.sample_rate = sample_rate
        self.logmel = LogMel(sample_rate, n_mels, norm=logmel_norm, masks=spec_masks) if features == "logmel" else None
        self.stem: ConvStem | FilterbankStem | None = None
        if features == "raw" and stem_stride > 1:
            self.stem = (
                ConvStem(stem_channels, stem_stride)
                if stem == "conv"
                else FilterbankStem(
                    stem_channels, stem_stride, sample_rate, norm=logmel_norm, compression=stem_compression
                )
            )
        self.band_conv = self.make_band_conv(band_conv_channels, stem_channels)
        if model == "cnn":
            self.encoder: StagedSSM | BandCNN = BandCNN(cnn_channels or (16, 32, 64), n_mels, cnn_keep_bands)
        elif self.logmel is not None:
            self.encoder = StagedSSM(backbone, n_mels, pools or [], max_length // self.logmel.hop + 1, expand)
        elif self.stem is not None:
            steps = math.ceil(max_length / stem_stride)
            d_input = stem_channels if self.band_conv is None else self.band_conv.d_model
            self.encoder = StagedSSM(backbone, d_input, pools or [], steps, expand)
        else:
            self.encoder = StagedSSM(backbone, 1, pools or [], max_length, expand)
        self.head = ClassificationHead(self.encoder.d_model, n_classes, pooling, head_dropout)

    def make_band_conv(self, channels: list[int] | None, n_bands: int) -> BandCNN | None:
        """The `BandCNN` over the filterbank stem's bands (pooled along bands only), or None without `channels`."""
        if not channels:
            return None
        if not isinstance(self.stem, FilterbankStem):
            raise ValueError(
                "band_conv_channels needs the filterbank stem: features raw, stem filterbank, stem_stride > 1"
            )
        return BandCNN(channels, n_bands, keep_bands=True, pool_time=False)

    def forward(self, waveforms: Tensor, lengths: Tensor) -> Tensor:
        """waveforms (B, L) right-padded, lengths (B,) -> logits (B, n_classes)."""
        if self.logmel is None:
            x = waveforms[..., None]  # (B, L, 1): one sample per step
            if self.stem is not None:
                x, lengths = self.stem(x, lengths)  # (B, L / stem_stride, stem_channels)
            if self.band_conv is not None:
                x, lengths = self.band_conv(x, lengths)  # (B, L / stem_stride, band_conv.d_model)
        else:
            x, lengths = self.logmel(waveforms, lengths)  # (B, T, n_mels)
        h, lengths = self.encoder(x, lengths)
        return self.head(h, lengths)

    def batch_tokens(self, batch: tuple[Tensor, Tensor, Tensor]) -> int:
        """Samples in a batch (throughput in samples per second)."""
        return int(batch[1].sum())

    def write_report(self, stage: str) -> None:
        super().write_report(stage)
        data = getattr(self.trainer, "datamodule", None)
        png = self.run_file(f"plots/{stage}_clips.png")
        if png is None or not isinstance(data, SpokenDigitsData):
            return
        served, dataset = data.serving_split(stage)
        shown = torch.linspace(0, len(dataset) - 1, N_REPORTED_CLIPS).long().unique().tolist()  # spread over the split
        samples = [dataset[i] for i in shown]
        names = [data.item_names(served)[i].rsplit(".", 1)[0] for i in shown]
        waveforms = [w for w, _ in samples]
        classes = self.class_names()
        titles = [
            f"{name}: true {classes[label]}, predicted {classes[p]}"
            for name, (_, label), p in zip(names, samples, self.predict_clips(waveforms), strict=True)
        ]
        for i, (w, name) in enumerate(zip(waveforms, names, strict=True)):
            sf.write(self.run_file(f"clips/{stage}_{i}_{name}.wav"), w.numpy(), self.sample_rate, "PCM_16")
        plot_clips(waveforms, self.sample_rate, titles, png)
        rank_zero_info(f"{stage} clips: {png.parent.parent / 'clips'} and {png}")

    @torch.no_grad()
    def predict_clips(self, waveforms: list[Tensor]) -> list[int]:
        """The predicted class of each clip (L_i,), run as one padded batch in eval mode."""
        padded, lengths = pad_sequences(waveforms)
        was_training = self.training
        self.eval()
        predicted = self(padded.to(self.device), lengths.to(self.device)).argmax(-1).tolist()
        self.train(was_training)
        return predicted


GENERATORS = ("sashimi", "wavenet")


class WaveformGenerator(TaskModule):
    """`audio.generate`: next-sample prediction over 8-bit mu-law windows (`MuLawWindowsData`), and generation.

    - `model: sashimi` (default): `SashimiLM`, trained in convolution mode; `backbone`, `pools`, `expand` set it.
    - `model: wavenet`: the baseline `WaveNetLM` (`wavenet_layers` dilated causal convolutions, dilations
      1, 2, 4, ... restarting every `wavenet_cycle`), its width chosen so its parameter count matches the SaShiMi
      the same settings would build (`wavenet_channels: null`), or set by hand.

    Loss: next-sample cross-entropy (nats) over each window's valid samples; logged `<stage>/bits_per_sample`
    (the same NLL in bits; epoch means weighted by valid samples, so exact over the split). The unigram mu-law
    entropy of the training windows is logged once at the start of fit as `data/unigram_bits_per_sample`.
    `conditional: true` adds a digit-label embedding to every step's input, so generation can ask for a digit.

    Generation runs on the recurrent `step` path (memory fixed by the model, not the length): `write_report` draws
    `report_clips` clips of `report_seconds` after fit and test (WAV files in `clips/`, spectrograms with a real
    window of the split in `plots/<stage>_generated.png`); `predict` draws one clip of `generate_seconds` per
    label the data serves, writes `generated/<i>_digit<label>.wav` and `plots/predict_generated.png`, and prints
    where, with the generation speed in samples per second."""

    data_links = {"n_classes": "n_classes", "sample_rate": "sample_rate", "window": "window"}

    def __init__(
        self,
        n_classes: int,
        sample_rate: int,
        window: int,
        model: str = "sashimi",
        backbone: BackboneConfig = DEFAULT_BACKBONE,
        pools: list[int] | None = None,
        expand: int = 2,
        conditional: bool = False,
        wavenet_layers: int = 10,
        wavenet_cycle: int = 10,
        wavenet_channels: int | None = None,
        temperature: float = 1.0,
        generate_seconds: float = 1.0,
        report_seconds: float = 0.5,
        report_clips: int = 2,
        **kwargs: Any,
    ) -> None:
        """Next-sample prediction with SaShiMi or the WaveNet baseline, and generation (see the class doc).

        Args:
            n_classes: number of digit labels (the command line takes it from the data).
            sample_rate: the clips' rate in Hz (the command line takes it from the data).
            window: samples per training window, the mixers' l_max (the command line takes it from the data).
            model: "sashimi" (`SashimiLM`) or "wavenet" (the `WaveNetLM` baseline).
            backbone: SaShiMi's stack settings (also what the matched WaveNet's parameter count follows).
            pools: SaShiMi's down-pooling factors (None: 4, 4); the window must be a multiple of their product.
            expand: SaShiMi's width factor at each down-pooling.
            conditional: add a digit-label embedding to every step's input, so generation can ask for a digit.
            wavenet_layers: dilated causal convolution layers of the WaveNet.
            wavenet_cycle: the WaveNet's dilations 1, 2, 4, ... restart every this many layers.
            wavenet_channels: the WaveNet's channels (None: matched to SaShiMi's parameter count).
            temperature: sampling temperature of generation (1: the model's own distribution).
            generate_seconds: length in seconds of each clip `predict` generates.
            report_seconds: length in seconds of each clip generated for the fit and test reports.
            report_clips: clips generated for the fit and test reports (0: none).
        """
        super().__init__(**kwargs)
        self.save_hyperparameters()
        if model not in GENERATORS:
            raise ValueError(f"model must be one of {GENERATORS}, got {model!r}")
        self.n_classes, self.sample_rate, self.temperature = n_classes, sample_rate, temperature
        labels = n_classes if conditional else 0
        config = BackboneConfig.of(backbone).with_l_max(window)
        sashimi = SashimiLM(config, tuple(pools if pools is not None else (4, 4)), expand, labels)
        if model == "sashimi":
            self.lm: SashimiLM | WaveNetLM = sashimi
        else:
            target = n_parameters(sashimi)
            channels = wavenet_channels or matched_channels(target, wavenet_layers, wavenet_cycle, labels)
            self.lm = WaveNetLM(channels, wavenet_layers, wavenet_cycle, labels)
        self.conditional = conditional
        rank_zero_info(f"audio.generate: {model}, {n_parameters(self.lm):,} parameters")

    def forward(self, tokens: Tensor, labels: Tensor | None = None) -> Tensor:
        """tokens (B, L) -> logits (B, L, 256): the output at t predicts token t from tokens before t."""
        return self.lm(mulaw.shift_right(tokens), labels if self.conditional else None)

    def shared_step(self, batch: tuple[Tensor, Tensor, Tensor], stage: str) -> Tensor:
        tokens, lengths, labels = batch
        loss = mulaw.nll_nats(self(tokens, labels), tokens, lengths)
        n_valid = int(lengths.sum())
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=n_valid)
        self.log(f"{stage}/bits_per_sample", loss / math.log(2), on_step=False, on_epoch=True, batch_size=n_valid)
        return loss

    def batch_tokens(self, batch: tuple[Tensor, Tensor, Tensor]) -> int:
        return int(batch[1].sum())

    def on_fit_start(self) -> None:
        data = getattr(self.trainer, "datamodule", None)
        if isinstance(data, MuLawWindowsData) and self.trainer.is_global_zero:
            bits = data.unigram_bits()
            rank_zero_info(f"unigram mu-law entropy of the training windows: {bits:.3f} bits per sample")
            if self.trainer.logger is not None:
                self.trainer.logger.log_metrics({"data/unigram_bits_per_sample": bits}, step=0)

    def on_fit_end(self) -> None:
        super().on_fit_end()
        modulus = max_pole_modulus(self.lm)
        if modulus is not None:
            where = "inside" if modulus < 1 else "NOT inside"
            rank_zero_info(f"discretised SSM poles after training: max |z| = {modulus:.6f}, {where} the unit circle")

    @torch.no_grad()
    def generate(self, n_samples: int, labels: Tensor, seed: int = 0) -> tuple[Tensor, float]:
        """(waveforms (B, n_samples) float32 decoded from the sampled tokens, samples per second per clip)."""
        was_training = self.training
        self.eval()
        generator = torch.Generator(self.device).manual_seed(seed)
        start = time.perf_counter()
        tokens = mulaw.sample(
            self.lm,
            n_samples,
            batch_size=len(labels),
            labels=labels.to(self.device) if self.conditional else None,
            temperature=self.temperature,
            generator=generator,
            device=self.device,
            dtype=next(self.parameters()).dtype,
        )
        speed = n_samples / max(time.perf_counter() - start, 1e-9)
        self.train(was_training)
        return mulaw.decode(tokens.cpu()), speed

    def write_clips(self, waveforms: Tensor, labels: Tensor, prefix: str, png: str, real: Tensor | None) -> Path | None:
        """Generated clips as WAV files `<prefix><i>.wav` (`<prefix><i>_digit<label>.wav` when conditioned) and
        their spectrograms (after `real`, a window of data, when given) in `png`; its path (None off rank zero)."""
        path = self.run_file(png, required=True)
        if path is None:
            return None
        shown, titles = [], []
        if real is not None:
            shown.append(real)
            titles.append("a window of the data (mu-law round trip)")
        for i, (w, label) in enumerate(zip(waveforms, labels.tolist(), strict=True)):
            name = f"{prefix}{i}_digit{label}.wav" if self.conditional else f"{prefix}{i}.wav"
            sf.write(self.run_file(name, required=True), w.numpy(), self.sample_rate)
            shown.append(w)
            what = f"digit {label}" if self.conditional else "unconditional"
            titles.append(f"generated by {self.hparams.model} ({what}, temperature {self.temperature})")
        return plot_clips(shown, self.sample_rate, titles, path)

    def write_report(self, stage: str) -> None:
        png = self.run_file(f"plots/{stage}_generated.png")
        if png is None or self.hparams.report_clips < 1:
            return
        data = getattr(self.trainer, "datamodule", None)
        real, loudness = None, ""
        if isinstance(data, MuLawWindowsData):
            split = data.serving_split(stage)[1]
            windows = [
                mulaw.decode(tokens[:length]) for tokens, length, _ in (split[i] for i in range(min(16, len(split))))
            ]
            real = windows[0]
        labels = torch.arange(self.hparams.report_clips) % self.n_classes
        n = round(self.hparams.report_seconds * self.sample_rate)
        waveforms, speed = self.generate(n, labels)
        if real is not None:  # the check: RMS of generated audio within 0.5x-2x of the data's
            ratio = float(waveforms.square().mean().sqrt() / torch.cat(windows).square().mean().sqrt())
            loudness = f", RMS {ratio:.2f}x the data's, finite: {bool(torch.isfinite(waveforms).all())}"
        self.write_clips(waveforms, labels, f"clips/{stage}_", f"plots/{stage}_generated.png", real)
        rank_zero_info(
            f"{stage} generated clips ({speed:.0f} samples/s{loudness}): {png.parent.parent / 'clips'} and {png}"
        )

    def predict_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        """batch: labels (B,) -> generated waveforms (B, generate_seconds * sample_rate), written as WAV files."""
        n = round(self.hparams.generate_seconds * self.sample_rate)
        waveforms, speed = self.generate(n, batch, seed=batch_idx)
        png = self.write_clips(waveforms, batch, f"generated/{batch_idx}_", f"plots/predict_{batch_idx}.png", None)
        if png is not None:
            where = png.parent.parent / "generated"
            rank_zero_info(f"generated {len(batch)} clip(s) of {n} samples ({speed:.0f} samples/s): {where}, {png}")
        return waveforms


class AudioRestorer(TaskModule):
    """`audio.restore`: Apollo-style band-split restoration of MP3-degraded / low-passed music (`apollo.py`).

    - `model: ssm` (default): `DualPathSSM`, `backbone.n_layers` layers of a bidirectional `backbone.mixer` block
      along time then across bands, width `backbone.d_model`;
    - `model: roformer`: the anchor's `RoformerConv` (RoPE attention across bands + convolution stack along time),
      `backbone.n_layers` layers, its width chosen so the whole restorer's parameter count is the closest to the
      SSM restorer the same settings build (`roformer_width: null`), or set by hand.

    Loss: the multi-resolution STFT loss (`spectral.mrstft_loss`, sizes `stft_sizes`) + `wave_weight` x the
    waveform L1 (- `si_snr_weight` x the output's SI-SNR in dB, off by default). `gan_weight > 0` adds Apollo's GAN
    term (`discriminator.py`): a `MultiFrequencyDiscriminator` trained beside the restorer under manual optimisation
    (`adversarial_step`); 0 (the default) builds no discriminator and trains exactly as before. Val / test log
    `<stage>/si_snr` of the output and `<stage>/si_snr_input` of the degraded input (torchmetrics),
    `<stage>/lsd_high` and `<stage>/lsd_high_input` (log-spectral distance above each clip's codec cut-off,
    `spectral.codec_cutoff`); test also `test/stoi`, `test/pesq` and their `_input` twins (`perceptual.py`; PESQ
    only where the `pesq` package is installed) and `test/rtf` (seconds of compute per second of audio).
    `write_report` writes `report_clips` clips of the split (degraded, restored, clean WAVs in `clips/`, their
    spectrograms in `plots/<stage>_restored.png`); `predict` restores whole files in overlapping chunks of
    `chunk_seconds` (`apollo.restore_in_chunks`) and writes `restored/<name>.wav` and
    `plots/predict_<name>.png` (before / after), printing where."""

    data_links = {"sample_rate": "sample_rate", "clip_samples": "clip_samples"}

    def __init__(
        self,
        sample_rate: int,
        clip_samples: int,
        model: str = "ssm",
        backbone: BackboneConfig = DEFAULT_BACKBONE,
        n_fft: int = 512,
        hop: int = 256,
        band_splits_hz: list[float] | None = None,
        band_widths_hz: list[float] | None = None,
        residual: bool = True,
        roformer_heads: int = 4,
        roformer_width: int | None = None,
        stft_sizes: list[int] | None = None,
        wave_weight: float = 1.0,
        si_snr_weight: float = 0.0,
        chunk_seconds: float = 4.0,
        overlap_seconds: float = 0.5,
        report_clips: int = 3,
        gan_weight: float = 0.0,
        gan_loss: str = "lsgan",
        feature_weight: float = 1.0,
        disc_sizes: list[int] | None = None,
        disc_channels: int = 8,
        disc_depth: int = 4,
        disc_lr: float | None = None,
        **kwargs: Any,
    ) -> None:
        """A band-split restorer with the SSM or the Roformer band-sequence network (see the class doc).

        Args:
            sample_rate: the audio's rate in Hz (the command line takes it from the data).
            clip_samples: samples per training clip, the time axis' l_max (the command line takes it from the data).
            model: "ssm" (`DualPathSSM`, the default) or "roformer" (the anchor's `RoformerConv`, the baseline).
            backbone: the SSM's settings (mixer, width = the band features' D, n_layers = dual-path layers); the
                Roformer takes n_layers and the parameter count to match from it.
            n_fft: STFT size in samples (hop `hop`, Hann window).
            hop: STFT hop in samples.
            band_splits_hz: frequencies where the band width changes (None: 1000, 4000, 8000).
            band_widths_hz: band width in Hz below the first split, between splits, above the last (None: 100,
                250, 500, 1000).
            residual: add the input spectrum to the mapped one (False: Apollo's pure direct mapping).
            roformer_heads: attention heads of the Roformer.
            roformer_width: the Roformer's width (None: matched to the SSM restorer's parameter count).
            stft_sizes: the STFT sizes of the multi-resolution loss (None: 256, 512, 1024).
            wave_weight: weight of the waveform L1 term (0: spectral loss only).
            si_snr_weight: weight of the negative SI-SNR (in dB) of the output as a loss term (0: none).
            chunk_seconds: predict restores files in chunks of this length.
            overlap_seconds: overlap of neighbouring chunks (cross-faded).
            report_clips: clips written (WAV + spectrograms) by the fit and test reports.
            gan_weight: weight of the GAN term, adversarial + feature_weight x feature matching (0: no
                discriminator, automatic optimisation as without it; > 0: manual optimisation of both networks).
            gan_loss: the adversarial loss, "lsgan" (least squares, Apollo's) or "hinge".
            feature_weight: weight of the feature-matching loss inside the GAN term.
            disc_sizes: the discriminator's STFT sizes, one convolution stack each (None: 256, 512, 1024).
            disc_channels: channels of each stack's first convolution (doubling per layer).
            disc_depth: convolution layers per stack before the score map.
            disc_lr: the discriminator's peak learning rate (None: lr).
        """
        super().__init__(**kwargs)
        self.save_hyperparameters()
        if model not in NETWORKS:
            raise ValueError(f"model must be one of {NETWORKS}, got {model!r}")
        if gan_loss not in GAN_LOSSES or gan_weight < 0:
            raise ValueError(f"gan_loss must be one of {GAN_LOSSES} and gan_weight >= 0: {gan_loss!r}, {gan_weight}")
        self.sample_rate, self.stft_sizes = sample_rate, tuple(stft_sizes or (256, 512, 1024))
        layout = dict(
            sample_rate=sample_rate,
            n_fft=n_fft,
            hop=hop,
            splits_hz=list(band_splits_hz or (1000, 4000, 8000)),
            widths_hz=list(band_widths_hz or (100, 250, 500, 1000)),
            residual=residual,
        )
        config = BackboneConfig.of(backbone)
        n_frames = clip_samples // hop + 1
        ssm = BandRestorer(**layout, d_model=config.d_model, network=lambda k: DualPathSSM(config, k, n_frames))
        if model == "ssm":
            self.restorer = ssm
        else:
            width = roformer_width or matched_width(n_parameters(ssm), layout, config.n_layers, roformer_heads)
            self.restorer = roformer_restorer(layout, width, config.n_layers, roformer_heads)
        self.discriminator = None
        self.clip_setting: tuple[float, str] | None = None  # the trainer's, taken over in configure_callbacks
        gan = ""
        if gan_weight > 0:
            sizes = tuple(disc_sizes or (256, 512, 1024))
            self.discriminator = MultiFrequencyDiscriminator(sizes, disc_channels, disc_depth)
            self.automatic_optimization = False
            gan = f"; GAN term x {gan_weight} ({gan_loss}), discriminator {n_parameters(self.discriminator):,}"
        n_restorer = n_parameters(self.restorer)
        rank_zero_info(f"audio.restore: {model}, {len(self.restorer.widths)} bands, {n_restorer:,} parameters{gan}")

    def forward(self, degraded: Tensor) -> Tensor:
        """degraded (B, L) -> restored (B, L)."""
        return self.restorer(degraded)

    def shared_step(self, batch: tuple[Tensor, Tensor, Tensor], stage: str) -> Tensor:
        degraded, lengths, clean = batch
        start = time.perf_counter()
        restored = self(degraded)
        elapsed = time.perf_counter() - start
        restored = zero_padding(restored, lengths)
        loss = self.loss(restored, clean)
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=len(clean))
        if stage != "train":
            self.log_quality(restored.detach(), degraded, clean, stage)
        if stage == "test":
            rtf = elapsed / (float(lengths.sum()) / self.sample_rate)
            self.log("test/rtf", rtf, on_step=False, on_epoch=True, batch_size=len(clean))
            self.log_perceptual(restored.detach(), degraded, clean, lengths)
        return loss

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        if self.discriminator is None:
            return super().training_step(batch, batch_idx)
        return self.adversarial_step(batch)

    def adversarial_step(self, batch: tuple[Tensor, Tensor, Tensor]) -> Tensor:
        """One GAN step (manual optimisation; returns the reconstruction loss, logged as `train/loss` as without
        the GAN): the discriminator on clean vs restored clips, then the restorer on the reconstruction loss +
        gan_weight x (adversarial + feature_weight x feature matching). Each network's gradients are clipped by hand
        with the trainer's setting, and both schedulers step once per batch. Only the restorer's step counts as a
        training step, so `global_step` and `max_steps` count batches as they do without the GAN."""
        degraded, lengths, clean = batch
        h = self.hparams
        opt_g, opt_d = self.optimizers()
        sched_g, sched_d = self.lr_schedulers()
        restored = zero_padding(self(degraded), lengths)
        n = len(clean)
        with self.toggled_optimizer(opt_d):
            scores, _ = self.discriminator(torch.cat([clean, restored.detach()]))
            d_loss = discriminator_loss([s[:n] for s in scores], [s[n:] for s in scores], h.gan_loss)
            opt_d.zero_grad()
            self.manual_backward(d_loss)
            self.clip_by_hand(opt_d)
            # through the strategy (precision, AMP) but past Lightning's counter of training steps
            self.trainer.strategy.optimizer_step(opt_d.optimizer, closure=lambda: None)
            sched_d.step()
        with self.toggled_optimizer(opt_g):
            fake_scores, fake_features = self.discriminator(restored)
            with torch.no_grad():
                _, real_features = self.discriminator(clean)
            reconstruction = self.loss(restored, clean)
            adversarial = generator_loss(fake_scores, h.gan_loss)
            matching = feature_matching_loss(fake_features, real_features)
            g_loss = reconstruction + h.gan_weight * (adversarial + h.feature_weight * matching)
            opt_g.zero_grad()
            self.manual_backward(g_loss)
            self.clip_by_hand(opt_g)
            opt_g.step()
            sched_g.step()
        self.log("train/loss", reconstruction, prog_bar=True, batch_size=n)
        parts = {"gen_loss": g_loss, "disc_loss": d_loss, "adv_loss": adversarial, "fm_loss": matching}
        self.log_dict({f"train/{k}": v.detach() for k, v in parts.items()}, batch_size=n)
        return reconstruction.detach()

    def configure_callbacks(self) -> list:
        """Under manual optimisation (the GAN term) Lightning refuses `Trainer(gradient_clip_val=...)`, which the
        kit sets (1.0) by default: take the setting over here, the one hook Lightning calls before that check, and
        apply it by hand to each network (`clip_by_hand`)."""
        trainer = self.trainer
        if not self.automatic_optimization and trainer.gradient_clip_val:
            self.clip_setting = (float(trainer.gradient_clip_val), trainer.gradient_clip_algorithm or "norm")
            trainer.gradient_clip_val = None
        return super().configure_callbacks()

    def clip_by_hand(self, optimizer: Any) -> None:
        """Clip the gradients of `optimizer`'s parameters as the trainer would have (no-op when it does not clip)."""
        if self.clip_setting is not None:
            value, algorithm = self.clip_setting
            self.clip_gradients(optimizer, gradient_clip_val=value, gradient_clip_algorithm=algorithm)

    def configure_optimizers(self) -> Any:
        if self.discriminator is None:
            return super().configure_optimizers()
        opt_g, sched_g = self.optimizer_for(self.restorer)
        opt_d, sched_d = self.optimizer_for(self.discriminator, self.hparams.disc_lr)
        return [opt_g, opt_d], [sched_g, sched_d]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """A GAN run's checkpoint also loads into a restorer built without the GAN term (to test or predict with
        it): the discriminator only trains, so its weights are dropped."""
        super().on_load_checkpoint(checkpoint)
        if self.discriminator is None:
            state = checkpoint["state_dict"]
            checkpoint["state_dict"] = {k: v for k, v in state.items() if not k.startswith("discriminator.")}

    def loss(self, restored: Tensor, clean: Tensor) -> Tensor:
        """restored, clean (B, L) -> MR-STFT loss + wave_weight * L1 - si_snr_weight * SI-SNR (dB)."""
        loss = (
            mrstft_loss(restored, clean, self.stft_sizes) + self.hparams.wave_weight * (restored - clean).abs().mean()
        )
        if self.hparams.si_snr_weight:
            loss = loss - self.hparams.si_snr_weight * scale_invariant_signal_noise_ratio(restored, clean).mean()
        return loss

    def log_quality(self, restored: Tensor, degraded: Tensor, clean: Tensor, stage: str) -> None:
        """SI-SNR of the output and of the input, and the LSD above the codec cut-off of both (epoch means)."""
        n = len(clean)
        si_out = scale_invariant_signal_noise_ratio(restored, clean).mean()
        si_in = scale_invariant_signal_noise_ratio(degraded, clean).mean()
        self.log(f"{stage}/si_snr", si_out, on_step=False, on_epoch=True, prog_bar=True, batch_size=n)
        self.log(f"{stage}/si_snr_input", si_in, on_step=False, on_epoch=True, batch_size=n)
        cutoff = codec_cutoff(clean, degraded)
        lsd_out, lsd_in = lsd(clean, restored, cutoff), lsd(clean, degraded, cutoff)
        cut = ~lsd_in.isnan()
        if cut.any():
            n_cut = int(cut.sum())
            self.log(f"{stage}/lsd_high", lsd_out[cut].mean(), on_step=False, on_epoch=True, batch_size=n_cut)
            self.log(f"{stage}/lsd_high_input", lsd_in[cut].mean(), on_step=False, on_epoch=True, batch_size=n_cut)

    def log_perceptual(self, restored: Tensor, degraded: Tensor, clean: Tensor, lengths: Tensor) -> None:
        """STOI and wide-band PESQ of the output and of the input (epoch means over the clips they score)."""
        for name, scores in perceptual_scores(restored, degraded, clean, lengths, self.sample_rate).items():
            valid = ~scores.isnan()
            if valid.any():
                value = scores[valid].mean()
                self.log(f"test/{name}", value, on_step=False, on_epoch=True, batch_size=int(valid.sum()))

    def batch_tokens(self, batch: tuple[Tensor, Tensor, Tensor]) -> int:
        """Samples in a batch (throughput in samples per second)."""
        return int(batch[1].sum())

    @torch.no_grad()
    def restore(self, waveform: Tensor) -> Tensor:
        """A whole recording (L,) -> restored (L,), in overlapping chunks of `chunk_seconds` (bounded memory)."""
        was_training = self.training
        self.eval()
        chunk = round(self.hparams.chunk_seconds * self.sample_rate)
        overlap = round(self.hparams.overlap_seconds * self.sample_rate)
        restored = restore_in_chunks(self, waveform.to(self.device), chunk, overlap)
        self.train(was_training)
        return restored

    def write_report(self, stage: str) -> None:
        png = self.run_file(f"plots/{stage}_restored.png")
        data = getattr(self.trainer, "datamodule", None)
        if png is None or self.hparams.report_clips < 1 or not isinstance(data, RestorationData):
            return
        served, dataset = data.serving_split(stage)
        shown = torch.linspace(0, len(dataset) - 1, self.hparams.report_clips).long().unique().tolist()
        waveforms, titles = [], []
        for i in shown:
            degraded, clean = dataset[i]
            restored = self.restore(degraded).cpu()
            name = data.item_names(served)[i]
            name = name if len(name) <= 40 else "..." + name[-37:]
            for kind, w in (("degraded", degraded), ("restored", restored), ("clean", clean)):
                sf.write(self.run_file(f"clips/{stage}_{i}_{kind}.wav"), w.numpy(), self.sample_rate, "PCM_16")
            si = [float(scale_invariant_signal_noise_ratio(w, clean)) for w in (degraded, restored)]
            waveforms += [degraded, restored, clean]
            titles += [f"{name}: degraded, SI-SNR {si[0]:.1f} dB", f"restored, SI-SNR {si[1]:.1f} dB", "clean"]
        plot_clips(waveforms, self.sample_rate, titles, png)
        rank_zero_info(f"{stage} restored clips: {png.parent.parent / 'clips'} and {png}")

    def predict_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> list[Tensor]:
        """batch: (waveforms (B, L) padded, lengths (B,), indices (B,)) -> the restored recordings [(L_i,)], each
        written as `restored/<name>.wav` with its before / after spectrograms `plots/predict_<name>.png`."""
        waveforms, lengths, indices = batch
        data = getattr(self.trainer, "datamodule", None)
        names = data.item_names("predict") if isinstance(data, RestorationData) else None
        restored = []
        for w, length, index in zip(waveforms, lengths.tolist(), indices.tolist(), strict=True):
            start = time.perf_counter()
            y = self.restore(w[:length]).cpu()
            rtf = (time.perf_counter() - start) / (length / self.sample_rate)
            stem = Path(names[index]).stem if names else f"{batch_idx}_{index}"
            self.write_restored(w[:length].cpu(), y, stem, rtf)
            restored.append(y)
        return restored

    def write_restored(self, before: Tensor, after: Tensor, stem: str, rtf: float) -> None:
        """The restored recording as `restored/<stem>.wav` and before / after spectrograms; prints the paths."""
        wav = self.run_file(f"restored/{stem}.wav", required=True)
        if wav is None:
            return
        sf.write(wav, after.clamp(-1, 1).numpy(), self.sample_rate, "PCM_16")
        png = self.run_file(f"plots/predict_{stem}.png", required=True)
        plot_clips([before, after], self.sample_rate, [f"{stem}: before", f"{stem}: restored"], png)
        seconds = len(after) / self.sample_rate
        rank_zero_info(f"restored {stem} ({seconds:.1f} s, real-time factor {rtf:.3f}): {wav} and {png}")


def zero_padding(waveforms: Tensor, lengths: Tensor) -> Tensor:
    """waveforms (B, L) with every sample from lengths[b] on set to zero."""
    return waveforms * (torch.arange(waveforms.shape[-1], device=lengths.device) < lengths[:, None])


def roformer_restorer(layout: dict[str, Any], width: int, n_layers: int, n_heads: int) -> BandRestorer:
    """The band-split restorer with the anchor's Roformer + convolution network of `width` and `n_layers`."""
    return BandRestorer(**layout, d_model=width, network=lambda k: RoformerConv(width, n_layers, n_heads))


def matched_width(target: int, layout: dict[str, Any], n_layers: int, n_heads: int) -> int:
    """The Roformer width (a multiple of n_heads) whose restorer's parameter count is the closest to `target`."""
    widths = range(n_heads, 1025, n_heads)
    counts = {}
    for width in widths:
        counts[width] = n_parameters(roformer_restorer(layout, width, n_layers, n_heads))
        if counts[width] > target:
            break
    return min(counts, key=lambda w: abs(counts[w] - target))
