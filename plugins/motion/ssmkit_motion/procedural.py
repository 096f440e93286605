"""A procedural generator of skeleton actions on the DeepMimic humanoid (the bundled default data: no download).

Seven actions, each a few sinusoids of joint angles in the humanoid's conventions (y up, facing +x, right +z; a
positive z rotation swings a limb forward, knees bend negative, elbows positive, a right arm rises sideways with a
negative x rotation):

    walk   legs and opposite arms swing at 1 stride/s, 1.3 m/s, a small bob
    run    larger, faster swings (1.4 strides/s), bent elbows, forward lean, 3.2 m/s
    jump   crouch, take-off and flight at 0.8 jumps/s, arms swing up, a little forward travel
    wave   standing, the right arm raised sideways, the forearm waving at 1.5 Hz
    squat  knees and hips bend together (0.5 squats/s), arms rise forward, the root goes down
    spin   standing, turning about the vertical at 0.5 turns/s, arms out sideways
    kick   the right leg kicks forward at 0.7 kicks/s, the arms counter-swing

`ActionParams` varies each clip: `speed` (multiplies every frequency and the travel speed), `amplitude`
(multiplies every swing), `phase` (rad), `turn` (rad/s of heading change along the root trajectory), the initial
heading and position, and a slow sway of chest and neck. `random_params(rng)` draws them: speed in [0.8, 1.25],
amplitude in [0.75, 1.2], phase in [0, 2 pi), turn in [-0.4, 0.4] rad/s (spin: its direction, +-1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ssmkit_motion.deepmimic import HUMANOID
from ssmkit_motion.kinematics import axis_rotation
from ssmkit_motion.skeleton import Motion

ACTIONS = ("walk", "run", "jump", "wave", "squat", "spin", "kick")
STAND_HEIGHT = 0.88  # root height of the standing humanoid (m)
FREQUENCY = {"walk": 1.0, "run": 1.4, "jump": 0.8, "wave": 1.5, "squat": 0.5, "spin": 0.5, "kick": 0.7}
TRAVEL = {"walk": 1.3, "run": 3.2, "jump": 0.4}  # forward speed (m/s) at speed 1


@dataclass(frozen=True)
class ActionParams:
    speed: float = 1.0
    amplitude: float = 1.0
    phase: float = 0.0
    turn: float = 0.0
    heading: float = 0.0
    start: tuple[float, float] = (0.0, 0.0)
    sway: float = 0.05


def random_params(rng: np.random.Generator, action: str) -> ActionParams:
    """Parameters drawn as the module doc says."""
    turn = float(rng.choice([-1.0, 1.0])) if action == "spin" else float(rng.uniform(-0.4, 0.4))
    return ActionParams(
        speed=float(rng.uniform(0.8, 1.25)),
        amplitude=float(rng.uniform(0.75, 1.2)),
        phase=float(rng.uniform(0, 2 * np.pi)),
        turn=turn,
        heading=float(rng.uniform(-np.pi, np.pi)),
        start=(float(rng.uniform(-2, 2)), float(rng.uniform(-2, 2))),
        sway=float(rng.uniform(0.0, 0.08)),
    )


def generate_action(action: str, params: ActionParams, seconds: float = 3.0, fps: float = 20.0) -> Motion:
    """A clip of `action` on the DeepMimic humanoid: (seconds * fps) frames."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
    t = np.arange(int(round(seconds * fps))) / fps
    p = 2 * np.pi * FREQUENCY[action] * params.speed * t + params.phase
    angles, height = POSES[action](p, params.amplitude)
    angles.setdefault("chest_z", 0 * p)
    angles["chest_z"] = angles["chest_z"] + params.sway * np.sin(0.7 * p)
    angles["neck_z"] = angles.get("neck_z", 0 * p) - 0.5 * params.sway * np.sin(0.7 * p)
    yaw_rate = params.turn * (2 * np.pi * FREQUENCY["spin"] * params.speed if action == "spin" else 1.0)
    yaw = params.heading + yaw_rate * t
    forward_speed = TRAVEL.get(action, 0.0) * params.speed * np.sqrt(params.amplitude)
    root = _root_path(yaw, forward_speed, params.start, fps)
    root[:, 1] = height
    return Motion(HUMANOID, root, _rotations(angles, yaw, len(t)), fps)


def _root_path(yaw: np.ndarray, speed: float, start: tuple[float, float], fps: float) -> np.ndarray:
    """(T, 3): the ground path moving `speed` m/s along the heading (+x turned by yaw about +y)."""
    step = np.stack([np.cos(yaw), np.zeros_like(yaw), -np.sin(yaw)], 1) * speed / fps
    path = np.concatenate([np.zeros((1, 3)), np.cumsum(step[:-1], 0)])
    return path + np.array([start[0], 0.0, start[1]])


