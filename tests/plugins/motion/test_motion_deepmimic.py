"""DeepMimic clips: the humanoid's FK, the shared clips, named errors."""

import json

import numpy as np
import pytest

from ssmkit.data import DataError
from ssmkit_motion.deepmimic import FRAME_WIDTH, HUMANOID, read_deepmimic

STANDING = [0.05, 0, 0.9, 0, 1, 0, 0, 0] + [1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0]
STANDING += [1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0]


def write(path, frames, loop="wrap"):
    path.write_text(json.dumps({"Loop": loop, "Frames": frames}))
    return path


def test_identity_frames_give_the_rest_pose(tmp_path):
    assert len(STANDING) == FRAME_WIDTH == 44
    motion, loop = read_deepmimic(write(tmp_path / "stand.txt", [STANDING, STANDING]))
    assert loop and motion.fps == pytest.approx(20)
    expected = HUMANOID.rest_positions + np.array([0, 0.9, 0])
    assert np.allclose(motion.positions()[0], expected)
    assert HUMANOID.mirror_error() == 0 and HUMANOID.forward @ np.array([1.0, 0, 0]) == pytest.approx(1)


def test_revolute_knee_bends_about_z(tmp_path):
    frame = list(STANDING)
    frame[20] = -np.pi / 2  # right knee (after root 8, chest 4, neck 4, right hip 4)
    positions = read_deepmimic(write(tmp_path / "knee.txt", [frame]))[0].positions()[0]
    shank = positions[5] - positions[4]  # right ankle - right knee
    assert np.allclose(shank, [-0.40987, 0, 0], atol=1e-9)


def test_shared_clips_stand_on_the_ground(shared_motion):
    motion, loop = read_deepmimic(shared_motion / "deepmimic" / "humanoid3d_walk.txt")
    assert loop and motion.n_frames == 39 and motion.fps == pytest.approx(30, rel=1e-3)
    feet = motion.positions()[:, HUMANOID.feet, 1]
    assert 0 < feet.min() < 0.1


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        ([STANDING, STANDING[:-1]], "record frame 1, position 43: frame width 43, the DeepMimic humanoid needs 44"),
        ([STANDING[:5] + [float("nan")] + STANDING[6:]], "record frame 0, position 5: NaN"),
    ],
)
def test_bad_frames_are_named_data_errors(tmp_path, frames, message):
    path = write(tmp_path / "bad.txt", frames)
    with pytest.raises(DataError, match=message):
        read_deepmimic(path)


def test_not_json_is_a_data_error(tmp_path):
    (tmp_path / "x.txt").write_text("HIERARCHY")
    with pytest.raises(DataError, match="not a DeepMimic motion file"):
        read_deepmimic(tmp_path / "x.txt")
