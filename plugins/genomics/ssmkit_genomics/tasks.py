"""Lightning modules of the genomics tasks (HyenaDNA, Nguyen et al., 2023, with any registry mixer).

- `GenomicsLM` (pretrain): next-nucleotide cross-entropy, reported as bits per base (`val/bpb`), and a
  bits-per-base-vs-context plot at the end of fit and test; `predict` continues prompts on the recurrent path
  and writes FASTA (prompts and sampling settings come from the data module: LightningCLI restores the model's
  hyper-parameters from the checkpoint over the command line).
- `GenomicsClassifier` (classify): a `ClassificationTask` with a mean-pooled head over the valid positions;
  accuracy, MCC (picks the best checkpoint) and macro F1, the confusion report and `predictions.csv` of the
  base; `init_from` a genomics checkpoint (read when fitting starts). `self_pretrain_steps=N` ("Never Train
  from Scratch", Amos et al., 2024): the first N training steps of the fit are next-nucleotide steps on the
  task's own training sequences (an LM head of its own, labels unused), then the classifier fine-tunes; the
  learning-rate schedule restarts (warm-up + cosine) at the switch.

A mixer that takes `l_max` (hyena, s4, long_conv, ...) gets `l_max = max_length` unless its kwargs say
otherwise (`BackboneConfig.with_l_max`); the implicit filters' positions are scaled by l_max, so a fine-tuned
model keeps the pretrained `max_length` (checked against the checkpoint by `init_from`). The classifier takes
`max_length` and `n_classes` from its data module (`data_links`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from Bio import SeqIO
from Bio.Seq import Seq
from Bio.SeqRecord import SeqRecord
from lightning.pytorch.utilities import rank_zero_info

from ssmkit.layers.mixer import State
from ssmkit.layers.packing import rows_cu_seqlens
from ssmkit.models.backbone import DEFAULT_BACKBONE, BackboneConfig
from ssmkit.models.heads import ClassificationHead, LMHead
from ssmkit.models.lm import TokenDecoder
from ssmkit.train.checkpoint import load_checkpoint
from ssmkit.train.classification import ClassificationTask
from ssmkit.train.module import TaskModule
from ssmkit.train.optim import restarting_schedule
from ssmkit_genomics.plots import plot_context_curve
from ssmkit_genomics.tokenizer import PAD, SEP, VOCAB_SIZE, decode

Tensor = torch.Tensor
SPECIALS = torch.tensor([PAD, SEP])  # never sampled: a generated sequence is bases only


class GenomicsBackbone:
    """Mixed into both tasks: a token backbone over the nucleotide vocabulary sized by `max_length`, whose
    settings go into every checkpoint as `backbone_config` (a dict) for `init_from`."""

    def build_backbone(self, backbone: BackboneConfig | None, max_length: int) -> None:
        self.max_length = max_length
        self.backbone = TaskModule.make_backbone(
            BackboneConfig.of(backbone).with_l_max(max_length), vocab_size=VOCAB_SIZE
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["backbone_config"] = self.backbone.config.as_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """`--ckpt_path`: the checkpoint's backbone must be this one. `max_length` comes from the data, so another
        `--data.max_length` than the run's would otherwise change the filters' l_max without a word."""
        self.check_backbone(checkpoint, "--ckpt_path")

    def check_backbone(self, ckpt: dict[str, Any], source: str) -> None:
        """A ValueError listing the settings in which the checkpoint's backbone differs from this one."""
        if ckpt.get("backbone_config") is None:
            raise ValueError(f"{source}: not a genomics checkpoint (no backbone_config)")
        theirs, ours = BackboneConfig.of(ckpt["backbone_config"]).architecture(), self.backbone.config.architecture()
        differ = [k for k in ours if theirs[k] != ours[k]]
        if differ:
            detail = ", ".join(f"{k}: {theirs[k]!r} there, {ours[k]!r} here" for k in differ)
            raise ValueError(f"{source}: the backbone differs ({detail}); give the run's max_length / backbone")

    def load_backbone(self, path: str) -> None:
        """Copy the backbone weights of a genomics checkpoint (loaded with weights_only=True)."""
        ckpt = load_checkpoint(path)
        self.check_backbone(ckpt, f"init_from {path}")
        prefix = "backbone."
        weights = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
        self.backbone.load_state_dict(weights)
        rank_zero_info(f"initialised the backbone from {path}")


