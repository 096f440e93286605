"""Labelled clips in the model representation: read from a folder (DeepMimic JSON or BVH) or generated.

A `Clip` is one take: its label, its name, and its features (T, n_features) at the data's frame rate. Clips are
resampled to that rate (root linear, rotations slerped). A looping DeepMimic clip ("Loop": "wrap") is one cycle:
it is tiled (its last frame dropped, each repeat moved by the first-to-last root displacement and heading change)
to at least `min_seconds`. Labels: the file name without its extension and a `humanoid3d_` prefix.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ssmkit.data import DataError
from ssmkit_motion import representation
from ssmkit_motion.bvh import read_bvh
from ssmkit_motion.deepmimic import HUMANOID, read_deepmimic
from ssmkit_motion.kinematics import axis_rotation
from ssmkit_motion.procedural import ACTIONS, generate_action, random_params
from ssmkit_motion.skeleton import Motion, Skeleton

DEEPMIMIC_SUFFIXES = (".txt", ".json")
PREFIX = "humanoid3d_"


@dataclass
class Clip:
    label: str
    name: str
    features: np.ndarray  # (T, n_features) float64


def label_of(path: Path) -> str:
    return path.stem.removeprefix(PREFIX)


def motion_files(root: str | Path) -> tuple[str, list[Path]]:
    """("deepmimic" | "bvh", the files of that kind in `root`, sorted)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(
            f"no such folder (a relative path starts at the current directory, {Path.cwd()}; the *_deepmimic configs "
            "expect the shared real data at ../shared/data/motion from the repo root: its PROVENANCE.md)",
            source=root,
        )
    bvh = sorted(root.glob("*.bvh"))
    deepmimic = sorted(p for p in root.iterdir() if p.suffix in DEEPMIMIC_SUFFIXES)
    if bvh and deepmimic:
        raise DataError("holds both BVH and DeepMimic files; give a folder of one kind", source=root)
    if not bvh and not deepmimic:
        raise DataError(f"no .bvh or DeepMimic ({', '.join(DEEPMIMIC_SUFFIXES)}) files", source=root)
    return ("bvh", bvh) if bvh else ("deepmimic", deepmimic)


def read_motion(path: Path, fps: float, min_seconds: float) -> Motion:
    """A file's motion at `fps`; looping DeepMimic cycles tiled to `min_seconds`."""
    if path.suffix == ".bvh":
        return read_bvh(path).resample(fps)
    motion, loop = read_deepmimic(path)
    if loop and motion.n_frames > 2:
        motion = tile_cycle(motion, min_seconds)
    return motion.resample(fps)


def read_skeleton(root: str | Path) -> Skeleton:
    """The skeleton of the clips in `root` (the first BVH file's; DeepMimic's humanoid)."""
    kind, files = motion_files(root)
    return read_bvh(files[0]).skeleton if kind == "bvh" else HUMANOID


def tile_cycle(motion: Motion, min_seconds: float) -> Motion:
    """Repeat a looping clip (frames 0..T-2, each repeat moved by the cycle's ground displacement and heading change)
    until it lasts at least `min_seconds`."""
    cycle = motion.crop(0, motion.n_frames - 1)
    yaw = representation.heading(motion)
    turn = axis_rotation(yaw[-1] - yaw[0], "y")
    pivot = motion.root_position[0] * np.array([1.0, 0.0, 1.0])
    shift = (motion.root_position[-1] - motion.root_position[0]) * np.array([1.0, 0.0, 1.0])
    parts = [cycle]
    while sum(p.n_frames for p in parts) / motion.fps < min_seconds:
        last = parts[-1]
        rotations = last.rotations.copy()
        rotations[:, 0] = turn @ rotations[:, 0]
        root = (last.root_position - pivot) @ turn.T + pivot + shift
        pivot = pivot + shift
        parts.append(replace(last, root_position=root, rotations=rotations))
    return replace(
        motion,
        root_position=np.concatenate([p.root_position for p in parts]),
        rotations=np.concatenate([p.rotations for p in parts]),
    )


def read_clips(
    root: str | Path, fps: float, min_seconds: float, labels: list[str] | None = None, mirror: bool = False
) -> tuple[list[Clip], list[Clip]]:
    """(the clips of a folder as features, their mirror images if `mirror` else []); `labels` keeps only those
    (each must occur)."""
    _, files = motion_files(root)
    found = {label_of(p) for p in files}
    unknown = sorted(set(labels or []) - found)
    if unknown:
        raise DataError(f"unknown label(s) {unknown}; the folder holds {sorted(found)}", source=root)
    clips, mirrored = [], []
    for path in (p for p in files if labels is None or label_of(p) in labels):
        motion = read_motion(path, fps, min_seconds)
        clips.append(Clip(label_of(path), path.name, clip_features(motion, path)))
        if mirror:
            mirrored.append(Clip(label_of(path), f"{path.name}-mirrored", clip_features(motion.mirrored(), path)))
    return clips, mirrored


def clip_features(motion: Motion, source: object) -> np.ndarray:
    """The representation of a motion; a clip too short for velocities is a DataError."""
    if motion.n_frames < 2:
        raise DataError(f"{motion.n_frames} frame(s) at {motion.fps:g} fps: too short", source=source)
    return representation.features(motion)


def procedural_clips(n_per_action: int, seconds: float, fps: float, seed: int, mirror: bool = False) -> list[Clip]:
    """`n_per_action` generated clips of each action (`ssmkit_motion.procedural`), parameters drawn with `seed`;
    with `mirror`, also their mirror images."""
    rng = np.random.default_rng(seed)
    clips = []
    for action in ACTIONS:
        for i in range(n_per_action):
            motion = generate_action(action, random_params(rng, action), seconds, fps)
            clips.append(Clip(action, f"{action}#{seed}-{i}", representation.features(motion)))
            if mirror:
                clips.append(Clip(action, f"{action}#{seed}-{i}-mirrored", representation.features(motion.mirrored())))
    return clips
