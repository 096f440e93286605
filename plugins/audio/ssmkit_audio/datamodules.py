"""`SpokenDigitsData`: labelled clips for `audio.classify`, as variable-length waveforms batched with their lengths.

A sample is `(waveform (L,) float32 at sample_rate, label)`; `PadCollate` right-pads a batch to
`(waveforms (B, L_max), lengths (B,), labels (B,))` and the model masks what lies beyond each length. Clips
longer than `max_seconds` are cut there (counted in the log); each clip is scaled to peak 1 (`normalize`), as
recordings and speakers differ in loudness.

- `root=None`: the bundled generator (`ssmkit_audio.synthetic`), `n_synthetic` clips of `n_speakers` voices.
- `root`: a folder of WAV / FLAC / OGG / MP3 files (`readers.find_clips`: labels from the file name, FSDD's
  `<digit>_<speaker>_<index>.wav`, or one sub-folder per label). Files at another rate are resampled with one
  warning, or refused (`wrong_rate`); multi-channel files are mixed to mono with one warning, or refused
  (`stereo`); unreadable and truncated files are refused by name (`ssmkit.data.DataError`).

Split (one rule, chosen by what is known): when every clip names its speaker and there are at least three (or
`val_speakers` and `test_speakers` are given), by speaker (`ssmkit.data.group_split`, leave-speakers-out: by
default the last speaker in sorted order is the test speaker and the one before it the validation speaker);
otherwise a stratified `val_fraction` of the clips is the validation split (`stratified_split`), which then also
serves test. `predict_path` (a file or a folder) gives unlabelled clips to `predict`; without it predict serves
the test split.
"""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import Dataset

from ssmkit.data import BaseDataModule, DataError, PadCollate, group_split, stratified_split
from ssmkit_audio import mulaw, readers
from ssmkit_audio.synthetic import N_DIGITS, synthetic_digits

Tensor = torch.Tensor
Sample = tuple[Tensor, int]


