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
default the last speaker in sorted order is the test speaker and the one before it the validation speaker;
`val_speakers: []` trains on every speaker but the test ones and validates on a stratified `val_fraction` of their
clips); otherwise a stratified `val_fraction` of the clips is the validation split (`stratified_split`), which then also
serves test. `predict_path` (a file or a folder) gives unlabelled clips to `predict`; without it predict serves
the test split.

Training (`augment.py`): with `augment`, each training clip is perturbed afresh at every draw (speed and pitch by
resampling, gain, a time shift, noise); val and test clips never are. With `bucket`, training batches hold clips
of similar length (less padding for the raw-sample models to pay for).
"""

from __future__ import annotations

import warnings
from collections import Counter
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import Dataset
from torchdata.stateful_dataloader import StatefulDataLoader

from ssmkit.data import BaseDataModule, DataError, PadCollate, group_split, stratified_split, time_split
from ssmkit_audio import mulaw, readers
from ssmkit_audio.augment import AugmentedClips, ClipAugmentation, LengthBatches
from ssmkit_audio.degrade import Degradation, DegradationRange, compression_level
from ssmkit_audio.synthetic import N_DIGITS, synthetic_digits, synthetic_music

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
        trim_db: float | None = None,
        val_speakers: list[str] | None = None,
        test_speakers: list[str] | None = None,
        val_fraction: float = 0.2,
        predict_path: str | None = None,
        n_synthetic: int = 1200,
        n_speakers: int = 6,
        augment: bool = False,
        speed: float = 0.15,
        shift_seconds: float = 0.1,
        gain_db: float = 6.0,
        snr_db: tuple[float, float] | None = (20.0, 40.0),
        bucket: bool = False,
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
            trim_db: cut leading and trailing silence: the 10 ms frames more than this many dB below the clip's
                loudest frame (`trim_silence`, on every split alike; None: keep it).
            val_speakers: held-out validation speakers (None: the second-last speaker in sorted order, when known;
                []: no validation speaker, val is a stratified `val_fraction` of the training speakers' clips).
            test_speakers: held-out test speakers (None: the last speaker in sorted order, when known).
            val_fraction: the stratified share of clips for validation when the split is not by speaker.
            predict_path: an audio file or folder of clips to classify (None: predict serves the test split, or val).
            n_synthetic: synthetic clips to generate (root None).
            n_speakers: synthetic voices (root None).
            augment: perturb every training clip afresh at every draw (`augment.perturb`: speed, gain, time
                shift, noise); val and test clips never are.
            speed: with `augment`, speed and pitch change by a factor uniform in [1 - speed, 1 + speed].
            shift_seconds: with `augment`, up to this much silence is put in front of a clip.
            gain_db: with `augment`, a gain uniform in [-gain_db, gain_db] dB.
            snr_db: with `augment`, white noise at an SNR (dB) uniform in this range (None: no noise).
            bucket: training batches of clips of similar length (`augment.LengthBatches`), to cut padding.
            batch_size: samples per batch.
            num_workers: loader processes (0: load in the main process).
            seed: the data's own randomness (splits, generated data, augmentation), apart from the training seed.
        """
        super().__init__(batch_size, num_workers, seed)
        if wrong_rate not in readers.WRONG_RATE or stereo not in readers.STEREO:
            raise ValueError(f"wrong_rate must be one of {readers.WRONG_RATE} and stereo one of {readers.STEREO}")
        snr = None if snr_db is None else (float(snr_db[0]), float(snr_db[1]))
        self.augmentation = ClipAugmentation(speed, shift_seconds, gain_db, snr) if augment else None
        self.bucket = bucket
        self.root, self.labels, self.sample_rate = root, labels, sample_rate
        self.wrong_rate, self.stereo, self.max_seconds, self.normalize = wrong_rate, stereo, max_seconds, normalize
        self.trim_db = trim_db
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
        datasets = {split: [(waveforms[i], int(labels[i])) for i in idx] for split, idx in parts.items()}
        if self.augmentation is not None:  # the train split only
            datasets["train"] = AugmentedClips(
                datasets["train"], self.augmentation, self.sample_rate, self.max_length, self.seed
            )
        return datasets

    def dataloader(self, name: str) -> StatefulDataLoader:
        """The kit's loaders; with `bucket`, the train loader's batches are `LengthBatches`."""
        if name != "train" or not self.bucket:
            return super().dataloader(name)
        dataset = self.serving_split("train")[1]
        clips = dataset.samples if isinstance(dataset, AugmentedClips) else dataset
        batches = LengthBatches(
            [len(w) for w, _ in clips],
            self.batch_size,
            torch.Generator().manual_seed(torch.initial_seed()),  # seeded by the run's seed, as the kit's shuffling
        )
        return StatefulDataLoader(
            dataset,
            batch_sampler=batches,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            collate_fn=self.collate_fn,
        )

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
        return predict_files(self.predict_path)

    def read(self, paths: list[Path], source: str) -> list[Tensor]:
        """Decode, convert (one warning per kind of conversion), cut and normalise the clips of `paths`."""
        waveforms = read_waveforms(paths, self.sample_rate, self.wrong_rate, self.stereo, source)
        return self.prepare(waveforms, source)

    def prepare(self, waveforms: list[Tensor], source: str) -> list[Tensor]:
        """Trim silence (`trim_db`), cut each clip to `max_length` samples and (with `normalize`) scale it to peak 1
        (silence stays silent)."""
        if self.trim_db is not None:
            waveforms = [trim_silence(w, self.sample_rate, self.trim_db) for w in waveforms]
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
            train = sorted(set(known) - set(val) - set(test))
            if not val:
                parts = self.held_in_val(labels, speakers, test, source)
                val_text = f"a stratified {self.val_fraction} of the training speakers' clips"
            else:
                parts, val_text = group_split(speakers, val, test, source), str(list(val))
            rank_zero_info(f"{source}: split by speaker: train {train}, val {val_text}, test {list(test)}")
            return parts
        if self.val_speakers is not None or self.test_speakers is not None:
            raise DataError("give both val_speakers and test_speakers (or neither)", source=source)
        train, val = stratified_split(labels, self.val_fraction, self.seed)
        rank_zero_info(f"{source}: {len(known) or 'unknown'} speaker(s): a stratified {self.val_fraction} is val")
        return {"train": train, "val": val}

    def held_in_val(
        self, labels: np.ndarray, speakers: list[str | None], test: list[str], source: str
    ) -> dict[str, np.ndarray]:
        """`val_speakers: []`: test holds the `test` speakers' clips, val a stratified `val_fraction` of the other
        speakers' clips (so every speaker but the test ones is trained on), train the rest."""
        if not test:
            raise DataError("val_speakers is empty, so test_speakers must name at least one speaker", source=source)
        parts = group_split(speakers, [], test, source)
        held = parts["train"]
        train, val = stratified_split(labels[held], self.val_fraction, self.seed)
        return {"train": held[train], "val": held[val], "test": parts["test"]}


