"""`Skeleton` (a joint hierarchy with offsets and BVH channels) and `Motion` (root trajectory + local rotations).

Every skeleton here is y-up. A joint's `channels` are its BVH channel names: rotation channels make it a rotating
joint; a joint without channels (a BVH End Site, a DeepMimic wrist) keeps the identity rotation. Left / right
pairs come from the names (`left`/`right` anywhere, or an `L`/`R` (`l`/`r`) first letter, whenever the swapped name
exists); they give the facing direction (`forward`: across = left minus right in the rest pose, forward = across x
up), the feet (the lowest pair in the rest pose) and mirroring (a reflection across the plane of up and forward,
with the pairs swapped), which is used only when the offsets are symmetric (`mirror_error`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from ssmkit_motion.kinematics import forward_kinematics, slerp_matrices

UP = np.array([0.0, 1.0, 0.0])
SIDES = (("left", "right"), ("Left", "Right"), ("LEFT", "RIGHT"))
POSITION_CHANNELS = ("Xposition", "Yposition", "Zposition")
ROTATION_CHANNELS = ("Xrotation", "Yrotation", "Zrotation")


def swapped_side(name: str) -> list[str]:
    """Candidate names of the other side's joint (callers keep the ones that exist)."""
    found = [name.replace(a, b) if a in name else name.replace(b, a) for a, b in SIDES if a in name or b in name]
    if name[:1] in "LRlr" and len(name) > 1:
        found.append({"L": "R", "R": "L", "l": "r", "r": "l"}[name[0]] + name[1:])
    return found


@dataclass(frozen=True, eq=False)
class Skeleton:
    """names, parents (parents[j] < j, -1 for the root), offsets (J, 3) in the parent's frame, BVH channels."""

    names: list[str]
    parents: list[int]
    offsets: np.ndarray
    channels: list[tuple[str, ...]] = field(default_factory=list)

    @property
    def n_joints(self) -> int:
        return len(self.names)

    @cached_property
    def rotating(self) -> list[int]:
        """Indices of the joints with rotation channels."""
        return [j for j, ch in enumerate(self.channels) if any(c in ROTATION_CHANNELS for c in ch)]

    @cached_property
    def rest_positions(self) -> np.ndarray:
        """(J, 3): the joints with every rotation the identity and the root at the origin."""
        rotations = np.broadcast_to(np.eye(3), (1, self.n_joints, 3, 3))
        return forward_kinematics(self.parents, self.offsets, rotations, np.zeros((1, 3)))[0]

    @cached_property
    def pairs(self) -> list[tuple[int, int]]:
        """(left, right) joint index pairs, found by name."""
        index = {name: j for j, name in enumerate(self.names)}
        found = []
        for j, name in enumerate(self.names):
            if not _is_left(name):
                continue
            other = next((index[c] for c in swapped_side(name) if c in index and c != name), None)
            if other is not None:
                found.append((j, other))
        return found

    @cached_property
    def across(self) -> np.ndarray | None:
        """Unit vector from the right side to the left in the rest pose, horizontal; None without pairs."""
        if not self.pairs:
            return None
        rest = self.rest_positions
        v = sum(rest[a] - rest[b] for a, b in self.pairs) * np.array([1.0, 0.0, 1.0])
        norm = np.linalg.norm(v)
        return v / norm if norm > 1e-9 else None

    @cached_property
    def forward(self) -> np.ndarray:
        """The facing direction of the rest pose (horizontal unit vector): across x up, else +z."""
        return np.array([0.0, 0.0, 1.0]) if self.across is None else np.cross(self.across, UP)

    @cached_property
    def feet(self) -> list[int]:
        """The lowest left / right pair in the rest pose (ankles, toes), for foot contacts; [] without pairs."""
        if not self.pairs:
            return []
        rest = self.rest_positions
        left, right = min(self.pairs, key=lambda p: rest[p[0], 1] + rest[p[1], 1])
        return [left, right]

    @cached_property
    def height(self) -> float:
        """Vertical extent of the rest pose (the body scale for thresholds)."""
        return float(np.ptp(self.rest_positions[:, 1])) or 1.0

    @cached_property
    def mirror_permutation(self) -> np.ndarray:
        """(J,): joint j of a mirrored motion takes joint perm[j] of the original."""
        perm = np.arange(self.n_joints)
        for a, b in self.pairs:
            perm[a], perm[b] = b, a
        return perm

    @cached_property
    def reflection(self) -> np.ndarray:
        """(3, 3) reflection across the plane of up and forward (identity without pairs)."""
        if self.across is None:
            return np.eye(3)
        return np.eye(3) - 2 * np.outer(self.across, self.across)

    def mirror_error(self) -> float:
        """Largest mismatch between an offset and its mirrored partner's, relative to the body height."""
        if self.across is None:
            return float("inf")
        mirrored = self.offsets[self.mirror_permutation] @ self.reflection.T
        return float(np.abs(mirrored - self.offsets).max() / self.height)


def _is_left(name: str) -> bool:
    return any(a in name for a, _ in SIDES) or (name[:1] in "Ll" and len(name) > 1)


@dataclass(eq=False)
class Motion:
    """root_position (T, 3) world; rotations (T, J, 3, 3) local; fps; translations (T, J, 3) where joints have
    position channels (they replace the offsets), else None."""

    skeleton: Skeleton
    root_position: np.ndarray
    rotations: np.ndarray
    fps: float
    translations: np.ndarray | None = None

    @property
    def n_frames(self) -> int:
        return len(self.rotations)

    def positions(self) -> np.ndarray:
        """World joint positions (T, J, 3) by forward kinematics."""
        translations = self.skeleton.offsets if self.translations is None else self.translations
        return forward_kinematics(self.skeleton.parents, translations, self.rotations, self.root_position)

    def resample(self, fps: float) -> Motion:
        """The motion at `fps` frames per second over the same duration: root linear, rotations slerped."""
        times = np.arange(0.0, (self.n_frames - 1) / self.fps + 1e-9, 1.0 / fps) * self.fps  # in source frames
        i0 = np.minimum(np.floor(times).astype(int), self.n_frames - 1)
        i1 = np.minimum(i0 + 1, self.n_frames - 1)
        w = times - i0
        root = self.root_position[i0] * (1 - w[:, None]) + self.root_position[i1] * w[:, None]
        n_joints = self.skeleton.n_joints
        r0 = self.rotations[i0].reshape(-1, 3, 3)
        r1 = self.rotations[i1].reshape(-1, 3, 3)
        rotations = slerp_matrices(r0, r1, np.repeat(w, n_joints)).reshape(len(times), n_joints, 3, 3)
        translations = None
        if self.translations is not None:
            translations = self.translations[i0] * (1 - w[:, None, None]) + self.translations[i1] * w[:, None, None]
        return replace(self, root_position=root, rotations=rotations, fps=fps, translations=translations)

    def mirrored(self) -> Motion:
        """Left and right swapped: every rotation conjugated by the reflection, pairs exchanged."""
        m, perm = self.skeleton.reflection, self.skeleton.mirror_permutation
        rotations = m @ self.rotations[:, perm] @ m
        translations = None if self.translations is None else self.translations[:, perm] @ m.T
        return replace(self, root_position=self.root_position @ m.T, rotations=rotations, translations=translations)

    def crop(self, start: int, stop: int) -> Motion:
        translations = None if self.translations is None else self.translations[start:stop]
        return replace(
            self,
            root_position=self.root_position[start:stop],
            rotations=self.rotations[start:stop],
            translations=translations,
        )
