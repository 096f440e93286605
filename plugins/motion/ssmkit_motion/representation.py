"""The models' motion representation (HumanML3D-style, Guo et al. 2022) and its inverse.

Per frame t of a motion on a skeleton with J joints, R rotating joints and two feet, `features(motion)` is
(T, 4 + 3 (J - 1) + 6 R + 2):

    yaw_vel (1)      heading change from t to t + 1 (rad, wrapped to [-pi, pi])
    root_vel (2)     root x / z displacement from t to t + 1, in the heading frame of t
    root_height (1)  root y
    ric (3 (J - 1))  every other joint's position relative to the root's ground point (x, 0, z), heading frame of t
    rot6d (6 R)      local rotations in 6D (Zhou et al. 2019); the root's relative to its heading
    contacts (2)     feet on the ground: speed below 0.2 body heights / s and height within 5% of the body height
                     of the clip's lowest foot position (0 / 1; both 0 on a skeleton without left / right pairs)

The heading is the yaw of the root's rotation applied to the skeleton's `forward` direction. The last frame's
velocities repeat the step before it. Everything is invariant to where the motion is on the ground and which way
it faces, so a window needs no re-centring. Inverse: `to_motion` integrates the yaw and root velocities from the
origin facing `forward` (the canonical start, `canonical(motion)`) and reads the rotations from their 6D (root,
rotations -> BVH); `to_positions` reads the joints from `ric` the same way. Both reproduce `canonical(motion)`'s
positions to float rounding (the tests check 1e-5).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ssmkit_motion.kinematics import axis_rotation, matrix_to_6d, sixd_to_matrix
from ssmkit_motion.skeleton import Motion, Skeleton

CONTACT_SPEED = 0.2  # body heights per second
CONTACT_HEIGHT = 0.05  # body heights above the clip's lowest foot position
VELOCITY_DIMS = (0, 1, 2)  # yaw_vel, root_vel: per-frame differences (a time-warp by speed s scales them by s)


@dataclass(frozen=True)
class Layout:
    """Where each part of the feature vector lies, for a skeleton."""

    n_joints: int
    n_rotating: int

    @property
    def ric(self) -> slice:
        return slice(4, 4 + 3 * (self.n_joints - 1))

    @property
    def rot6d(self) -> slice:
        return slice(self.ric.stop, self.ric.stop + 6 * self.n_rotating)

    @property
    def contacts(self) -> slice:
        return slice(self.rot6d.stop, self.rot6d.stop + 2)

    @property
    def n_features(self) -> int:
        return self.contacts.stop

    @classmethod
    def of(cls, skeleton: Skeleton) -> Layout:
        return cls(skeleton.n_joints, len(skeleton.rotating))


def n_features(skeleton: Skeleton) -> int:
    return Layout.of(skeleton).n_features


def heading(motion: Motion) -> np.ndarray:
    """(T,) yaw (rad, about +y) taking the skeleton's forward direction to the root's."""
    f = motion.skeleton.forward
    h = motion.rotations[:, _root(motion.skeleton)] @ f
    return np.arctan2(f[2] * h[:, 0] - f[0] * h[:, 2], f[0] * h[:, 0] + f[2] * h[:, 2])


def features(motion: Motion) -> np.ndarray:
    """Motion of T >= 2 frames -> (T, n_features) float64 (see the module doc)."""
    skeleton, root = motion.skeleton, _root(motion.skeleton)
    yaw = heading(motion)
    to_heading = np.swapaxes(axis_rotation(yaw, "y"), -1, -2)  # (T, 3, 3): world -> heading frame
    positions = motion.positions()
    ground = motion.root_position * np.array([1.0, 0.0, 1.0])
    step = _repeat_last(np.diff(motion.root_position, axis=0))
    yaw_vel = _repeat_last(_wrap(np.diff(yaw)))
    root_vel = (to_heading @ step[..., None])[:, [0, 2], 0]
    others = [j for j in range(skeleton.n_joints) if j != root]
    ric = (to_heading[:, None] @ (positions[:, others] - ground[:, None])[..., None])[..., 0]
    rotations = motion.rotations[:, skeleton.rotating].copy()
    if root in skeleton.rotating:
        rotations[:, skeleton.rotating.index(root)] = to_heading @ motion.rotations[:, root]
    parts = [yaw_vel[:, None], root_vel, motion.root_position[:, 1:2], ric.reshape(len(yaw), -1)]
    parts += [matrix_to_6d(rotations).reshape(len(yaw), -1), foot_contacts(positions, skeleton, motion.fps)]
    return np.concatenate(parts, 1)


def foot_contacts(positions: np.ndarray, skeleton: Skeleton, fps: float) -> np.ndarray:
    """(T, 2) 0 / 1: see the module doc."""
    if not skeleton.feet:
        return np.zeros((len(positions), 2))
    feet = positions[:, skeleton.feet]  # (T, 2, 3)
    speed = _repeat_last(np.linalg.norm(np.diff(feet, axis=0), axis=-1) * fps)
    low = feet[..., 1] < feet[..., 1].min() + CONTACT_HEIGHT * skeleton.height
    return ((speed < CONTACT_SPEED * skeleton.height) & low).astype(np.float64)


def root_trajectory(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(yaw (T,), root position (T, 3)) integrated from the origin facing forward."""
    yaw = np.concatenate([[0.0], np.cumsum(f[:-1, 0])])
    steps = (axis_rotation(yaw, "y") @ np.stack([f[:, 1], np.zeros(len(f)), f[:, 2]], 1)[..., None])[..., 0]
    root = np.concatenate([np.zeros((1, 3)), np.cumsum(steps[:-1], 0)])
    root[:, 1] = f[:, 3]
    return yaw, root