def trim_silence(waveform: Tensor, sample_rate: int, top_db: float, frame_ms: float = 10.0) -> Tensor:
    """waveform (L,) without its leading and trailing 10 ms frames whose RMS lies more than `top_db` dB below the
    loudest frame's (one frame of margin kept on each side); a silent clip is returned as it is."""
    frame = max(1, round(sample_rate * frame_ms / 1000))
    n = len(waveform) // frame
    if n < 3:
        return waveform
    rms = waveform[: n * frame].reshape(n, frame).square().mean(1).sqrt()
    loud = torch.nonzero(rms > rms.max() * 10 ** (-top_db / 20)).flatten()
    if not len(loud) or float(rms.max()) == 0:
        return waveform
    start, end = max(0, int(loud[0]) - 1) * frame, min(n, int(loud[-1]) + 2) * frame
    return waveform[start : end if end < n * frame else len(waveform)]


def read_waveforms(paths: list[Path], sample_rate: int, wrong_rate: str, stereo: str, source: str) -> list[Tensor]:
    """Decode the files of `paths` to mono (L_i,) float32 at `sample_rate` (`readers.read_clip`), with one warning
    per kind of conversion (resampling, mixing to mono) for the whole list."""
    clips = [readers.read_clip(p, sample_rate, wrong_rate, stereo) for p in paths]
    rates = Counter(c.resampled_from for c in clips if c.resampled_from is not None)
    if rates:
        warnings.warn(
            f"{source}: resampled {sum(rates.values())} clip(s) to {sample_rate} Hz "
            f"(from {dict(rates)} Hz; wrong_rate='refuse' stops instead)",
            stacklevel=3,
        )
    mixed = sum(c.mixed for c in clips)
    if mixed:
        warnings.warn(
            f"{source}: mixed {mixed} multi-channel clip(s) to mono (stereo='refuse' stops instead)", stacklevel=3
        )
    return [torch.from_numpy(c.samples) for c in clips]