class GenomicsLM(TokenDecoder, GenomicsBackbone, TaskModule):
    monitor = "val/bpb"
    monitor_mode = "min"

    def __init__(
        self,
        max_length: int = 1024,
        length_warmup_start: int = 0,
        length_warmup_steps: int = 0,
        pack_records: bool = False,
        backbone: BackboneConfig = DEFAULT_BACKBONE,
        **kwargs: Any,
    ) -> None:
        """A next-nucleotide language model over DNA tokens.

        `pack_records`: a window that holds the end of one record, its [SEP] and the start of the next is read as
        packed sequences (`ssmkit.layers.packing`): no state or convolution window crosses the [SEP], so every
        record is read as if alone while no position is spent on padding.

        HyenaDNA's sequence-length warm-up: for the first `length_warmup_steps` steps each training window is cut
        into pieces of `length_warmup_start` tokens, then twice that, ... (equal shares of the steps; the tokens per
        step stay the same).

        Args:
            max_length: the longest sequence in tokens (the mixers' l_max; prompt + generated tokens stay within it).
            length_warmup_start: the first piece length in tokens of the length warm-up (0: no warm-up).
            length_warmup_steps: training steps the length warm-up lasts (0: no warm-up).
            pack_records: keep records apart inside a window: the position after each [SEP] starts a new sequence.
            backbone: the sequence backbone's settings.
        """
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.length_warmup_start, self.length_warmup_steps = length_warmup_start, length_warmup_steps
        self.pack_records = pack_records
        self.build_backbone(backbone, max_length)
        self.lm_head = LMHead(self.backbone.d_model, VOCAB_SIZE)
        self.register_buffer("bits", torch.zeros(0), persistent=False)  # (L,) summed bits per window position
        self.windows = 0
        self.generated: list[SeqRecord] = []

    def forward(self, tokens: Tensor) -> Tensor:
        """tokens (B, L) -> next-token logits (B, L, V); with `pack_records` the B windows are one packed row whose
        sequences start at each window's start and after each [SEP]."""
        if not self.pack_records:
            return self.lm_head(self.backbone(tokens))
        cu_seqlens = rows_cu_seqlens(F.pad(tokens[:, :-1] == SEP, (1, 0)))
        return self.lm_head(self.backbone(tokens.reshape(1, -1), cu_seqlens=cu_seqlens)).view(*tokens.shape, -1)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        """batch: (B, L) windows, cut into (B * L / l, l) pieces while the length warm-up lasts."""
        tokens, targets = batch
        length = warmup_length(self.global_step, tokens.shape[1], self.length_warmup_start, self.length_warmup_steps)
        return self.shared_step((tokens.reshape(-1, length), targets.reshape(-1, length)), "train")

    def shared_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        tokens, targets = batch
        logits = self(tokens)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=PAD)
        self.log(f"{stage}/loss", loss, prog_bar=True)
        self.log(f"{stage}/bpb", loss / math.log(2), prog_bar=stage != "train")
        if stage != "train" and not self.trainer.sanity_checking:
            nats = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=PAD, reduction="none")  # (B, L)
            bits = nats.sum(0).detach() / math.log(2)
            self.bits = bits if self.bits.numel() == 0 else self.bits + bits
            self.windows += tokens.shape[0]
        return loss

    def on_validation_epoch_start(self) -> None:
        self.bits, self.windows = self.bits.new_zeros(0), 0

    def on_test_epoch_start(self) -> None:
        self.on_validation_epoch_start()

    def write_report(self, stage: str) -> None:
        """plots/<stage>_bpb_vs_context.png: the last epoch's bits per base at each window position."""
        if not self.windows:
            return
        bits = self.trainer.strategy.reduce(self.bits, reduce_op="sum")  # on every rank
        windows = int(self.trainer.strategy.reduce(self.bits.new_tensor(float(self.windows)), reduce_op="sum"))
        path = self.run_file(f"plots/{stage}_bpb_vs_context.png")
        if path is not None:
            plot_context_curve((bits / windows).cpu().numpy(), path, f"{stage}, {windows} windows")

    def prefill_logits(self, prompt: Tensor) -> tuple[Tensor, list[State]]:
        """TokenDecoder's, with [PAD] and [SEP] ruled out: generation samples bases only."""
        logits, state = super().prefill_logits(prompt)
        return logits.index_fill(-1, SPECIALS.to(logits.device), float("-inf")), state

    def step_logits(self, tokens_t: Tensor, state: list[State]) -> tuple[Tensor, list[State]]:
        logits, state = super().step_logits(tokens_t, state)
        return logits.index_fill(-1, SPECIALS.to(logits.device), float("-inf")), state

    def generate(self, prompt: Tensor, max_new_tokens: int, **sampling: Any) -> Tensor:
        """TokenDecoder.generate, within max_length (the positions the filters were built for)."""
        if prompt.shape[1] + max_new_tokens > self.max_length:
            raise ValueError(
                f"prompt ({prompt.shape[1]}) + {max_new_tokens} new tokens exceeds max_length={self.max_length}"
            )
        return super().generate(prompt, max_new_tokens, **sampling)

    def on_predict_epoch_start(self) -> None:
        self.generated = []

    def predict_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        """Continue one prompt with the data module's sampling settings (not the checkpoint's hparams)."""
        prompt, index = batch
        data = self.trainer.datamodule
        out = self.generate(prompt, data.generate_tokens, temperature=data.temperature, top_k=data.top_k)
        sampling = f"temperature={data.temperature} top_k={data.top_k}"
        description = f"{prompt.shape[1]} prompt bases + {data.generate_tokens} sampled, {sampling}"
        name = data.item_names("predict")[int(index[0])]
        self.generated.append(SeqRecord(Seq(decode(out[0])), id=f"{name}_generated", description=description))
        return out

    def on_predict_epoch_end(self) -> None:
        path = self.run_file("generated.fasta", required=True)
        if path is not None:
            SeqIO.write(self.generated, path, "fasta")
            rank_zero_info(f"wrote {len(self.generated)} generated sequence(s) to {path}")


