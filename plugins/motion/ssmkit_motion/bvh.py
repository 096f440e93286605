"""BVH reading and writing (Biovision hierarchy: CMU mocap and most animation tools).

`read_bvh(path) -> Motion`: any hierarchy; per joint 0-6 channels, Euler rotation channels in any order (the order
they are listed is the order the rotations apply: "Zrotation Yrotation Xrotation" is R = Rz @ Ry @ Rx), position
channels on any joint (they replace that joint's offset). End Sites become joints without channels, named
`<parent>_end`. `write_bvh(motion, path)` writes a motion with its skeleton's channels (a skeleton without any,
e.g. DeepMimic's, gets 6 root channels and "Zrotation Yrotation Xrotation" on every rotating joint); a rotating
joint must have three rotation channels to be written. Values are written with 8 decimals.

A malformed hierarchy, a channel count that does not match its names or a frame's width, a frame count that does
not match the lines, or a NaN value is a `DataError` naming the file, the line or frame, and the position.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ssmkit.data import DataError
from ssmkit_motion.kinematics import axis_rotation, matrix_to_euler
from ssmkit_motion.skeleton import POSITION_CHANNELS, ROTATION_CHANNELS, Motion, Skeleton

ROOT_CHANNELS = ("Xposition", "Yposition", "Zposition", "Zrotation", "Yrotation", "Xrotation")
JOINT_CHANNELS = ("Zrotation", "Yrotation", "Xrotation")


class _Tokens:
    """Whitespace tokens of the hierarchy with their line numbers; errors name the file and line."""

    def __init__(self, lines: list[str], source: Path) -> None:
        self.items = [(tok, n + 1) for n, line in enumerate(lines) for tok in line.split()]
        self.i, self.source = 0, source

    def error(self, message: str) -> DataError:
        line = self.items[min(self.i, len(self.items) - 1)][1] if self.items else 1
        return DataError(message, source=self.source, record=f"line {line}")

    def next(self, expected: str | None = None, what: str | None = None) -> str:
        """The next token; it must equal `expected` when given (`what` describes it for the error)."""
        if self.i >= len(self.items):
            raise self.error(f"malformed hierarchy: the file ends where {what or expected or 'more'} was expected")
        tok = self.items[self.i][0]
        if expected is not None and tok != expected:
            raise self.error(f"malformed hierarchy: expected {expected!r}, found {tok!r}")
        self.i += 1
        return tok

    def number(self) -> float:
        tok = self.next()
        try:
            return float(tok)
        except ValueError:
            self.i -= 1
            raise self.error(f"malformed hierarchy: expected a number, found {tok!r}") from None


def read_bvh(path: str | Path) -> Motion:
    """The motion of a BVH file (see the module doc); its skeleton keeps the file's channels."""
    path = Path(path)
    lines = path.read_text().splitlines()
    split = next((n for n, line in enumerate(lines) if line.strip() == "MOTION"), None)
    if split is None:
        raise DataError("no MOTION section", source=path)
    skeleton = _parse_hierarchy(_Tokens(lines[:split], path))
    values, frame_time = _parse_frames(lines, split, sum(len(c) for c in skeleton.channels), path)
    return channels_to_motion(skeleton, values, 1.0 / frame_time)


def _parse_hierarchy(tokens: _Tokens) -> Skeleton:
    tokens.next("HIERARCHY")
    tokens.next("ROOT")
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[tuple[str, ...]] = []
    _parse_joint(tokens, -1, names, parents, offsets, channels)
    if tokens.i != len(tokens.items):
        raise tokens.error(f"malformed hierarchy: {tokens.items[tokens.i][0]!r} after the root joint's closing brace")
    return Skeleton(names, parents, np.array(offsets), channels)


