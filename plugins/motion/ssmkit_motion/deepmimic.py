"""DeepMimic motion clips (JSON `{"Loop": ..., "Frames": [[...], ...]}`) on the DeepMimic humanoid.

The skeleton is DeepMimic's `data/characters/humanoid3d.txt` (xbpeng/DeepMimic, MIT): 15 joints, y-up, facing +x,
right side +z, metres; knees and elbows are revolute about their z axis, wrists fixed (no rotation). `HUMANOID`
copies its joint names, parents and attachment offsets (`AttachX/Y/Z`; every `AttachTheta` is 0).

A frame is `[duration, root position (3), root rotation (w, x, y, z), then per joint in id order: a quaternion
(w, x, y, z) for a spherical joint, an angle (rad) for a revolute one, nothing for a fixed one]`: 44 numbers.
The root pose is in world coordinates, the others are local. A frame of another width, a NaN, or a file that is
not such JSON is a `DataError` naming the file, the frame and the position.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ssmkit.data import DataError
from ssmkit_motion.bvh import JOINT_CHANNELS, ROOT_CHANNELS
from ssmkit_motion.kinematics import axis_rotation, quaternion_to_matrix
from ssmkit_motion.skeleton import Motion, Skeleton

# name, parent, attachment offset, type (DeepMimic humanoid3d.txt)
JOINTS = (
    ("root", -1, (0.0, 0.0, 0.0), "none"),
    ("chest", 0, (0.0, 0.236151, 0.0), "spherical"),
    ("neck", 1, (0.0, 0.223894, 0.0), "spherical"),
    ("right_hip", 0, (0.0, 0.0, 0.084887), "spherical"),
    ("right_knee", 3, (0.0, -0.421546, 0.0), "revolute"),
    ("right_ankle", 4, (0.0, -0.40987, 0.0), "spherical"),
    ("right_shoulder", 1, (-0.02405, 0.2435, 0.18311), "spherical"),
    ("right_elbow", 6, (0.0, -0.274788, 0.0), "revolute"),
    ("right_wrist", 7, (0.0, -0.258947, 0.0), "fixed"),
    ("left_hip", 0, (0.0, 0.0, -0.084887), "spherical"),
    ("left_knee", 9, (0.0, -0.421546, 0.0), "revolute"),
    ("left_ankle", 10, (0.0, -0.40987, 0.0), "spherical"),
    ("left_shoulder", 1, (-0.02405, 0.2435, -0.18311), "spherical"),
    ("left_elbow", 12, (0.0, -0.274788, 0.0), "revolute"),
    ("left_wrist", 13, (0.0, -0.258947, 0.0), "fixed"),
)
DOFS = {"none": 0, "spherical": 4, "revolute": 1, "fixed": 0}
FRAME_WIDTH = 1 + 3 + 4 + sum(DOFS[kind] for *_, kind in JOINTS)  # 44
HUMANOID = Skeleton(
    names=[name for name, *_ in JOINTS],
    parents=[parent for _, parent, *_ in JOINTS],
    offsets=np.array([offset for _, _, offset, _ in JOINTS]),
    channels=[ROOT_CHANNELS if kind == "none" else () if kind == "fixed" else JOINT_CHANNELS for *_, kind in JOINTS],
)


def read_deepmimic(path: str | Path) -> tuple[Motion, bool]:
    """(motion at the file's frame rate, whether it loops: "Loop": "wrap")."""
    path = Path(path)
    try:
        clip = json.loads(path.read_text())
        frames = clip["Frames"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(f"not a DeepMimic motion file ({type(exc).__name__}: {exc})", source=path) from None
    if not frames:
        raise DataError("no frames", source=path)
    values = np.empty((len(frames), FRAME_WIDTH))
    for t, frame in enumerate(frames):
        if not isinstance(frame, list) or len(frame) != FRAME_WIDTH:
            width = len(frame) if isinstance(frame, list) else type(frame).__name__
            raise DataError(
                f"frame width {width}, the DeepMimic humanoid needs {FRAME_WIDTH}",
                source=path,
                record=f"frame {t}",
                position=min(width, FRAME_WIDTH) if isinstance(width, int) else 0,
            )
        values[t] = frame
        bad = np.flatnonzero(~np.isfinite(values[t]))
        if len(bad):
            raise DataError("NaN or inf value", source=path, record=f"frame {t}", position=int(bad[0]))
    return frames_to_motion(values, path), clip.get("Loop") == "wrap"


def frames_to_motion(values: np.ndarray, source: object = None) -> Motion:
    """values: (T, 44) DeepMimic frames -> Motion on HUMANOID; the frame rate is 1 / the median positive duration."""
    durations = values[:, 0][values[:, 0] > 0]
    if not len(durations):
        raise DataError("no frame has a positive duration", source=source)
    n_frames = len(values)
    rotations = np.broadcast_to(np.eye(3), (n_frames, HUMANOID.n_joints, 3, 3)).copy()
    rotations[:, 0] = quaternion_to_matrix(values[:, 4:8])
    column = 8
    for j, (*_, kind) in enumerate(JOINTS):
        if kind == "spherical":
            rotations[:, j] = quaternion_to_matrix(values[:, column : column + 4])
        elif kind == "revolute":
            rotations[:, j] = axis_rotation(values[:, column], "z")
        column += DOFS[kind]
    return Motion(HUMANOID, values[:, 1:4].copy(), rotations, float(1.0 / np.median(durations)))