def predict_files(path: str | Path) -> list[Path]:
    """The audio files of a folder (sorted), or the one file `path`; DataError when there are none."""
    path = Path(path)
    if path.is_dir():
        files = readers.audio_files(path)
        if not files:
            raise DataError(f"no {' / '.join(readers.AUDIO_SUFFIXES)} files", source=path)
        return files
    if not path.is_file():
        raise DataError("no such file or folder", source=path)
    return [path]


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
        if self.augmentation is not None or self.bucket:
            raise ValueError("augment and bucket are audio.classify's settings; mu-law windows take neither")
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


class DegradedCrops(Dataset):
    """Training pairs degraded afresh at every draw: a random crop of `clip` samples from one of the recordings
    (each at least `clip` long, picked in proportion to its length), degraded by a random `Degradation`.
    A sample is `(degraded (clip,), clean (clip,))` float32."""

    def __init__(
        self,
        recordings: list[np.ndarray],
        clip: int,
        n_items: int,
        degradations: DegradationRange,
        sample_rate: int,
        seed: int,
    ) -> None:
        self.recordings, self.clip, self.n_items = recordings, clip, n_items
        self.degradations, self.sample_rate = degradations, sample_rate
        lengths = np.array([len(r) - clip + 1 for r in recordings], dtype=float)
        self.weights = lengths / lengths.sum()
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.n_items

    def state_dict(self) -> dict[str, Any]:
        """The draws' generator state: `StatefulDataLoader` saves it in checkpoints, so a resumed run draws on."""
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        recording = self.recordings[self.rng.choice(len(self.recordings), p=self.weights)]
        start = int(self.rng.integers(len(recording) - self.clip + 1))
        degradation = self.degradations.draw(self.rng, self.sample_rate)
        degraded, clean = degradation.apply(recording[start : start + self.clip], self.sample_rate)
        return torch.from_numpy(degraded), torch.from_numpy(clean)


