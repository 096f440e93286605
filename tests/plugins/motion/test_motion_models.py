"""Motion Mamba's blocks (BSM = forward scan + flipped scan of the flipped input; HTM's scans are isolated), the
baseline's matched size, DDIM's exactness with a perfect denoiser, and the VAE's shapes."""

import torch

from ssmkit_motion.diffusion import LatentDiffusion
from ssmkit_motion.models import MotionVAE, n_parameters
from ssmkit_motion.motion_mamba import BSM, HTM, MotionMambaDenoiser, grouped_mamba
from ssmkit_motion.transformer_denoiser import TransformerDenoiser, matched_width

TINY = {"d_state": 4, "expand": 1}


def test_bsm_is_a_forward_scan_plus_the_flip_of_a_scan_of_the_flipped_input():
    torch.manual_seed(0)
    bsm = BSM(6, 4, TINY)
    x = torch.randn(2, 3, 6)
    u = bsm.steps(x)  # (6, 6, 4): the channels of each frame as a sequence
    expected = bsm.forward_scan(u) + bsm.backward_scan(u.flip(1)).flip(1)
    assert torch.allclose(bsm.out_proj(expected)[..., 0].view_as(x), bsm(x), atol=1e-6)
    # the spatial scan stays within a frame: changing frame 1 leaves frames 0 and 2 alone
    y = x.clone()
    y[:, 1] += 1
    changed = (bsm(y) - bsm(x)).abs().amax((0, 2))
    assert changed[1] > 1e-4 and changed[0] == 0 and changed[2] == 0


def test_htm_scans_see_only_their_own_streams():
    torch.manual_seed(0)
    htm = HTM(4, 3, TINY)
    streams = torch.randn(2, 5, 3, 4)
    base = htm.scan(streams)
    for j in range(3):
        moved = streams.clone()
        moved[:, :, j] += torch.randn(2, 5, 4)
        diff = (htm.scan(moved) - base).abs().amax((0, 1, 3))
        assert diff[j] > 1e-4 and all(diff[i] == 0 for i in range(3) if i != j)


def test_htm_alternates_directions():
    torch.manual_seed(0)
    htm = HTM(4, 2, TINY)
    streams = torch.randn(1, 6, 2, 4)
    moved = streams.clone()
    moved[:, 3] += 1  # step 3 of both streams
    diff = (htm.scan(moved) - htm.scan(streams)).abs().amax(-1)[0]  # (L, 2)
    assert diff[:3, 0].max() == 0 and diff[3:, 0].min() > 0  # forward scan: only from step 3 on
    assert diff[4:, 1].max() == 0 and diff[:4, 1].min() > 0  # backward scan: only up to step 3


def per_scan(mixers, u, reverse):
    """The computation `grouped_mamba` replaces: one mixer call per stream. u: (B, L, k, d)."""
    streams = zip(mixers, u.unbind(2), reverse, strict=True)
    return torch.stack([m(s.flip(1)).flip(1) if r else m(s) for m, s, r in streams], 2)


def test_grouped_mamba_equals_the_per_scan_calls_values_and_gradients():
    torch.manual_seed(0)
    kwargs = {"d_state": 5, "d_conv": 3, "expand": 2, "bias": True}  # biases on, so their stacking is covered too
    htm = HTM(6, 3, kwargs)
    for block in htm.scans:  # trained-looking weights: no zero-initialised parameter hides a mix-up
        for p in block.parameters():
            p.data += 0.1 * torch.randn_like(p)
    u = torch.randn(2, 7, 3, 6, requires_grad=True)
    reverse = [False, True, True]
    grouped, looped = grouped_mamba(htm.scans, u, reverse), per_scan(htm.scans, u, reverse)
    assert torch.allclose(grouped, looped, atol=1e-5) and grouped.abs().max() > 0.1
    w = torch.randn_like(grouped)
    grads = [torch.autograd.grad((out * w).sum(), [u, *htm.scans.parameters()]) for out in (grouped, looped)]
    for a, b in zip(*grads, strict=True):
        assert torch.allclose(a, b, atol=1e-5) and b.abs().max() > 0
    # a mix-up of mixers or directions would show: swapping the directions changes the output
    assert not torch.allclose(grouped_mamba(htm.scans, u, [True, False, False]), looped, atol=1e-3)


