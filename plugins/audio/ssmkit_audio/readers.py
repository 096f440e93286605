"""Audio files in, float32 mono waveforms at the task's sample rate out; every problem a `DataError` naming the file.

- `find_clips(root, labels)`: the WAV / FLAC / OGG / MP3 files of a folder with their labels, from the file name
  (FSDD: `<digit>_<speaker>_<index>.wav`, which also names the speaker) or from the sub-folder (`<label>/<file>`).
- `read_clip(path, sample_rate, wrong_rate, stereo)`: one file through soundfile (libsndfile 1.2 decodes all four
  formats). A file at another rate is resampled (`wrong_rate="resample"`, torchaudio's windowed-sinc resampler) or
  refused (`"refuse"`); several channels are averaged (`stereo="mix"`) or refused (`"refuse"`). A file libsndfile
  cannot open, a truncated one (fewer samples than its header declares), an empty one and one holding NaN / inf
  are refused. The caller says what was converted (`Clip.resampled_from`, `Clip.mixed`), so a folder of 16 kHz
  files gives one warning, not one per file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from ssmkit.data import DataError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
LABEL_SOURCES = ("auto", "filename", "folder")
WRONG_RATE = ("resample", "refuse")
STEREO = ("mix", "refuse")


@dataclass(frozen=True)
class ClipInfo:
    """A file of a folder: its label, and its speaker when the file name gives one (else None)."""

    path: Path
    label: str
    speaker: str | None


@dataclass(frozen=True)
class Clip:
    """A decoded file: samples (L,) float32 at the requested rate; the file's own rate if it was resampled, and
    whether its channels were mixed down."""

    samples: np.ndarray
    resampled_from: int | None = None
    mixed: bool = False


def audio_files(folder: Path) -> list[Path]:
    """The audio files (by suffix, any case) directly in `folder`, sorted."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def find_clips(root: str | Path, labels: str = "auto") -> list[ClipInfo]:
    """The labelled audio files under `root`. labels: "filename" (the label is the name up to the first '_', the
    speaker the field after it when there are three fields: `<label>_<speaker>_<index>`), "folder" (one
    sub-folder per label, speaker unknown), or "auto" (folder when `root` has sub-folders holding audio files)."""
    if labels not in LABEL_SOURCES:
        raise ValueError(f"labels must be one of {LABEL_SOURCES}, got {labels!r}")
    root = Path(root)
    if not root.is_dir():
        raise DataError("not a folder of audio files", source=root)
    folders = sorted(p for p in root.iterdir() if p.is_dir() and audio_files(p))
    if labels == "folder" or (labels == "auto" and folders):
        clips = [ClipInfo(path, folder.name, None) for folder in folders for path in audio_files(folder)]
    else:
        clips = [clip_from_name(path) for path in audio_files(root)]
    if not clips:
        raise DataError(f"no {' / '.join(AUDIO_SUFFIXES)} files (labels from the {labels})", source=root)
    return clips


def clip_from_name(path: Path) -> ClipInfo:
    """`<label>_<speaker>_<index>.<ext>` -> (label, speaker); `<label>_<anything>.<ext>` -> (label, no speaker)."""
    fields = path.stem.split("_")
    if len(fields) < 2 or not fields[0]:
        raise DataError("cannot take a label from the file name (expected <label>_<speaker>_<index>)", source=path)
    return ClipInfo(path, fields[0], fields[1] if len(fields) == 3 and fields[1] else None)


def read_clip(path: str | Path, sample_rate: int, wrong_rate: str = "resample", stereo: str = "mix") -> Clip:
    """One audio file -> `Clip` with samples (L,) float32 at `sample_rate` (see the module doc for the rules)."""
    if wrong_rate not in WRONG_RATE or stereo not in STEREO:
        raise ValueError(f"wrong_rate must be one of {WRONG_RATE} and stereo one of {STEREO}")
    samples, rate = decode(Path(path))
    mixed = samples.shape[1] > 1
    if mixed and stereo == "refuse":
        raise DataError(f"has {samples.shape[1]} channels; mono expected (stereo: mix averages them)", source=path)
    mono = samples.mean(1, dtype=np.float32)
    if rate == sample_rate:
        return Clip(mono, None, mixed)
    if wrong_rate == "refuse":
        raise DataError(
            f"sample rate {rate} Hz, expected {sample_rate} Hz (wrong_rate: resample converts)", source=path
        )
    resampled = AF.resample(torch.from_numpy(mono), rate, sample_rate).numpy()
    return Clip(resampled, rate, mixed)


def decode(path: Path) -> tuple[np.ndarray, int]:
    """(samples (L, channels) float32, sample rate); DataError for a file that is unreadable, truncated, empty or
    not finite."""
    try:
        info = sf.info(str(path))
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError) as exc:
        raise DataError(f"unreadable audio file: {exc}", source=path) from None
    short = [line.strip() for line in info.extra_info.splitlines() if "(should be" in line]
    if short or len(samples) < info.frames:
        what = f"libsndfile: {short[0]}" if short else f"{info.frames} samples declared"
        raise DataError(f"truncated: {len(samples)} samples read ({what})", source=path)
    if not len(samples):
        raise DataError("holds no samples", source=path)
    finite = np.isfinite(samples).all(1)
    if not finite.all():
        raise DataError("contains NaN or inf", source=path, position=int(np.flatnonzero(~finite)[0]))
    return samples, rate