class RestorationData(BaseDataModule):
    """`audio.restore`'s data: (degraded, clean) clips of music, degraded on the fly for training.

    Recordings: `root=None` gives the bundled synthetic music (`synthetic.synthetic_music`, `n_synthetic` clips of
    `clip_seconds`; whole clips are split train / val / test); `root` a folder of audio files (those matching one
    of the `include` patterns, e.g. `Kevin_MacLeod_*`), read as `audio.classify` reads them (resampled / mixed to
    mono with one warning, or refused; unreadable and truncated files are a `DataError`), each split in time:
    the first part trains, then `val_fraction`, and the last `test_fraction` of every recording is the test part
    (`ssmkit.data.time_split`), so test music is never heard in training. Val and test parts are cut into
    non-overlapping clips of `clip_seconds`.

    Degradation (`degrade.py`): training crops are drawn at random positions of the train parts at every step,
    scaled to a random peak, low-passed with probability `lowpass_prob` (cut-off uniform in `lowpass_hz`) and
    coded as MP3 at a bitrate uniform in `kbps` (a real soundfile / LAME round trip); val and test clips are coded
    once, at `eval_kbps` with no low-pass, at peak `eval_peak`. Batches are `(degraded (B, L), lengths (B,),
    clean (B, L))` (`PadCollate`). `predict` restores whole files (`predict_path`: a file or a folder; samples
    `(waveform (L_i,), index)`), or without one the test clips' degraded versions."""

    collate_fn = PadCollate(0.0)

    def __init__(
        self,
        root: str | None = None,
        include: list[str] | None = None,
        sample_rate: int = 22050,
        wrong_rate: str = "resample",
        stereo: str = "mix",
        clip_seconds: float = 2.0,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        n_synthetic: int = 200,
        kbps: tuple[float, float] = (16.0, 64.0),
        lowpass_prob: float = 0.5,
        lowpass_hz: tuple[float, float] = (4000.0, 10000.0),
        eval_kbps: float = 32.0,
        eval_peak: float = 0.7,
        predict_path: str | None = None,
        batch_size: int = 8,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        """Degraded / clean music clips from a folder or the synthetic generator (see the class doc).

        Args:
            root: a folder of WAV / FLAC / OGG / MP3 recordings (None: the bundled synthetic music).
            include: file-name patterns (fnmatch) of the recordings of `root` to use (None: every audio file).
            sample_rate: the rate in Hz every recording is brought to (and the model's); an MPEG rate (8 000 to
                48 000 Hz: 22 050 by default) so that MP3 can code it.
            wrong_rate: a file at another rate: "resample" (with one warning) or "refuse".
            stereo: a multi-channel file: "mix" (to mono, with one warning) or "refuse".
            clip_seconds: length of a training crop and of a val / test clip.
            val_fraction: the share of each recording (of the synthetic clips) after the train part for validation.
            test_fraction: the share at the end of each recording (of the synthetic clips) for test.
            n_synthetic: synthetic music clips to generate (root None).
            kbps: the range of MP3 bitrates of training pairs (uniform; LAME snaps to its table).
            lowpass_prob: the probability that a training clip is also low-passed before coding.
            lowpass_hz: the range of that low-pass's cut-off in Hz (uniform).
            eval_kbps: the MP3 bitrate of the val and test clips.
            eval_peak: the peak level of the val and test clips (training peaks are drawn in 0.3-0.95).
            predict_path: an audio file or a folder of files to restore whole (None: the test clips' degraded ones).
            batch_size: samples per batch.
            num_workers: loader processes (0: load in the main process).
            seed: the data's own randomness (synthetic music, crops, degradations), apart from the training seed.
        """
        super().__init__(batch_size, num_workers, seed)
        if wrong_rate not in readers.WRONG_RATE or stereo not in readers.STEREO:
            raise ValueError(f"wrong_rate must be one of {readers.WRONG_RATE} and stereo one of {readers.STEREO}")
        compression_level(eval_kbps, sample_rate)  # a ValueError for a rate MP3 cannot code
        self.root, self.include, self.sample_rate = root, include, sample_rate
        self.wrong_rate, self.stereo, self.clip_seconds = wrong_rate, stereo, clip_seconds
        self.val_fraction, self.test_fraction, self.n_synthetic = val_fraction, test_fraction, n_synthetic
        self.degradations = DegradationRange((0.3, 0.95), tuple(kbps), lowpass_prob, tuple(lowpass_hz))
        self.eval_degradation = Degradation(eval_peak, eval_kbps)
        self.predict_path = predict_path
        self.names: dict[str, list[str]] = {}

    @property
    def clip_samples(self) -> int:
        """Samples per training crop and val / test clip."""
        return int(self.clip_seconds * self.sample_rate)

    def item_names(self, split: str) -> list[str]:
        """Names of the items of the split that serves `split`: `<file stem>@<start>s`, `synthetic_<i>`, or the
        predicted files' names."""
        return self.names[self.serving_split(split)[0]]

    def build(self, stage: str) -> dict[str, Dataset]:
        if stage == "predict":
            return {"predict": self.predict_set()}
        if "train" in self.datasets:
            return {}
        parts = self.recording_parts()
        datasets: dict[str, Dataset] = {"train": self.train_set([part for part, _, _ in parts["train"]])}
        for split in ("val", "test"):
            clips = [clip for part, name, offset in parts[split] for clip in self.cut(part, name, offset)]
            pairs = [self.eval_degradation.apply(c.numpy(), self.sample_rate) for c, _ in clips]
            datasets[split] = [(torch.from_numpy(d), torch.from_numpy(c)) for d, c in pairs]
            self.names[split] = [name for _, name in clips]
        return datasets

    def predict_set(self) -> list[tuple[Tensor, int]]:
        """Whole files of `predict_path` (or the degraded test clips), as (waveform (L_i,), index)."""
        if self.predict_path is None:
            self.setup("test")
            self.names["predict"] = list(self.names["test"])
            return [(degraded, i) for i, (degraded, _) in enumerate(self.datasets["test"])]
        paths = predict_files(self.predict_path)
        self.names["predict"] = [p.name for p in paths]
        waveforms = read_waveforms(paths, self.sample_rate, self.wrong_rate, self.stereo, str(self.predict_path))
        return [(w, i) for i, w in enumerate(waveforms)]

    def recording_parts(self) -> dict[str, list[tuple[Tensor, str, int]]]:
        """{split: [(part (L,), recording name, the part's first sample in the recording)]}: synthetic clips go
        whole to one split each, recordings are split in time."""
        if self.root is None:
            clips = synthetic_music(self.n_synthetic, self.clip_seconds, self.sample_rate, self.seed)
            cuts = time_split(len(clips), self.val_fraction, self.test_fraction, "synthetic music")
            named = [(torch.from_numpy(c), f"synthetic_{i}", 0) for i, c in enumerate(clips)]
            return {split: named[cut] for split, cut in cuts.items()}
        paths = self.recording_files()
        waveforms = read_waveforms(paths, self.sample_rate, self.wrong_rate, self.stereo, str(self.root))
        parts: dict[str, list[tuple[Tensor, str, int]]] = {"train": [], "val": [], "test": []}
        for path, w in zip(paths, waveforms, strict=True):
            for split, cut in time_split(len(w), self.val_fraction, self.test_fraction, str(path)).items():
                parts[split].append((w[cut], path.name.split(".")[0], cut.start))
        return parts

    def recording_files(self) -> list[Path]:
        """The audio files of `root` matching `include` (all of them without patterns)."""
        root = Path(self.root)
        if not root.is_dir():
            raise DataError("not a folder of audio files", source=root)
        files = readers.audio_files(root)
        if self.include is not None:
            files = [f for f in files if any(fnmatch(f.name, pattern) for pattern in self.include)]
        if not files:
            raise DataError(f"no audio files match {self.include}", source=root)
        return files

    def cut(self, part: Tensor, name: str, offset: int) -> list[tuple[Tensor, str]]:
        """A part (L,) starting at sample `offset` of its recording -> its non-overlapping clips of `clip_samples`
        from its start, named `<name>@<start in the recording>s`."""
        n, rate = self.clip_samples, self.sample_rate
        return [(part[s : s + n], f"{name}@{(offset + s) / rate:.1f}s") for s in range(0, len(part) - n + 1, n)]

    def train_set(self, parts: list[Tensor]) -> DegradedCrops:
        """Random degraded crops of the train parts at least a clip long, as many per epoch as whole clips fit."""
        n = self.clip_samples
        long = [p.numpy() for p in parts if len(p) >= n]
        if not long:
            raise DataError(
                f"no train part holds a clip of {self.clip_seconds} s", source=str(self.root or "synthetic")
            )
        n_items = sum(len(p) // n for p in long)
        return DegradedCrops(long, n, n_items, self.degradations, self.sample_rate, self.seed)