def _rotations(angles: dict[str, np.ndarray], yaw: np.ndarray, n_frames: int) -> np.ndarray:
    """(T, J, 3, 3) from `<joint>_<axis>` angles (R = Rz Rx per joint) and the root yaw."""
    rotations = np.broadcast_to(np.eye(3), (n_frames, HUMANOID.n_joints, 3, 3)).copy()
    for j, name in enumerate(HUMANOID.names):
        rz = axis_rotation(angles.get(f"{name}_z", np.zeros(n_frames)), "z")
        rx = axis_rotation(angles.get(f"{name}_x", np.zeros(n_frames)), "x")
        rotations[:, j] = rz @ rx
    rotations[:, 0] = axis_rotation(yaw, "y") @ rotations[:, 0]
    return rotations


def _legs(hip_r: np.ndarray, knee_r: np.ndarray, hip_l: np.ndarray, knee_l: np.ndarray) -> dict[str, np.ndarray]:
    """Hip and knee angles, ankles keeping the feet level."""
    return {
        "right_hip_z": hip_r,
        "right_knee_z": knee_r,
        "right_ankle_z": -(hip_r + knee_r),
        "left_hip_z": hip_l,
        "left_knee_z": knee_l,
        "left_ankle_z": -(hip_l + knee_l),
    }


def _walk(p: np.ndarray, a: float) -> tuple[dict, np.ndarray]:
    swing = 0.45 * a * np.sin(p)
    knee_r, knee_l = -0.9 * a * np.maximum(0, np.sin(p + np.pi / 2)), -0.9 * a * np.maximum(0, -np.sin(p + np.pi / 2))
    angles = _legs(swing, knee_r, -swing, knee_l)
    angles.update(right_shoulder_z=-0.7 * swing, left_shoulder_z=0.7 * swing, right_elbow_z=0.3 + 0 * p)
    angles["left_elbow_z"] = 0.3 + 0 * p
    return angles, STAND_HEIGHT - 0.02 + 0.03 * np.abs(np.sin(p))


def _run(p: np.ndarray, a: float) -> tuple[dict, np.ndarray]:
    swing = 0.8 * a * np.sin(p)
    knee_r = -0.3 - 1.5 * a * np.maximum(0, np.sin(p + np.pi / 2))
    knee_l = -0.3 - 1.5 * a * np.maximum(0, -np.sin(p + np.pi / 2))
    angles = _legs(swing + 0.2, knee_r, -swing + 0.2, knee_l)
    angles.update(right_shoulder_z=-0.8 * swing, left_shoulder_z=0.8 * swing, chest_z=-0.25 + 0 * p)
    angles.update(right_elbow_z=1.5 + 0 * p, left_elbow_z=1.5 + 0 * p)
    return angles, STAND_HEIGHT - 0.06 + 0.07 * np.abs(np.sin(p))


def _jump(p: np.ndarray, a: float) -> tuple[dict, np.ndarray]:
    flight, crouch = np.maximum(0, np.sin(p)), np.maximum(0, -np.sin(p))
    hip, knee = 1.0 * a * crouch, -1.8 * a * crouch
    angles = _legs(hip, knee, hip, knee)
    arms = 2.6 * a * flight - 0.6 * crouch
    angles.update(right_shoulder_z=arms, left_shoulder_z=arms, chest_z=-0.4 * a * crouch)
    return angles, STAND_HEIGHT + 0.3 * a * flight - 0.25 * a * crouch


def _wave(p: np.ndarray, a: float) -> tuple[dict, np.ndarray]:
    angles = _legs(0 * p, 0 * p, 0 * p, 0 * p)
    angles.update(right_shoulder_x=-2.6 + 0 * p, right_elbow_z=0.6 + 0.6 * a * np.sin(p))
    angles.update(left_shoulder_z=0.05 * np.sin(p), left_elbow_z=0.2 + 0 * p)
    return angles, STAND_HEIGHT + 0 * p


def _squat(p: np.ndarray, a: float) -> tuple[dict, np.ndarray]:
    d = a * (1 - np.cos(p)) / 2
    angles = _legs(1.5 * d, -2.0 * d, 1.5 * d, -2.0 * d)
    angles.update(right_shoulder_z=1.4 * d, left_shoulder_z=1.4 * d, chest_z=-0.3 * d)
    return angles, STAND_HEIGHT - 0.4 * d


def _spin(p: np.ndarray, a: float) -> tuple[dict, np.ndarray]:
    angles = _legs(0.1 * np.sin(2 * p), 0 * p - 0.1, -0.1 * np.sin(2 * p), 0 * p - 0.1)
    angles.update(right_shoulder_x=-1.4 * a + 0 * p, left_shoulder_x=1.4 * a + 0 * p)
    return angles, STAND_HEIGHT - 0.01 + 0 * p


def _kick(p: np.ndarray, a: float) -> tuple[dict, np.ndarray]:
    k = a * np.maximum(0, np.sin(p)) ** 2
    knee = -1.4 * np.maximum(0, np.sin(p)) * np.maximum(0, np.cos(p)) * 2
    angles = _legs(1.6 * k, knee, -0.1 * k, -0.1 * k)
    angles.update(right_shoulder_z=-0.5 * k, left_shoulder_z=0.7 * k, chest_z=0.25 * k)
    return angles, STAND_HEIGHT - 0.03 * k


POSES = {"walk": _walk, "run": _run, "jump": _jump, "wave": _wave, "squat": _squat, "spin": _spin, "kick": _kick}
