"""In-betweening: `MotionGenerator.generate` with given frames keeps them exactly and generates the others;
`keep_frames` is checked; the result is written as a GIF."""

import pytest
import torch

from ssmkit_motion.animation import write_gif
from ssmkit_motion.deepmimic import HUMANOID
from ssmkit_motion.representation import to_positions
from ssmkit_motion.tasks import MotionGenerator, frame_mask

TINY = {"d_state": 4, "expand": 1}


def tiny_generator(keep_frames: str | None = None) -> MotionGenerator:
    torch.manual_seed(0)
    vae = {"d_model": 8, "n_layers": 1, "mixer": "mamba", "bidirectional": True, "mixer_kwargs": TINY}
    model = MotionGenerator(
        2, 126, 16, vae=vae, d_latent=4, d_model=8, n_levels=2, d_spatial=4, mamba_kwargs=TINY, sampling_steps=3,
        keep_frames=keep_frames, report_per_class=0,
    )  # fmt: skip
    for p in model.denoiser.parameters():  # the zero-initialised output map would make every sample the same
        p.data += 0.1 * torch.randn_like(p)
    return model


@pytest.mark.parametrize("ranges", ["0:6", "0:4,12:16"])  # continue a motion; fill its middle
def test_given_frames_are_kept_and_the_others_generated(ranges, tmp_path):
    model = tiny_generator(ranges)
    known = torch.randn(2, 16, 126)
    out = model.generate(torch.tensor([0, 1]), known=known, keep=model.keep)
    assert torch.equal(out[:, model.keep], known[:, model.keep])
    free = model.generate(torch.tensor([0, 1]))
    assert not torch.allclose(out[:, ~model.keep], free[:, ~model.keep])  # the given frames steered the rest
    assert not torch.allclose(out[:, ~model.keep], known[:, ~model.keep])
    gif = tmp_path / "inbetween.gif"
    write_gif(to_positions(out[0].numpy(), HUMANOID), HUMANOID.parents, gif, 20.0, ranges)
    assert gif.stat().st_size > 0


def test_keep_frames_is_checked():
    assert frame_mask("0:2,5:7", 8).tolist() == [True, True, False, False, False, True, True, False]
    for bad in ("0:9", "3:3", "a:b", "4", "0:8"):
        with pytest.raises(ValueError, match="keep_frames"):
            frame_mask(bad, 8)