def to_motion(f: np.ndarray, skeleton: Skeleton, fps: float) -> Motion:
    """(T, n_features) -> Motion (root trajectory + rotations from 6D; joints without rotations: identity)."""
    layout, root = Layout.of(skeleton), _root(skeleton)
    yaw, root_position = root_trajectory(f)
    rotations = np.broadcast_to(np.eye(3), (len(f), skeleton.n_joints, 3, 3)).copy()
    rotations[:, skeleton.rotating] = sixd_to_matrix(f[:, layout.rot6d].reshape(len(f), -1, 6))
    rotations[:, root] = axis_rotation(yaw, "y") @ rotations[:, root]
    return Motion(skeleton, root_position, rotations, fps)


def to_positions(f: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """(T, n_features) -> joint positions (T, J, 3) from the root trajectory and `ric`."""
    layout, root = Layout.of(skeleton), _root(skeleton)
    yaw, root_position = root_trajectory(f)
    ric = f[:, layout.ric].reshape(len(f), -1, 3)
    world = (axis_rotation(yaw, "y")[:, None] @ ric[..., None])[..., 0]
    world += (root_position * np.array([1.0, 0.0, 1.0]))[:, None]
    others = [j for j in range(skeleton.n_joints) if j != root]
    positions = np.empty((len(f), skeleton.n_joints, 3))
    positions[:, others], positions[:, root] = world, root_position
    return positions


def canonical(motion: Motion) -> Motion:
    """The motion moved to start at the origin (x = z = 0) facing the skeleton's forward direction."""
    back = axis_rotation(-heading(motion)[0], "y")
    start = motion.root_position[0] * np.array([1.0, 0.0, 1.0])
    root = motion.root_position.copy()
    rotations = motion.rotations.copy()
    r = _root(motion.skeleton)
    rotations[:, r] = back @ motion.rotations[:, r]
    root = (root - start) @ back.T
    return replace(motion, root_position=root, rotations=rotations)


def _root(skeleton: Skeleton) -> int:
    return skeleton.parents.index(-1)


def _repeat_last(x: np.ndarray) -> np.ndarray:
    return np.concatenate([x, x[-1:]], 0)


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (angle + np.pi) % (2 * np.pi) - np.pi
