"""Rotations and forward kinematics (numpy, float64).

Conventions: column vectors, `v_parent = R @ v_child`; quaternions are (w, x, y, z); an Euler order names the axes
in the order the BVH channels list them, "ZYX" meaning R = Rz @ Ry @ Rx (intrinsic rotations, scipy's upper-case
orders); the 6D rotation representation (Zhou et al., 2019) is the first two columns of R, (..., 6) =
(R[:, 0], R[:, 1]), mapped back by Gram-Schmidt.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.spatial.transform import Rotation


def euler_to_matrix(angles: np.ndarray, order: str, degrees: bool = True) -> np.ndarray:
    """angles: (..., 3) in the order of `order` (e.g. "ZYX") -> R: (..., 3, 3)."""
    flat = np.asarray(angles, np.float64).reshape(-1, 3)
    matrices = Rotation.from_euler(order.upper(), flat, degrees=degrees).as_matrix()
    return matrices.reshape(*np.shape(angles)[:-1], 3, 3)


def matrix_to_euler(matrices: np.ndarray, order: str, degrees: bool = True) -> np.ndarray:
    """R: (..., 3, 3) -> angles (..., 3) with euler_to_matrix(angles, order) == R (any branch; gimbal lock allowed)."""
    flat = np.asarray(matrices, np.float64).reshape(-1, 3, 3)
    with warnings.catch_warnings():  # gimbal lock: scipy still returns angles that give the same matrix
        warnings.simplefilter("ignore", UserWarning)
        angles = Rotation.from_matrix(flat).as_euler(order.upper(), degrees=degrees)
    return angles.reshape(*np.shape(matrices)[:-2], 3)


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """q: (..., 4) as (w, x, y, z), normalised here -> R: (..., 3, 3)."""
    q = np.asarray(q, np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ]
    return np.stack([np.stack(r, -1) for r in rows], -2)


def axis_rotation(angle: np.ndarray, axis: str) -> np.ndarray:
    """angle: (...,) radians about the x, y or z axis -> R: (..., 3, 3)."""
    angle = np.asarray(angle, np.float64)
    c, s, one, zero = np.cos(angle), np.sin(angle), np.ones_like(angle), np.zeros_like(angle)
    rows = {
        "x": [[one, zero, zero], [zero, c, -s], [zero, s, c]],
        "y": [[c, zero, s], [zero, one, zero], [-s, zero, c]],
        "z": [[c, -s, zero], [s, c, zero], [zero, zero, one]],
    }[axis]
    return np.stack([np.stack(r, -1) for r in rows], -2)


def matrix_to_6d(matrices: np.ndarray) -> np.ndarray:
    """R: (..., 3, 3) -> (..., 6): the first two columns."""
    return np.concatenate([matrices[..., :, 0], matrices[..., :, 1]], -1)


def sixd_to_matrix(sixd: np.ndarray) -> np.ndarray:
    """(..., 6) -> R: (..., 3, 3) by Gram-Schmidt (exact inverse of matrix_to_6d on rotations)."""
    a, b = sixd[..., :3], sixd[..., 3:]
    c0 = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
    b = b - (c0 * b).sum(-1, keepdims=True) * c0
    c1 = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
    return np.stack([c0, c1, np.cross(c0, c1)], -1)


def slerp_matrices(r0: np.ndarray, r1: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Spherical interpolation between rotations r0, r1: (N, 3, 3) with weights w: (N,) in [0, 1]."""
    relative = Rotation.from_matrix(np.swapaxes(r0, -1, -2) @ r1).as_rotvec()  # (N, 3)
    return r0 @ Rotation.from_rotvec(relative * w[:, None]).as_matrix()


def forward_kinematics(
    parents: list[int], translations: np.ndarray, rotations: np.ndarray, root_position: np.ndarray
) -> np.ndarray:
    """World joint positions (T, J, 3).

    parents: (J,) with parents[j] < j and -1 for the root; translations: (J, 3) or (T, J, 3), each joint's position in
    its parent's frame (the root's is ignored); rotations: (T, J, 3, 3) local; root_position: (T, 3)."""
    n_frames, n_joints = rotations.shape[:2]
    translations = np.broadcast_to(translations, (n_frames, n_joints, 3))
    world_rot = np.empty_like(rotations)
    positions = np.empty((n_frames, n_joints, 3))
    for j, parent in enumerate(parents):
        if parent < 0:
            world_rot[:, j], positions[:, j] = rotations[:, j], root_position
            continue
        world_rot[:, j] = world_rot[:, parent] @ rotations[:, j]
        positions[:, j] = positions[:, parent] + (world_rot[:, parent] @ translations[:, j, :, None])[..., 0]
    return positions