def _parse_joint(tokens: _Tokens, parent: int, names: list, parents: list, offsets: list, channels: list) -> None:
    name = tokens.next()
    if name in ("{", "}"):
        raise tokens.error("malformed hierarchy: a joint without a name")
    index = len(names)
    names.append(name)
    parents.append(parent)
    tokens.next("{")
    tokens.next("OFFSET")
    offsets.append([tokens.number() for _ in range(3)])
    channels.append(_parse_channels(tokens))
    while True:
        tok = tokens.next(what="JOINT, End Site or '}'")
        if tok == "}":
            return
        if tok == "JOINT":
            _parse_joint(tokens, index, names, parents, offsets, channels)
        elif tok == "End":
            tokens.next("Site")
            tokens.next("{")
            tokens.next("OFFSET")
            end = f"{name}_end" if f"{name}_end" not in names else f"{name}_end{len(names)}"
            names.append(end)
            parents.append(index)
            offsets.append([tokens.number() for _ in range(3)])
            channels.append(())
            tokens.next("}")
        else:
            tokens.i -= 1
            raise tokens.error(f"malformed hierarchy: expected JOINT, End Site or '}}', found {tok!r}")


def _parse_channels(tokens: _Tokens) -> tuple[str, ...]:
    if tokens.i < len(tokens.items) and tokens.items[tokens.i][0] != "CHANNELS":
        return ()
    tokens.next("CHANNELS")
    count = tokens.next()
    if not count.isdigit() or int(count) > 6:
        raise tokens.error(f"wrong channel count: CHANNELS {count!r} (0 to 6 expected)")
    found = []
    for k in range(int(count)):
        name = tokens.next()
        if name not in POSITION_CHANNELS + ROTATION_CHANNELS:
            raise tokens.error(f"wrong channel count: CHANNELS {count} lists {k} channel name(s), then {name!r}")
        found.append(name)
    return tuple(found)


def _parse_frames(lines: list[str], split: int, width: int, path: Path) -> tuple[np.ndarray, float]:
    """(values (T, width), frame time in s) of the MOTION section starting at line index `split`."""
    try:
        n_frames = int(lines[split + 1].split(":")[1])
        frame_time = float(lines[split + 2].split(":")[1])
    except (IndexError, ValueError):
        raise DataError("expected 'Frames: N' and 'Frame Time: t'", source=path, record=f"line {split + 2}") from None
    rows = [line for line in lines[split + 3 :] if line.strip()]
    if len(rows) != n_frames:
        raise DataError(f"'Frames: {n_frames}' but {len(rows)} frame lines", source=path)
    values = np.empty((n_frames, width))
    for t, row in enumerate(rows):
        fields = row.split()
        if len(fields) != width:
            raise DataError(
                f"wrong channel count: {len(fields)} values, the hierarchy declares {width} channels",
                source=path,
                record=f"frame {t} (line {split + 4 + t})",
                position=min(len(fields), width),
            )
        values[t] = [float(v) for v in fields]
        bad = np.flatnonzero(~np.isfinite(values[t]))
        if len(bad):
            raise DataError("NaN or inf value", source=path, record=f"frame {t}", position=int(bad[0]))
    if not frame_time > 0:
        raise DataError(f"frame time {frame_time} is not positive", source=path)
    return values, frame_time


def channels_to_motion(skeleton: Skeleton, values: np.ndarray, fps: float) -> Motion:
    """values: (T, C) channel values in the skeleton's channel order (angles in degrees) -> Motion."""
    n_frames, n_joints = len(values), skeleton.n_joints
    rotations = np.broadcast_to(np.eye(3), (n_frames, n_joints, 3, 3)).copy()
    translations = np.broadcast_to(skeleton.offsets, (n_frames, n_joints, 3)).copy()
    moved = np.zeros(n_joints, bool)
    column = 0
    for j, names in enumerate(skeleton.channels):
        for name in names:
            v = values[:, column]
            column += 1
            if name in POSITION_CHANNELS:
                translations[:, j, POSITION_CHANNELS.index(name)] = v
                moved[j] = True
            else:
                rotations[:, j] = rotations[:, j] @ axis_rotation(np.deg2rad(v), name[0].lower())
    root = int(np.flatnonzero(np.asarray(skeleton.parents) < 0)[0])
    root_position = translations[:, root].copy()
    non_root_moved = moved.copy()
    non_root_moved[root] = False
    return Motion(skeleton, root_position, rotations, fps, translations if non_root_moved.any() else None)


