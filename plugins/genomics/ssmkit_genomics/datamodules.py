"""Data modules of the genomics tasks (`ssmkit.data.BaseDataModule`s). With `root=None` each uses the bundled
synthetic generator (`ssmkit_genomics.synthetic`), so every task runs on a fresh machine; nothing is downloaded.

- `GenomeData` (pretrain): one corpus of token ids (records joined by [SEP]); the last `val_fraction` is
  held out. Training samples are random windows of `context_length + 1` tokens, reverse-complemented
  with probability 1/2 (`rc_augment`); validation (and test) tiles the held-out part. Predict yields prompts.
- `ClassificationData` (classify): a split folder (`train`, `dev` (the "val" split), optional `test`; CSV or
  labelled FASTA). Sequences longer than `max_length` are truncated or cut into windows (`overflow`), with a
  warning; batches are right-padded with [PAD] and carry lengths. Predict reads `predict_path` (else the
  test split, or val).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from ssmkit.data import BaseDataModule, DataError, PadCollate
from ssmkit_genomics import readers
from ssmkit_genomics.readers import Record
from ssmkit_genomics.synthetic import synthetic_classification, synthetic_genome
from ssmkit_genomics.tokenizer import PAD, SEP, reverse_complement

log = logging.getLogger(__name__)
Tensor = torch.Tensor
OVERFLOW = ("truncate", "window")
SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2}  # offsets to `seed` of the synthetic splits


class RandomWindows(Dataset):
    """`n` random windows of a token corpus: items (x (L,), y (L,)), y shifted one ahead."""

    def __init__(self, tokens: Tensor, context_length: int, n: int, rc_augment: bool) -> None:
        self.tokens, self.context_length, self.n, self.rc_augment = tokens, context_length, n, rc_augment

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        start = int(torch.randint(len(self.tokens) - self.context_length, ()))
        window = self.tokens[start : start + self.context_length + 1]
        if self.rc_augment and bool(torch.rand(()) < 0.5):
            window = reverse_complement(window)
        return window[:-1], window[1:]


class GenomeData(BaseDataModule):
    def __init__(
        self,
        root: str | None = None,
        context_length: int = 1024,
        train_windows: int = 4096,
        val_fraction: float = 0.05,
        val_windows: int = 64,
        rc_augment: bool = True,
        prompts: str | None = None,
        generate_tokens: int = 200,
        temperature: float = 1.0,
        top_k: int | None = None,
        synthetic_length: int = 1_000_000,
        batch_size: int = 16,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        """A genome corpus as random training windows and tiled held-out windows; prompts for predict.

        Args:
            root: a FASTA / GenBank / CSV file, or a folder (its train split, else its FASTA / GenBank files); None:
                a synthetic genome.
            context_length: tokens per window (the model reads the window and predicts it shifted one ahead).
            train_windows: random training windows per epoch.
            val_fraction: the share of the corpus (its end) held out for validation.
            val_windows: the most held-out windows validation tiles.
            rc_augment: reverse-complement each training window with probability 1/2.
            prompts: predict's prompts: a FASTA file or a DNA string (None: the starts of a few held-out windows).
            generate_tokens: bases sampled after each prompt in predict.
            temperature: sampling temperature in predict (1: the model's own distribution).
            top_k: sample among the k likeliest bases in predict (None: all).
            synthetic_length: bases of the synthetic genome (root None).
            batch_size: samples per batch.
            seed: the data's own randomness (splits, generated data), apart from the training seed.
            num_workers: loader processes (0: load in the main process).
        """
        super().__init__(batch_size, num_workers, seed)
        self.root, self.context_length = root, context_length
        self.train_windows, self.val_fraction, self.val_windows = train_windows, val_fraction, val_windows
        self.rc_augment, self.synthetic_length = rc_augment, synthetic_length
        self.prompts, self.generate_tokens, self.temperature, self.top_k = prompts, generate_tokens, temperature, top_k
        self.train_tokens: Tensor | None = None
        self.val_tokens: Tensor | None = None
        self.prompt_ids: list[str] = []

    def corpus_records(self) -> list[Record]:
        if self.root is None:
            return [Record("synthetic_genome", synthetic_genome(self.synthetic_length, seed=self.seed).sequence)]
        root = Path(self.root)
        if root.is_file():
            return readers.read_any(root)
        split = readers.find_split(root, "train")
        if split is not None:
            return readers.read_any(split)
        files = sorted(p for p in root.iterdir() if _is_sequence_file(p))
        if not files:
            raise DataError("no FASTA / GenBank files and no train split", source=root)
        return [r for f in files for r in readers.read_sequences(f)]

    def build(self, stage: str) -> dict[str, Dataset]:
        if stage == "predict":
            return {"predict": self.prompt_set()}
        self.load_corpus()
        # validation: consecutive non-overlapping windows of the held-out part (at most val_windows)
        n, length = min(self.val_windows, (len(self.val_tokens) - 1) // self.context_length), self.context_length
        tiles = self.val_tokens[: n * length + 1]
        return {
            "train": RandomWindows(self.train_tokens, self.context_length, self.train_windows, self.rc_augment),
            "val": TensorDataset(tiles[:-1].view(n, length), tiles[1:].view(n, length)),
        }

    def load_corpus(self) -> None:
        """The corpus as token ids, split into `train_tokens` and the held-out `val_tokens` (its last part)."""
        if self.train_tokens is not None:
            return
        source = str(self.root or "synthetic genome")
        ids = readers.encode_records(self.corpus_records(), source)
        corpus = torch.from_numpy(np.concatenate([np.append(x, SEP) for x in ids])[:-1])
        n_val = int(len(corpus) * self.val_fraction)
        if n_val < self.context_length + 1:
            raise DataError(
                f"the held-out part ({n_val} tokens = val_fraction {self.val_fraction} of {len(corpus)}) is "
                f"shorter than context_length + 1 = {self.context_length + 1}; lower context_length or raise "
                "val_fraction",
                source=source,
            )
        self.train_tokens, self.val_tokens = corpus[:-n_val], corpus[-n_val:]

    def prompt_set(self) -> list[tuple[Tensor, int]]:
        """(ids (T,), index) per prompt: `prompts` (a FASTA file or a DNA string), or without it the first
        `context_length // 4` bases of up to four held-out windows (named heldout_<i>), so predict always runs."""
        if self.prompts is not None:
            records = (
                readers.read_sequences(self.prompts)
                if Path(self.prompts).is_file()
                else [Record("prompt", self.prompts)]
            )
            self.prompt_ids = [r.id for r in records]
            ids = [torch.from_numpy(x) for x in readers.encode_records(records, f"prompts {self.prompts!r}")]
        else:
            self.load_corpus()
            length = max(1, self.context_length // 4)
            starts = range(0, min(4 * self.context_length, len(self.val_tokens) - length), self.context_length)
            ids = [self.val_tokens[s : s + length] for s in starts]
            self.prompt_ids = [f"heldout_{i}" for i in range(len(ids))]
        return [(x, i) for i, x in enumerate(ids)]

    def item_names(self, split: str) -> list[str]:
        """The prompts' names (FASTA ids; "prompt" for a DNA string) for "predict"."""
        return self.prompt_ids

    def predict_dataloader(self) -> DataLoader:
        """One prompt per batch (prompts differ in length): (ids (1, T), index (1,))."""
        return DataLoader(self.serving_split("predict")[1], batch_size=1)


class ClassificationData(BaseDataModule):
    collate_fn = PadCollate(PAD)  # samples (ids (L,), label) -> (tokens (B, L), lengths (B,), labels (B,))

    def __init__(
        self,
        root: str | None = None,
        max_length: int = 1024,
        overflow: str = "truncate",
        predict_path: str | None = None,
        n_synthetic: int = 4000,
        synthetic_length: int = 256,
        batch_size: int = 64,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        """Labelled DNA sequences of a split folder, or synthetic records, right-padded in batches.

        Args:
            root: a split folder (train / dev / test as .csv or labelled FASTA; dev is the val split); None: synthetic.
            max_length: the longest sequence in bases; also the model's (the command line links it).
            overflow: a longer sequence: "truncate" (keep its first `max_length` bases) or "window" (cut it into
                windows, each a sample with its label).
            predict_path: a CSV, FASTA or GenBank file to classify (None: predict serves the test split, or val).
            n_synthetic: synthetic training records; val and test get a quarter as many each (root None).
            synthetic_length: bases per synthetic record (root None).
            batch_size: samples per batch.
            seed: the data's own randomness (splits, generated data), apart from the training seed.
            num_workers: loader processes (0: load in the main process).
        """
        super().__init__(batch_size, num_workers, seed)
        if overflow not in OVERFLOW:
            raise ValueError(f"overflow must be one of {OVERFLOW}, got {overflow!r}")
        self.root, self.max_length, self.overflow, self.predict_path = root, max_length, overflow, predict_path
        self.n_synthetic, self.synthetic_length = n_synthetic, synthetic_length
        self.names: dict[str, list[str]] = {}

    @property
    def n_classes(self) -> int:
        """1 + the largest label of the labelled splits (read now when a root is given); the synthetic task: 2."""
        if self.root is None:
            return 2
        self.setup("fit")
        return 1 + max(int(label) for split in ("train", "val", "test") for _, label in self.datasets.get(split, []))

    def split_records(self, split: str) -> list[Record] | None:
        """Labelled records of a split, or None for a missing optional `test` split."""
        if self.root is None:
            n = self.n_synthetic if split == "train" else max(1, self.n_synthetic // 4)
            return synthetic_classification(n, self.synthetic_length, seed=self.seed + SPLIT_SEEDS[split])
        path = readers.find_split(self.root, split)
        if path is None and split != "test":
            name = readers.SPLIT_FILES[split]
            raise FileNotFoundError(f"{self.root}: no {name}.csv or {name}.fa[sta][.gz] (the {split} split)")
        return None if path is None else readers.read_labelled(path)

    def build(self, stage: str) -> dict[str, Dataset]:
        if stage == "predict" and self.predict_path is not None:
            return {"predict": self.samples("predict", readers.read_any(self.predict_path), self.predict_path)}
        if "train" in self.datasets:  # the labelled splits are built at once; a missing test stays missing
            return {}
        # (without predict_path, predict is served by the test split, or val)
        splits = {split: self.split_records(split) for split in ("train", "val", "test")}
        source = self.root or "synthetic"
        return {s: self.samples(s, records, f"{source} {s}") for s, records in splits.items() if records is not None}

    def samples(self, split: str, records: list[Record], source: str) -> list[tuple[np.ndarray, int]]:
        """(ids, label) samples of a split (label -1 where the file has none); their names go to `self.names`."""
        named = self.fit_length(records, readers.encode_records(records, str(source)))
        self.names[split] = [name for name, _, _ in named]
        return [(x, label) for _, x, label in named]

    def item_names(self, split: str) -> list[str]:
        """Record ids of the samples of the split that serves `split` (`id:start-end` for windows)."""
        return self.names[self.serving_split(split)[0]]

    def fit_length(self, records: list[Record], ids: list[np.ndarray]) -> list[tuple[str, np.ndarray, int]]:
        """(id, ids, label) samples with at most `max_length` tokens each; a warning counts the long ones."""
        samples, n_long = [], 0
        for record, x in zip(records, ids, strict=True):
            label = -1 if record.label is None else record.label
            if len(x) <= self.max_length:
                samples.append((record.id, x, label))
                continue
            n_long += 1
            starts = range(0, len(x), self.max_length) if self.overflow == "window" else [0]
            for s in starts:
                window = x[s : s + self.max_length]
                samples.append((f"{record.id}:{s + 1}-{s + len(window)}", window, label))
        if n_long:
            log.warning(
                "%d sequence(s) longer than max_length=%d: %s", n_long, self.max_length,
                "truncated" if self.overflow == "truncate" else "cut into windows, one sample each",
            )  # fmt: skip
        return samples


def _is_sequence_file(path: Path) -> bool:
    try:
        readers.sequence_format(path)
    except DataError:
        return False
    return path.is_file()