class GenomicsClassifier(GenomicsBackbone, ClassificationTask):
    monitor = "val/mcc"
    metrics = ("acc", "mcc", "f1")
    n_inputs = 2  # tokens, lengths
    data_links = {"n_classes": "n_classes", "max_length": "max_length"}

    def __init__(
        self,
        n_classes: int,
        max_length: int,
        pooling: str = "mean",
        head_dropout: float = 0.0,
        init_from: str | None = None,
        self_pretrain_steps: int = 0,
        backbone: BackboneConfig = DEFAULT_BACKBONE,
        **kwargs: Any,
    ) -> None:
        """A sequence classifier over DNA tokens, optionally initialised or self-pretrained (see the module doc).

        Args:
            n_classes: number of classes (the command line takes it from the data).
            max_length: the longest sequence in tokens, the mixers' l_max (the command line takes it from the data).
            pooling: how the head pools the sequence: "mean" (valid positions), "last" (last valid) or "cls" (first).
            head_dropout: dropout before the linear head.
            init_from: a genomics checkpoint (pretrain or classify) whose backbone initialises this one (None: none).
            self_pretrain_steps: training steps of next-nucleotide self-pretraining before fine-tuning (0: none).
            backbone: the sequence backbone's settings (self-pretraining needs bidirectional false).
        """
        super().__init__(n_classes=n_classes, **kwargs)
        self.save_hyperparameters()
        self.build_backbone(backbone, max_length)
        self.head = ClassificationHead(self.backbone.d_model, n_classes, pooling, head_dropout)
        if self_pretrain_steps < 0:
            raise ValueError(f"self_pretrain_steps must be >= 0, got {self_pretrain_steps}")
        if self_pretrain_steps and not self.backbone.causal:
            raise ValueError(
                "self-pretraining predicts the next nucleotide and needs a causal backbone (bidirectional=False)"
            )
        self.lm_head = LMHead(self.backbone.d_model, VOCAB_SIZE) if self_pretrain_steps else None

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.hparams.init_from is not None:
            self.load_backbone(self.hparams.init_from)

    def forward(self, tokens: Tensor, lengths: Tensor | None = None) -> Tensor:
        """tokens (B, L), lengths (B,) -> logits (B, n_classes)."""
        return self.head(self.backbone(tokens, lengths=lengths), lengths)

    def batch_tokens(self, batch: tuple[Tensor, Tensor, Tensor]) -> int:
        return int(batch[1].sum())

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        if self.global_step < self.hparams.self_pretrain_steps:
            return self.self_pretrain_step(batch)
        return self.shared_step(batch, "train")

    def self_pretrain_step(self, batch: tuple[Tensor, Tensor, Tensor]) -> Tensor:
        """Next-nucleotide cross-entropy on a training batch (tokens (B, L) right-padded; labels unused),
        logged as `self_pretrain/bpb`. Right padding cannot reach valid positions of a causal backbone."""
        tokens = batch[0]
        logits = self.lm_head(self.backbone(tokens[:, :-1]))  # (B, L - 1, V)
        loss = F.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten(), ignore_index=PAD)
        self.log("self_pretrain/bpb", loss / math.log(2), prog_bar=True)
        return loss

    def configure_optimizers(self) -> dict:
        """TaskModule's AdamW; with self-pretraining, warm-up + cosine over its steps, then afresh over the rest."""
        config = super().configure_optimizers()
        pretrain = self.hparams.self_pretrain_steps
        if not pretrain:
            return config
        total = int(self.trainer.estimated_stepping_batches)
        if total <= pretrain:
            raise ValueError(
                f"self_pretrain_steps={pretrain} leaves no fine-tuning: the fit has {total} training steps; "
                "raise trainer.max_steps / max_epochs or lower self_pretrain_steps"
            )
        opt, c = config["optimizer"], self.optim_config
        sched = restarting_schedule(opt, [pretrain, total - pretrain], c["warmup_steps"], c["min_lr_ratio"])
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def warmup_length(step: int, length: int, start: int, steps: int) -> int:
    """The window length at `step` of a sequence-length warm-up: start, 2 start, 4 start, ... (the ones shorter
    than `length`, each for an equal share of `steps`), then `length`; `length` when start is 0."""
    if start <= 0 or step >= steps or start >= length:
        return length
    stages = [start << i for i in range((length // start).bit_length()) if start << i < length]
    if any(length % s for s in stages):
        raise ValueError(f"length warm-up: window length {length} is not a power-of-two multiple of {start}")
    return stages[step * len(stages) // steps]