def motion_to_channels(motion: Motion, order: list[int] | None = None) -> tuple[list[tuple[str, ...]], np.ndarray]:
    """(channels per joint, values (T, C) with the joints' columns in `order` (default: index order)) writing
    `motion` (see the module doc for the default channels)."""
    skeleton = motion.skeleton
    channels = skeleton.channels if any(skeleton.channels) else default_channels(skeleton)
    columns = []
    for j in order if order is not None else range(skeleton.n_joints):
        names = channels[j]
        rotation_names = [n for n in names if n in ROTATION_CHANNELS]
        if rotation_names and len(rotation_names) != 3:
            raise ValueError(f"joint {skeleton.names[j]}: writing needs 3 rotation channels, has {rotation_names}")
        order = "".join(n[0] for n in rotation_names)
        angles = matrix_to_euler(motion.rotations[:, j], order) if rotation_names else None
        for name in names:
            if name in POSITION_CHANNELS:
                source = motion.root_position if skeleton.parents[j] < 0 else _translation(motion, j)
                columns.append(source[:, POSITION_CHANNELS.index(name)])
            else:
                columns.append(angles[:, rotation_names.index(name)])
    return channels, np.stack(columns, 1) if columns else np.zeros((motion.n_frames, 0))


def _translation(motion: Motion, j: int) -> np.ndarray:
    if motion.translations is not None:
        return motion.translations[:, j]
    return np.broadcast_to(motion.skeleton.offsets[j], (motion.n_frames, 3))


def default_channels(skeleton: Skeleton) -> list[tuple[str, ...]]:
    """6 channels on the root, 3 rotations on every other joint with children, none on leaves."""
    has_child = {p for p in skeleton.parents if p >= 0}
    return [
        ROOT_CHANNELS if p < 0 else JOINT_CHANNELS if j in has_child else () for j, p in enumerate(skeleton.parents)
    ]


def write_bvh(motion: Motion, path: str | Path) -> Path:
    """Write `motion` as a BVH file (folders created; joints in depth-first order, as BVH lists them, so a skeleton
    whose indices are not depth-first reads back in another order); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    skeleton = motion.skeleton
    children: dict[int, list[int]] = {}
    for j, p in enumerate(skeleton.parents):
        children.setdefault(p, []).append(j)
    channels, values = motion_to_channels(motion, _depth_first(children))
    lines = ["HIERARCHY"]
    for root in children[-1]:
        _write_joint(lines, skeleton, channels, children, root, 0)
    lines += ["MOTION", f"Frames: {motion.n_frames}", f"Frame Time: {1.0 / motion.fps:.8f}"]
    lines += [" ".join(f"{v:.8f}" for v in row) for row in values]
    path.write_text("\n".join(lines) + "\n")
    return path


def _depth_first(children: dict[int, list[int]]) -> list[int]:
    order: list[int] = []
    stack = list(reversed(children[-1]))
    while stack:
        j = stack.pop()
        order.append(j)
        stack.extend(reversed(children.get(j, [])))
    return order


def _write_joint(lines: list[str], skeleton: Skeleton, channels: list, children: dict, j: int, depth: int) -> None:
    pad = "\t" * depth
    offset = " ".join(f"{v:.8f}" for v in skeleton.offsets[j])
    if not channels[j] and not children.get(j) and skeleton.parents[j] >= 0:
        lines += [f"{pad}End Site", f"{pad}{{", f"{pad}\tOFFSET {offset}", f"{pad}}}"]
        return
    kind = "ROOT" if skeleton.parents[j] < 0 else "JOINT"
    lines += [f"{pad}{kind} {skeleton.names[j]}", f"{pad}{{", f"{pad}\tOFFSET {offset}"]
    lines.append(f"{pad}\tCHANNELS {len(channels[j])} {' '.join(channels[j])}".rstrip())
    for child in children.get(j, []):
        _write_joint(lines, skeleton, channels, children, child, depth + 1)
    lines.append(f"{pad}}}")
