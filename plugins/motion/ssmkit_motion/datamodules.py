"""`MotionData`: labelled windows of motion clips in the model representation, for both motion tasks.

Source: `root`, a folder of DeepMimic JSON clips or of BVH files (one take per file, the label is the file name:
`ssmkit_motion.clips`), or nothing: the procedural actions (`ssmkit_motion.procedural`, 7 labels). Clips are
resampled to `fps` and turned into features (`ssmkit_motion.representation`), normalised by the mean and standard
deviation (floored at 0.01) of the training clips' frames.

A sample is `(features (window, n_features) float32, label)`. Training windows are drawn afresh every time (class
balanced: a label, then one of its clips): a random speed in `speed_range` (time-warp: the clip is read every
`speed` frames by linear interpolation, the per-frame velocities scaled by it) at a random offset; a clip shorter
than the window is padded by holding its first and last pose (zero velocity). With `mirror`, the training clips'
mirror images (left / right swapped) join them when the skeleton is symmetric (offsets within 2% of the body
height; DeepMimic's and the procedural humanoid are exactly).

Splits: procedural data generates separate clips for train, val and test (`n_clips` per action each, other
seeds), so val and test are unseen clips. A folder has one take per label, so val and test are fixed windows
(other offsets and speeds, drawn with `seed`) of the same takes: they measure fit to the takes, not generalisation
to new performers (README). `predict` serves `n_samples` windows of each label in `labels` (all when None) from the
test clips; the classifier classifies them, the generator generates one motion per window's label.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import Dataset

from ssmkit.data import BaseDataModule, DataError
from ssmkit_motion import representation
from ssmkit_motion.clips import Clip, label_of, motion_files, procedural_clips, read_clips, read_skeleton
from ssmkit_motion.deepmimic import HUMANOID
from ssmkit_motion.procedural import ACTIONS
from ssmkit_motion.skeleton import Motion, Skeleton

MIRROR_TOLERANCE = 0.02  # of the body height


def warp_window(features: np.ndarray, start: float, speed: float, window: int) -> np.ndarray:
    """`window` frames of a clip (T, D) read at times start + speed * k by linear interpolation; velocities scaled by
    `speed`; times outside the clip hold its first / last frame with zero velocity; contacts rounded to 0 / 1."""
    times = start + speed * np.arange(window)
    held = (times < 0) | (times > len(features) - 1)
    times = np.clip(times, 0, len(features) - 1)
    i0 = np.floor(times).astype(int)
    i1 = np.minimum(i0 + 1, len(features) - 1)
    w = (times - i0)[:, None]
    out = features[i0] * (1 - w) + features[i1] * w
    velocity = list(representation.VELOCITY_DIMS)
    out[:, velocity] *= speed
    out[np.ix_(held, velocity)] = 0.0
    out[:, -2:] = out[:, -2:].round()
    return out


def window_start(n_frames: int, speed: float, window: int, u: float) -> float:
    """A start time for `u` in [0, 1): anywhere the window fits in the clip, else anywhere the clip fits in it."""
    span = speed * (window - 1)
    return u * (n_frames - 1 - span)


class RandomWindows(Dataset):
    """`length` random time-warped windows per epoch (drawn with torch's global generator, so seeded runs repeat)."""

    def __init__(self, clips: list[Clip], classes: list[str], length: int, window: int, speeds: tuple, norm) -> None:
        self.by_label = [[c for c in clips if c.label == label] for label in classes]
        self.length, self.window, self.speeds, self.norm = length, window, speeds, norm

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        u = torch.rand(4).tolist()
        label = int(u[0] * len(self.by_label))
        clips = self.by_label[label]
        clip = clips[min(int(u[1] * len(clips)), len(clips) - 1)]
        speed = self.speeds[0] + u[2] * (self.speeds[1] - self.speeds[0])
        start = window_start(len(clip.features), speed, self.window, u[3])
        return torch.from_numpy(self.norm(warp_window(clip.features, start, speed, self.window))), label


def fixed_windows(
    clips: list[Clip], classes: list[str], n: int, window: int, speeds: tuple, seed: int
) -> list[tuple[np.ndarray, int, str]]:
    """`n` windows drawn as `RandomWindows` draws them, with their own generator: (features, label, name)."""
    rng = np.random.default_rng(seed)
    by_label = [[c for c in clips if c.label == label] for label in classes]
    out = []
    for i in range(n):
        label = i % len(classes)  # balanced
        clip = by_label[label][rng.integers(len(by_label[label]))]
        speed = rng.uniform(*speeds)
        start = window_start(len(clip.features), speed, window, rng.uniform())
        out.append((warp_window(clip.features, start, speed, window), label, f"{clip.name}@{start:.1f}x{speed:.2f}"))
    return out


class MotionData(BaseDataModule):
    def __init__(
        self,
        root: str | None = None,
        clips: list[str] | None = None,
        fps: float = 20.0,
        window: int = 40,
        speed_range: tuple[float, float] = (0.8, 1.25),
        mirror: bool = True,
        n_train: int = 2048,
        n_val: int = 256,
        n_test: int = 256,
        n_clips: int = 8,
        clip_seconds: float = 4.0,
        labels: str | list[str] | None = None,
        n_samples: int = 4,
        batch_size: int = 32,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        """Labelled motion windows in the model representation (see the module doc).

        Args:
            root: a folder of DeepMimic JSON clips or BVH files, one take per label (None: the procedural actions).
            clips: the labels to keep (None: all).
            fps: frames per second the clips are resampled to.
            window: frames per window.
            speed_range: lowest and highest time-warp speed of the windows.
            mirror: add the training clips' mirror images when the skeleton is symmetric.
            n_train: random training windows per epoch.
            n_val: fixed validation windows.
            n_test: fixed test windows.
            n_clips: procedural clips per action and split.
            clip_seconds: length of each procedural clip in seconds.
            labels: the labels predict serves, "walk,jump" or a list (None: all).
            n_samples: windows per requested label that predict serves.
            batch_size: windows per batch.
            num_workers: data loader worker processes.
            seed: seed of the procedural clips and of the fixed val / test / predict windows.
        """
        super().__init__(batch_size, num_workers, seed)
        if window < 2 or fps <= 0 or not 0 < speed_range[0] <= speed_range[1]:
            raise ValueError(
                f"need window >= 2, fps > 0, 0 < speed_range[0] <= [1]; got {window}, {fps}, {speed_range}"
            )
        self.root, self.clip_labels, self.fps, self.window = root, clips, fps, window
        self.speed_range, self.mirror = tuple(speed_range), mirror
        self.n_train, self.n_val, self.n_test = n_train, n_val, n_test
        self.n_clips, self.clip_seconds, self.n_samples = n_clips, clip_seconds, n_samples
        self.labels = labels.split(",") if isinstance(labels, str) else labels
        self.names: dict[str, list[str]] = {}

    # ---- what the models need to know, cheap -------------------------------------------------------------------

    @cached_property
    def skeleton(self) -> Skeleton:
        return HUMANOID if self.root is None else read_skeleton(self.root)

    @property
    def classes(self) -> list[str]:
        if self.root is None:
            return [a for a in ACTIONS if self.clip_labels is None or a in self.clip_labels]
        found = sorted({label_of(p) for p in motion_files(self.root)[1]})
        return [label for label in found if self.clip_labels is None or label in self.clip_labels]

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_features(self) -> int:
        return representation.n_features(self.skeleton)

    # ---- clips and normalisation ----------------------------------------------------------------------------------

    @cached_property
    def source_clips(self) -> tuple[list[Clip], list[Clip]]:
        """(a folder's clips, their mirror images where allowed); procedural data: ([], [])."""
        if self.root is None:
            return [], []
        min_seconds = 2 * self.window * self.speed_range[1] / self.fps
        clips, mirrored = read_clips(self.root, self.fps, min_seconds, self.clip_labels, self.mirrors())
        rank_zero_info(f"{self.root}: {len(clips)} clip(s) at {self.fps:g} fps, {len(mirrored)} mirrored")
        return clips, mirrored

    def mirrors(self) -> bool:
        """Whether mirroring is on and the skeleton allows it (logged when it does not)."""
        error = self.skeleton.mirror_error()
        if self.mirror and error > MIRROR_TOLERANCE:
            rank_zero_info(f"no mirroring: the skeleton's left / right offsets differ by {error:.1%} of its height")
        return self.mirror and error <= MIRROR_TOLERANCE

    @cached_property
    def split_clips(self) -> dict[str, list[Clip]]:
        """The clips of each split (see the module doc)."""
        if self.root is not None:
            clips, mirrored = self.source_clips
            return {"train": clips + mirrored, "val": clips, "test": clips}
        mirror = self.mirrors()
        args = (self.n_clips, self.clip_seconds, self.fps)
        return {
            "train": procedural_clips(*args, self.seed, mirror=mirror),
            "val": procedural_clips(*args, self.seed + 1_000_001),
            "test": procedural_clips(*args, self.seed + 2_000_002),
        }

    @cached_property
    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) of the training clips' frames, (n_features,) each; std floored at 0.01."""
        frames = np.concatenate([c.features for c in self.split_clips["train"]])
        return frames.mean(0), np.maximum(frames.std(0), 0.01)

    def normalize(self, features: np.ndarray) -> np.ndarray:
        mean, std = self.stats
        return ((features - mean) / std).astype(np.float32)

    def denormalize(self, features: np.ndarray) -> np.ndarray:
        mean, std = self.stats
        return np.asarray(features, np.float64) * std + mean

    def to_motion(self, features: np.ndarray) -> Motion:
        """Normalised model output (T, n_features) -> Motion at `fps` (for BVH, GIF)."""
        return representation.to_motion(self.denormalize(features), self.skeleton, self.fps)

    # ---- splits ----------------------------------------------------------------------------------------------

    def build(self, stage: str) -> dict[str, Dataset]:
        if stage == "predict":
            return {"predict": self.predict_windows()}
        if "train" in self.datasets:
            return {}
        clips, classes = self.split_clips, self.classes
        self.check_labels(clips)
        datasets: dict[str, Dataset] = {
            "train": RandomWindows(clips["train"], classes, self.n_train, self.window, self.speed_range, self.normalize)
        }
        for split, n, offset in (("val", self.n_val, 1), ("test", self.n_test, 2)):
            windows = fixed_windows(clips[split], classes, n, self.window, self.speed_range, self.seed + offset)
            datasets[split] = [(torch.from_numpy(self.normalize(f)), label) for f, label, _ in windows]
            self.names[split] = [name for *_, name in windows]
        return datasets

    def check_labels(self, clips: dict[str, list[Clip]]) -> None:
        for split, members in clips.items():
            missing = sorted(set(self.classes) - {c.label for c in members})
            if missing:
                raise DataError(f"the {split} clips hold no {missing}", source=self.root or "procedural actions")

    def requested_labels(self) -> list[int]:
        """Class indices of `labels` (all classes when None); an unknown label is a DataError."""
        if self.labels is None:
            return list(range(self.n_classes))
        unknown = [label for label in self.labels if label not in self.classes]
        if unknown:
            raise DataError(f"unknown label(s) {unknown}; known: {', '.join(self.classes)}", source="--data.labels")
        return [self.classes.index(label) for label in self.labels]

    def predict_windows(self) -> list[tuple[torch.Tensor, int]]:
        """`n_samples` test windows of each requested label."""
        wanted = self.requested_labels()
        windows = fixed_windows(
            self.split_clips["test"],
            self.classes,
            self.n_samples * self.n_classes,
            self.window,
            self.speed_range,
            self.seed + 3,
        )
        chosen = [w for label in wanted for w in [w for w in windows if w[1] == label][: self.n_samples]]
        self.names["predict"] = [name for *_, name in chosen]
        return [(torch.from_numpy(self.normalize(f)), label) for f, label, _ in chosen]

    def item_names(self, split: str) -> list[str]:
        """Names of the windows of the split serving `split`: `<clip>@<start>x<speed>`."""
        return self.names[self.serving_split(split)[0]]

    def real_windows(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Every window of a fixed split ("val" / "test") stacked: ((N, window, n_features), labels (N,))."""
        self.setup("fit")
        windows = self.serving_split(split)[1]
        return torch.stack([f for f, _ in windows]), torch.tensor([label for _, label in windows])

    def describe(self) -> str:
        source = Path(self.root).name if self.root else "procedural actions"
        return (
            f"{source}: {self.n_classes} labels, {self.window} frames at {self.fps:g} fps, {self.n_features} features"
        )