def test_batched_blocks_equal_the_per_scan_blocks():
    torch.manual_seed(1)
    htm, bsm = HTM(8, 5, TINY), BSM(8, 4, TINY)
    x = torch.randn(3, 6, 8)
    streams = htm.in_proj(x).unflatten(-1, (5, 8))
    looped = htm.out_proj(per_scan(htm.scans, streams, [i % 2 == 1 for i in range(5)]).flatten(2))
    assert torch.allclose(htm(x), looped, atol=1e-5)
    u = bsm.steps(x)
    looped = bsm.out_proj(bsm.forward_scan(u) + bsm.backward_scan(u.flip(1)).flip(1))[..., 0].view_as(x)
    assert torch.allclose(bsm(x), looped, atol=1e-5)


def test_denoisers_have_matched_sizes_and_shapes():
    mamba = MotionMambaDenoiser(4, 3, d_model=8, n_levels=3, d_spatial=4, mamba_kwargs=TINY)
    assert mamba.scans_per_level == [5, 3, 1] and [b.htm.n_scans for b in mamba.up] == [3, 5]

    def build(width):
        return TransformerDenoiser(4, 3, 5, width, 3, 2)

    transformer = build(matched_width(build, n_parameters(mamba), 2))
    assert abs(n_parameters(transformer) - n_parameters(mamba)) / n_parameters(mamba) < 0.1
    z, t, labels = torch.randn(2, 5, 4), torch.tensor([0, 999]), torch.tensor([0, 3])
    assert mamba(z, t, labels).shape == transformer(z, t, labels).shape == (2, 5, 4)


def test_ddim_with_a_perfect_denoiser_returns_the_clean_latent():
    diffusion = LatentDiffusion()
    target = torch.randn(1, 5, 4)

    def perfect(z, t, labels):
        a = diffusion.alphas_cumprod[t].view(-1, 1, 1)
        return (z - a.sqrt() * target) / (1 - a).sqrt()

    out = diffusion.sample(perfect, (2, 5, 4), torch.tensor([0, 1]), 2, n_sampling=10, guidance=3.0)
    assert torch.allclose(out, target.expand(2, 5, 4), atol=1e-4)


def test_vae_shapes():
    vae = MotionVAE(10, 16, {"d_model": 8, "n_layers": 1, "mixer": "mamba", "mixer_kwargs": TINY}, 3, 4).eval()
    x = torch.randn(2, 16, 10)
    mean, log_var = vae.encode(x)
    assert mean.shape == log_var.shape == (2, 4, 3) and vae(x)[0].shape == x.shape


def test_grouped_mamba_of_one_mixer_is_that_mixer():
    torch.manual_seed(2)
    htm = HTM(4, 1, TINY)
    u = torch.randn(2, 5, 1, 4)
    for reverse in (False, True):
        assert torch.equal(grouped_mamba(htm.scans, u, [reverse]), per_scan(htm.scans, u, [reverse]))


def test_ddim_keeps_what_the_projection_sets():
    diffusion = LatentDiffusion()
    target = torch.randn(2, 1, 4)

    def denoiser(z, t, labels):
        return 0.1 * z

    def project(z0):  # the first token is known
        return torch.cat([target, z0[:, 1:]], 1)

    out = diffusion.sample(denoiser, (2, 5, 4), torch.tensor([0, 1]), 2, n_sampling=4, project=project)
    free = diffusion.sample(denoiser, (2, 5, 4), torch.tensor([0, 1]), 2, n_sampling=4)
    assert torch.equal(out[:, :1], target) and not torch.allclose(out[:, 1:], free[:, 1:])


def test_grouped_and_separate_scans_give_the_same_denoiser_values_and_gradients():
    torch.manual_seed(3)
    denoiser = MotionMambaDenoiser(4, 3, d_model=8, n_levels=3, d_spatial=4, mamba_kwargs=TINY)
    for p in denoiser.parameters():
        p.data += 0.1 * torch.randn_like(p)
    z, t, labels = torch.randn(2, 5, 4), torch.tensor([3, 700]), torch.tensor([0, 3])
    outs, grads = [], []
    for grouped in (True, False):
        out = denoiser.group_scans(grouped)(z, t, labels)
        outs.append(out)
        grads.append(torch.autograd.grad(out.pow(2).sum(), list(denoiser.parameters())))
    assert torch.allclose(*outs, atol=1e-5) and outs[0].abs().max() > 0.1
    for a, b in zip(*grads, strict=True):
        assert torch.allclose(a, b, atol=1e-5)
