"""The representation's inverse reconstructs positions; mirroring; time-warped windows."""

import numpy as np
import pytest

from ssmkit_motion import representation as rep
from ssmkit_motion.bvh import read_bvh
from ssmkit_motion.datamodules import warp_window
from ssmkit_motion.deepmimic import read_deepmimic
from ssmkit_motion.procedural import ACTIONS, generate_action, random_params


def check_inverse(motion):
    f = rep.features(motion)
    assert f.shape == (motion.n_frames, rep.n_features(motion.skeleton))
    expected = rep.canonical(motion).positions()
    assert np.abs(rep.to_positions(f, motion.skeleton) - expected).max() < 1e-5
    assert np.abs(rep.to_motion(f, motion.skeleton, motion.fps).positions() - expected).max() < 1e-5


@pytest.mark.parametrize("action", ACTIONS)
def test_inverse_reconstructs_procedural_positions(action):
    check_inverse(generate_action(action, random_params(np.random.default_rng(1), action), seconds=2.0))


def test_inverse_reconstructs_real_clips(shared_motion):
    check_inverse(read_deepmimic(shared_motion / "deepmimic" / "humanoid3d_cartwheel.txt")[0])
    check_inverse(read_bvh(shared_motion / "cmu_bvh" / "131_03.bvh").crop(0, 120))


def test_features_do_not_depend_on_place_or_facing():
    rng = np.random.default_rng(2)
    params = random_params(rng, "walk")
    a = generate_action("walk", params)
    b = generate_action("walk", params.__class__(**{**params.__dict__, "heading": 1.0, "start": (5.0, -3.0)}))
    assert np.abs(rep.features(a) - rep.features(b)).max() < 1e-9


def test_mirroring_twice_is_the_identity_and_swaps_the_wave_arm():
    motion = generate_action("wave", random_params(np.random.default_rng(3), "wave"))
    twice = motion.mirrored().mirrored()
    assert np.abs(twice.positions() - motion.positions()).max() < 1e-9
    names = motion.skeleton.names
    right, left = names.index("right_wrist"), names.index("left_wrist")
    assert motion.positions()[:, right, 1].mean() > motion.positions()[:, left, 1].mean() + 0.5
    mirrored = motion.mirrored().positions()
    assert mirrored[:, left, 1].mean() > mirrored[:, right, 1].mean() + 0.5


def test_time_warp_reads_every_speed_th_frame_with_scaled_velocities():
    f = rep.features(generate_action("run", random_params(np.random.default_rng(4), "run"), seconds=3.0))
    plain = warp_window(f, 3.0, 1.0, 10)
    assert np.allclose(plain[:, :-2], f[3:13, :-2])
    fast = warp_window(f, 0.0, 2.0, 10)
    assert np.allclose(fast[:, 3:-2], f[0:20:2, 3:-2]) and np.allclose(fast[:, :3], 2 * f[0:20:2, :3])
    held = warp_window(f, -5.0, 1.0, 10)  # before the clip: the first pose held, not moving
    assert np.allclose(held[:5, 3:-2], f[0, 3:-2]) and np.allclose(held[:5, :3], 0)