class SpokenDigitsData(BaseDataModule):
    collate_fn = PadCollate(0.0)  # (waveform (L,), label) -> (waveforms (B, L), lengths (B,), labels (B,))

    def __init__(
        self,
        root: str | None = None,
        labels: str = "auto",
        sample_rate: int = 8000,
        wrong_rate: str = "resample",
        stereo: str = "mix",
        max_seconds: float = 2.0,
        normalize: bool = True,
        val_speakers: list[str] | None = None,
        test_speakers: list[str] | None = None,
        val_fraction: float = 0.2,
        predict_path: str | None = None,
        n_synthetic: int = 1200,
        n_speakers: int = 6,
        batch_size: int = 32,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        """Labelled clips of a folder of audio files, or synthetic spoken digits (see the module doc).

        Args:
            root: a folder of WAV / FLAC / OGG / MP3 files (None: the bundled synthetic clips).
            labels: "filename" (`<label>_<speaker>_<index>`), "folder" (a sub-folder per label) or "auto" (folder
                when sub-folders hold audio files, else filename).
            sample_rate: the rate in Hz every clip is brought to (and the model's).
            wrong_rate: a file at another rate: "resample" (with one warning) or "refuse".
            stereo: a multi-channel file: "mix" (to mono, with one warning) or "refuse".
            max_seconds: longer clips are cut to this many seconds (also the model's longest input).
            normalize: scale each clip to peak 1.
            val_speakers: held-out validation speakers (None: the second-last speaker in sorted order, when known).
            test_speakers: held-out test speakers (None: the last speaker in sorted order, when known).
            val_fraction: the stratified share of clips for validation when the split is not by speaker.
            predict_path: an audio file or folder of clips to classify (None: predict serves the test split, or val).
            n_synthetic: synthetic clips to generate (root None).
            n_speakers: synthetic voices (root None).
            batch_size: samples per batch.
            num_workers: loader processes (0: load in the main process).
            seed: the data's own randomness (splits, generated data), apart from the training seed.
        """
        super().__init__(batch_size, num_workers, seed)
        if wrong_rate not in readers.WRONG_RATE or stereo not in readers.STEREO:
            raise ValueError(f"wrong_rate must be one of {readers.WRONG_RATE} and stereo one of {readers.STEREO}")
        self.root, self.labels, self.sample_rate = root, labels, sample_rate
        self.wrong_rate, self.stereo, self.max_seconds, self.normalize = wrong_rate, stereo, max_seconds, normalize
        self.val_speakers, self.test_speakers, self.val_fraction = val_speakers, test_speakers, val_fraction
        self.predict_path, self.n_synthetic, self.n_speakers = predict_path, n_synthetic, n_speakers
        self.names: dict[str, list[str]] = {}
        self._clips: list[readers.ClipInfo] | None = None

    @property
    def clips(self) -> list[readers.ClipInfo]:
        """The labelled files of `root` (listed once; reading them waits for `setup`)."""
        if self._clips is None:
            self._clips = readers.find_clips(self.root, self.labels)
        return self._clips

    @property
    def classes(self) -> list[str]:
        if self.root is None:
            return [str(d) for d in range(N_DIGITS)]
        return sorted({clip.label for clip in self.clips})

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def max_length(self) -> int:
        """The longest clip in samples (`max_seconds` at `sample_rate`)."""
        return int(self.max_seconds * self.sample_rate)

    def item_names(self, split: str) -> list[str]:
        """The clips of the split that serves `split` (file names; `<speaker>_<index>` for synthetic clips)."""
        return self.names[self.serving_split(split)[0]]

    def build(self, stage: str) -> dict[str, Dataset]:
        if stage == "predict" and self.predict_path is not None:
            paths = self.predict_files()
            waveforms = self.read(paths, str(self.predict_path))
            self.names["predict"] = [p.name for p in paths]
            return {"predict": [(w, -1) for w in waveforms]}
        if "train" in self.datasets:  # the labelled splits are built at once
            return {}
        waveforms, labels, speakers, names = self.labelled()
        parts = self.split(labels, speakers)
        for split, idx in parts.items():
            self.names[split] = [names[i] for i in idx]
        return {split: [(waveforms[i], int(labels[i])) for i in idx] for split, idx in parts.items()}

    def labelled(self) -> tuple[list[Tensor], np.ndarray, list[str | None], list[str]]:
        """(waveforms [(L_i,)], labels (N,), speakers (None where unknown), names) of every labelled clip."""
        if self.root is None:
            clips, labels, speakers = synthetic_digits(self.n_synthetic, self.n_speakers, self.sample_rate, self.seed)
            names = [f"{speaker}_{i}" for i, speaker in enumerate(speakers)]
            return self.prepare([torch.from_numpy(c) for c in clips], "synthetic clips"), labels, speakers, names
        paths = [clip.path for clip in self.clips]
        labels = np.array([self.classes.index(clip.label) for clip in self.clips])
        speakers = [clip.speaker for clip in self.clips]
        return self.read(paths, str(self.root)), labels, speakers, [p.name for p in paths]

    def predict_files(self) -> list[Path]:
        path = Path(self.predict_path)
        if path.is_dir():
            files = readers.audio_files(path)
            if not files:
                raise DataError(f"no {' / '.join(readers.AUDIO_SUFFIXES)} files", source=path)
            return files
        if not path.is_file():
            raise DataError("no such file or folder", source=path)
        return [path]

    def read(self, paths: list[Path], source: str) -> list[Tensor]:
        """Decode, convert (one warning per kind of conversion), cut and normalise the clips of `paths`."""
        clips = [readers.read_clip(p, self.sample_rate, self.wrong_rate, self.stereo) for p in paths]
        rates = Counter(c.resampled_from for c in clips if c.resampled_from is not None)
        if rates:
            warnings.warn(
                f"{source}: resampled {sum(rates.values())} clip(s) to {self.sample_rate} Hz "
                f"(from {dict(rates)} Hz; wrong_rate='refuse' stops instead)",
                stacklevel=2,
            )
        mixed = sum(c.mixed for c in clips)
        if mixed:
            warnings.warn(
                f"{source}: mixed {mixed} multi-channel clip(s) to mono (stereo='refuse' stops instead)", stacklevel=2
            )
        return self.prepare([torch.from_numpy(c.samples) for c in clips], source)

    def prepare(self, waveforms: list[Tensor], source: str) -> list[Tensor]:
        """Cut each clip to `max_length` samples and (with `normalize`) scale it to peak 1 (silence stays silent)."""
        n_long = sum(len(w) > self.max_length for w in waveforms)
        if n_long:
            rank_zero_info(f"{source}: cut {n_long} clip(s) longer than {self.max_seconds} s to {self.max_seconds} s")
        waveforms = [w[: self.max_length] for w in waveforms]
        if self.normalize:
            waveforms = [w / w.abs().max().clamp_min(1e-3) for w in waveforms]
        return waveforms

    def split(self, labels: np.ndarray, speakers: list[str | None]) -> dict[str, np.ndarray]:
        """Indices of train / val (/ test): by speaker when known, else stratified (see the module doc)."""
        source = str(self.root or "synthetic clips")
        known = sorted(set(speakers)) if None not in speakers else []
        given = self.val_speakers is not None and self.test_speakers is not None
        if given or len(known) >= 3:
            if not known:
                raise DataError("val_speakers / test_speakers given, but the file names name no speaker", source=source)
            val = self.val_speakers if self.val_speakers is not None else [known[-2]]
            test = self.test_speakers if self.test_speakers is not None else [known[-1]]
            parts = group_split(speakers, val, test, source)
            train = sorted(set(known) - set(val) - set(test))
            rank_zero_info(f"{source}: split by speaker: train {train}, val {list(val)}, test {list(test)}")
            return parts
        if self.val_speakers is not None or self.test_speakers is not None:
            raise DataError("give both val_speakers and test_speakers (or neither)", source=source)
        train, val = stratified_split(labels, self.val_fraction, self.seed)
        rank_zero_info(f"{source}: {len(known) or 'unknown'} speaker(s): a stratified {self.val_fraction} is val")
        return {"train": train, "val": val}


class MuLawWindowsData(SpokenDigitsData):
    """`audio.generate`'s data: fixed windows of 8-bit mu-law tokens cut from the same clips as `SpokenDigitsData`
    reads (a WAV folder, or the bundled synthetic words), with the clip's digit for conditioning.

    A sample is `(tokens (window,) int64, length, label)`: each clip (peak-normalised, cut at `max_seconds`) is
    encoded by `torchaudio.functional.mu_law_encoding` and cut into non-overlapping windows of `window` samples
    from its start (the remainder shorter than a window is dropped); a clip shorter than one window gives one
    window padded with silence, and `length` says where its samples end (the loss ignores the padding).

    Split: FSDD-style names `<digit>_<speaker>_<index>` put indices below `test_indices` in test (FSDD's own rule:
    0-4), and a stratified `val_fraction` of the rest in val; other clips (synthetic, sub-folder labels), or any
    with `test_indices: 0`, are split as `SpokenDigitsData` splits them (by speaker when known). `predict` serves
    `n_generate` conditioning labels (0, 1, 2, ...), one generated clip each."""

    collate_fn = None  # samples are equal-length: the default collate stacks them

    def __init__(
        self, *args: Any, window: int = 4096, test_indices: int = 5, n_generate: int = 4, **kwargs: Any
    ) -> None:
        """Mu-law windows of the clips `SpokenDigitsData` reads (see the class doc).

        Args:
            window: samples per window (a multiple of SaShiMi's prod(pools)).
            test_indices: FSDD-style clips whose file index is below this are the test split (0: split as
                `SpokenDigitsData` splits).
            n_generate: clips `predict` generates, for labels 0, 1, 2, ...
            args: the settings of `SpokenDigitsData`.
            kwargs: the settings of `SpokenDigitsData`.
        """
        super().__init__(*args, **kwargs)
        self.window, self.test_indices, self.n_generate = window, test_indices, n_generate

    def build(self, stage: str) -> dict[str, Dataset]:
        if stage == "predict":
            return {"predict": [i % self.n_classes for i in range(self.n_generate)]}
        if "train" in self.datasets:
            return {}
        waveforms, labels, speakers, names = self.labelled()
        indices = [index_of(name) for name in names]
        if self.test_indices <= 0 or None in indices:
            parts = self.split(labels, speakers)
        else:
            test = np.array([i for i, index in enumerate(indices) if index < self.test_indices])
            rest = np.array([i for i, index in enumerate(indices) if index >= self.test_indices])
            if not len(test) or not len(rest):
                raise DataError(f"test_indices={self.test_indices} leaves a split empty", source=str(self.root))
            train, val = stratified_split(labels[rest], self.val_fraction, self.seed)
            parts = {"train": rest[train], "val": rest[val], "test": test}
            rank_zero_info(f"{self.root}: file indices < {self.test_indices} are test ({len(test)} clips)")
        datasets = {}
        for split, idx in parts.items():
            samples = [(w, length, int(labels[i])) for i in idx for w, length in self.windows(waveforms[i])]
            self.names[split] = [names[i] for i in idx]
            datasets[split] = samples
        return datasets

    def windows(self, waveform: Tensor) -> list[tuple[Tensor, int]]:
        """A clip -> [(tokens (window,), length)]: see the class doc."""
        tokens = mulaw.encode(waveform)
        if len(tokens) < self.window:
            padded = torch.full((self.window,), mulaw.SILENCE, dtype=torch.long)
            padded[: len(tokens)] = tokens
            return [(padded, len(tokens))]
        starts = range(0, len(tokens) - self.window + 1, self.window)
        return [(tokens[s : s + self.window], self.window) for s in starts]

    def unigram_bits(self) -> float:
        """Entropy (bits) of the training windows' mu-law histogram: the NLL of a context-free model."""
        self.setup("fit")
        return mulaw.unigram_bits(tokens[:length] for tokens, length, _ in self.datasets["train"])


def index_of(name: str) -> int | None:
    """The index of an FSDD-style name `<label>_<speaker>_<index>.<ext>`, else None."""
    fields = Path(name).stem.split("_")
    return int(fields[2]) if len(fields) == 3 and fields[2].isdigit() else None
