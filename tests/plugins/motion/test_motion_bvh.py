"""BVH: read -> FK -> write -> read round-trips joint positions; any hierarchy; named errors for bad files."""

import numpy as np
import pytest

from ssmkit.data import DataError
from ssmkit_motion.bvh import channels_to_motion, read_bvh, write_bvh
from ssmkit_motion.procedural import generate_action, random_params
from ssmkit_motion.skeleton import Skeleton

TINY = """HIERARCHY
ROOT hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT spine
  {
    OFFSET 0 1 0
    CHANNELS 3 Xrotation Yrotation Zrotation
    End Site
    {
      OFFSET 0 1 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.1
0 1 0 10 20 30 40 50 60
0 1 0 0 0 0 0 0 90
"""


def test_cmu_take_round_trips_to_1e_5(shared_motion, tmp_path):
    motion = read_bvh(shared_motion / "cmu_bvh" / "131_01.bvh")
    assert motion.skeleton.n_joints == 38 and motion.n_frames == 994 and abs(motion.fps - 120) < 1e-2
    again = read_bvh(write_bvh(motion, tmp_path / "again.bvh"))
    assert again.skeleton.names == motion.skeleton.names
    assert np.abs(again.positions() - motion.positions()).max() < 1e-5


def test_a_motion_from_rotations_round_trips_through_euler_angles(tmp_path):
    motion = generate_action("kick", random_params(np.random.default_rng(0), "kick"), seconds=1.0)
    again = read_bvh(write_bvh(motion, tmp_path / "kick.bvh"))
    order = [again.skeleton.names.index(n.replace("wrist", "elbow_end")) for n in motion.skeleton.names]
    assert np.abs(again.positions()[:, order] - motion.positions()).max() < 1e-5


def test_any_order_and_position_channels_on_a_child(tmp_path):
    channels = [
        ("Xposition", "Yposition", "Zposition", "Yrotation", "Xrotation", "Zrotation"),
        ("Xposition", "Yposition", "Zposition", "Xrotation", "Zrotation", "Yrotation"),
        (),
    ]
    skeleton = Skeleton(["root", "arm", "arm_end"], [-1, 0, 1], np.array([[0, 0, 0], [1, 0, 0], [0, 2, 0.0]]), channels)
    values = np.random.default_rng(0).uniform(-90, 90, (5, 12))
    motion = channels_to_motion(skeleton, values, 30.0)
    assert motion.translations is not None and np.allclose(motion.translations[:, 1], values[:, 6:9])
    again = read_bvh(write_bvh(motion, tmp_path / "odd.bvh"))
    assert np.abs(again.positions() - motion.positions()).max() < 1e-5


def test_the_tiny_file_reads_as_written(tmp_path):
    (tmp_path / "tiny.bvh").write_text(TINY)
    motion = read_bvh(tmp_path / "tiny.bvh")
    assert motion.skeleton.names == ["hips", "spine", "spine_end"] and motion.fps == pytest.approx(10)
    assert np.allclose(motion.positions()[1, 2], [-1, 2, 0])  # spine turned 90 degrees about z: the end points -x


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("  }\n}\nMOTION", "  }\nMOTION"), "malformed hierarchy"),
        (("CHANNELS 3 Xrotation Yrotation Zrotation", "CHANNELS 3 Xrotation Yrotation"), "wrong channel count"),
        (("0 1 0 0 0 0 0 0 90", "0 1 0 0 0 0 0 0"), "record frame 1.*wrong channel count: 8 values"),
        (("0 1 0 0 0 0 0 0 90", "0 1 0 nan 0 0 0 0 90"), "record frame 1, position 3: NaN"),
        (("Frames: 2", "Frames: 3"), "'Frames: 3' but 2 frame lines"),
    ],
)
def test_bad_files_are_named_data_errors(tmp_path, change, message):
    path = tmp_path / "bad.bvh"
    path.write_text(TINY.replace(*change))
    with pytest.raises(DataError, match=message) as info:
        read_bvh(path)
    assert str(path) in str(info.value)
