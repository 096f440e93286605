"""`SpokenDigitClassifier` (`audio.classify`): spoken digits from raw waveforms, log-mel frames, or a log-mel CNN.

- `model: ssm, features: raw` (default): the SSM stack reads the samples themselves, one per step at the data's
  rate, as S4 did on Speech Commands (`StagedSSM`: `pools` average-pools time between backbone stages);
- `model: ssm, features: logmel`: the same stack over 10 ms log-mel frames;
- `model: cnn`: the baseline, a small CNN over the log-mel frames (`LogMelCNN`).

All three end in the same masked mean over time and a linear head, and share the kit's loss, metrics, confusion
report and predictions.csv (`ClassificationTask`). Batches are `(waveforms (B, L), lengths (B,), labels (B,))`.
At the end of fit ("val") and test, `write_report` also writes four clips spread over that split as WAV files
(`clips/<stage>_<i>_<name>.wav`) and their spectrograms with the true and predicted class (`plots/<stage>_clips.png`).
"""

from __future__ import annotations

from typing import Any

import soundfile as sf
import torch
from lightning.pytorch.utilities import rank_zero_info

from ssmkit.data import pad_sequences
from ssmkit.models import BackboneConfig, ClassificationHead
from ssmkit.train.classification import ClassificationTask
from ssmkit_audio.datamodules import SpokenDigitsData
from ssmkit_audio.models import LogMel, LogMelCNN, StagedSSM
from ssmkit_audio.plots import plot_clips

Tensor = torch.Tensor
MODELS = ("ssm", "cnn")
FEATURES = ("raw", "logmel")
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
        backbone: BackboneConfig | None = None,
        pools: list[int] | None = None,
        expand: int = 1,
        n_mels: int = 40,
        cnn_channels: list[int] | None = None,
        pooling: str = "mean",
        head_dropout: float = 0.0,
        **kwargs: Any,
    ) -> None:
        """model: "ssm" or "cnn" (log-mel features only); features: "raw" (samples) or "logmel" (frames of
        `n_mels` bands); backbone, pools, expand: the SSM stages (`StagedSSM`); cnn_channels: the CNN's widths (default
        16, 32, 64). n_classes, sample_rate, max_length (samples): taken from the data."""
        super().__init__(n_classes=n_classes, **kwargs)
        self.save_hyperparameters()
        if model not in MODELS or features not in FEATURES:
            raise ValueError(f"model must be one of {MODELS} and features one of {FEATURES}")
        if model == "cnn" and features != "logmel":
            raise ValueError("the CNN baseline reads log-mel frames: set features: logmel")
        self.sample_rate = sample_rate
        self.logmel = LogMel(sample_rate, n_mels) if features == "logmel" else None
        if model == "cnn":
            self.encoder: StagedSSM | LogMelCNN = LogMelCNN(cnn_channels or (16, 32, 64))
        else:
            steps = max_length if self.logmel is None else max_length // self.logmel.hop + 1
            self.encoder = StagedSSM(backbone, 1 if self.logmel is None else n_mels, pools or [], steps, expand)
        self.head = ClassificationHead(self.encoder.d_model, n_classes, pooling, head_dropout)

    def forward(self, waveforms: Tensor, lengths: Tensor) -> Tensor:
        """waveforms (B, L) right-padded, lengths (B,) -> logits (B, n_classes)."""
        if self.logmel is None:
            x = waveforms[..., None]  # (B, L, 1): one sample per step
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
