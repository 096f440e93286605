"""The image models: timm registry, paper sizes, bimamba v2 against two one-way Mamba passes, the backward
direction at model level, local weights only, shape errors named."""

import subprocess
import sys

import pytest
import timm
import torch

from ssmkit.layers.mamba import Mamba
from ssmkit_vision.layers import BiMambaV2
from ssmkit_vision.models import SequenceImageModel

TEST_MODELS = ["vim_test_patch4_28", "hydra_test_patch4_28", "vit_matched_test_patch4_28"]


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_discovery_imports_nothing_heavy_and_importing_the_models_registers_them_in_timm():
    code = (
        "import sys; from ssmkit.plugins import discover; discover(); import ssmkit_vision; "
        "heavy = [m for m in ('torch', 'timm', 'lightning', 'PIL') if m in sys.modules]; "
        "hooks = [f for f in sys.meta_path if str(getattr(f, '__module__', '')).startswith('ssmkit_vision')]; "
        "assert not heavy and not hooks, (heavy, hooks); "
        "import ssmkit_vision.models, timm; m = timm.create_model('vim_tiny_patch16_224', num_classes=10); "
        "print(m.num_classes, m.pretrained_cfg['input_size'], sorted(timm.list_models('vim_*')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("10 (3, 224, 224)") and "vim_base_patch16_224" in out


@pytest.mark.parametrize("name", TEST_MODELS)
def test_cpu_variants_classify_mnist_sized_images(name):
    model = timm.create_model(name)
    assert model.pretrained_cfg["input_size"] == (1, 28, 28) and model.num_classes == 10
    logits = model(torch.randn(3, 1, 28, 28))
    assert logits.shape == (3, 10)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_paper_sizes_and_the_matched_baselines():
    vim = timm.create_model("vim_tiny_patch16_224")
    assert round(n_params(vim) / 1e6) == 7  # Vim-Ti: 7M (README; 7.15M); Vim-S/B: 26M/98M, checked by hand
    assert len(vim.blocks) == 24 and vim.cls_index == 98  # 196 patches, class token in the middle
    hydra = timm.create_model("hydra_tiny_patch16_224")
    vit = timm.create_model("vit_matched_tiny_patch16_224")
    assert 0.9 < n_params(hydra) / n_params(vim) < 1.1
    assert 0.75 < n_params(vit) / n_params(vim) < 1.0  # DeiT-Ti (5.7M) beside Vim-Ti, as in the paper
    tests = [n_params(timm.create_model(name)) for name in TEST_MODELS]
    assert max(tests) / min(tests) < 1.25


def test_bimamba_v2_is_two_one_way_mamba_passes_with_shared_projections():
    torch.manual_seed(0)
    mixer = BiMambaV2(8, d_state=4, d_conv=3).double()
    x = torch.randn(2, 11, 8, dtype=torch.float64)
    directions = []
    for ssm in (mixer.ssm_f, mixer.ssm_b):  # an ordinary Mamba each, with the shared projections
        mamba = Mamba(8, d_state=4, d_conv=3).double()
        state = {k: v for k, v in ssm.state_dict().items()}
        state.update({"in_proj.weight": mixer.in_proj.weight, "out_proj.weight": mixer.out_proj.weight})
        mamba.load_state_dict(state)
        directions.append(mamba)
    reference = (directions[0](x) + directions[1](x.flip(1)).flip(1)) / 2
    torch.testing.assert_close(mixer(x), reference, rtol=1e-10, atol=1e-10)
    assert not torch.allclose(mixer.ssm_f.A_log, mixer.ssm_b.A_log) or not torch.allclose(
        mixer.ssm_f.x_proj.weight, mixer.ssm_b.x_proj.weight
    )  # separate SSM parameters per direction
    assert all(getattr(p, "_optim", None) for p in (mixer.ssm_b.A_log, mixer.ssm_b.D, mixer.ssm_b.dt_proj.bias))


def test_bimamba_v2_first_position_sees_the_last_and_padding_does_not_leak():
    mixer = BiMambaV2(8, d_state=4, d_conv=3)
    x = torch.randn(2, 9, 8, requires_grad=True)
    mixer(x)[:, 0].sum().backward()
    assert x.grad[:, -1].abs().sum() > 0  # a one-way (forward-only) mixer gives exactly zero here
    lengths = torch.tensor([9, 5])
    padded = x.detach().clone()
    padded[1, 5:] = 100.0
    torch.testing.assert_close(mixer(padded, lengths=lengths)[1, :5], mixer(x.detach()[1:, :5])[0])


@pytest.mark.parametrize("name", ["vim_test_patch4_28", "hydra_test_patch4_28"])
def test_a_class_token_placed_first_sees_the_later_patches(name):
    """Fails if the backward direction is lost (Vim's non-fused reference path): with the class token first,
    a one-way model's prediction cannot depend on any patch."""
    model = timm.create_model(name, cls_position="first").eval()
    images = torch.randn(2, 1, 28, 28, requires_grad=True)
    model(images).sum().backward()
    grad = images.grad.abs()
    assert grad[..., -4:, -4:].sum() > 0 and grad[..., :4, :4].sum() > 0  # the last and the first patch


def test_one_way_model_control_is_blind_with_the_class_token_first():
    """The control of the test above: replacing every mixer by a causal Mamba makes the gradient exactly zero."""
    model = timm.create_model("vim_test_patch4_28", cls_position="first", mixer="mamba", mixer_kwargs={"d_state": 4})
    images = torch.randn(2, 1, 28, 28, requires_grad=True)
    model(images).sum().backward()
    assert images.grad.abs().sum() == 0


def test_weights_come_only_from_a_local_file(tmp_path):
    assert timm.create_model("vim_test_patch4_28").pretrained_cfg["url"] == ""
    with pytest.raises(RuntimeError, match="No pretrained weights"):
        timm.create_model("vim_test_patch4_28", pretrained=True)
    source = timm.create_model("vim_test_patch4_28").eval()
    torch.save(source.state_dict(), tmp_path / "weights.pth")
    loaded = timm.create_model(
        "vim_test_patch4_28", pretrained=True, pretrained_cfg_overlay={"file": str(tmp_path / "weights.pth")}
    ).eval()
    images = torch.randn(2, 1, 28, 28)
    torch.testing.assert_close(loaded(images), source(images))
    three = timm.create_model(
        "vim_test_patch4_28",
        pretrained=True,
        num_classes=3,
        pretrained_cfg_overlay={"file": str(tmp_path / "weights.pth")},
    )
    assert three(images).shape == (2, 3)  # a new head, the trunk's weights kept


def test_sizes_not_divisible_by_the_patch_and_wrong_inputs_are_named_errors():
    with pytest.raises(ValueError, match="not divisible by patch_size 4"):
        SequenceImageModel(img_size=30, patch_size=4, embed_dim=16, depth=1)
    model = timm.create_model("vim_test_patch4_28")
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 1, 28, 28\), got \(2, 1, 32, 32\)"):
        model(torch.randn(2, 1, 32, 32))
    with pytest.raises(ValueError, match="cls_position"):
        SequenceImageModel(cls_position="last", embed_dim=16, depth=1)


def test_a_checkpoint_of_another_image_size_loads_with_a_resampled_position_embedding(tmp_path):
    """Vim's class token sits in the middle of the sequence: its entry must move as a whole to the middle of the
    new sequence, not be interpolated as a patch (timm's default treats prefix tokens as leading)."""
    source = timm.create_model("vim_test_patch4_28")  # 7 x 7 patches, class token at index 24
    with torch.no_grad():
        source.pos_embed.fill_(0.5)  # a constant patch grid stays constant under bicubic resampling
        source.pos_embed[0, source.cls_index] = 100.0
    torch.save(source.state_dict(), tmp_path / "weights.pth")
    big = timm.create_model(
        "vim_test_patch4_28",
        img_size=56,
        pretrained=True,
        pretrained_cfg_overlay={"file": str(tmp_path / "weights.pth")},
    )
    assert big.pos_embed.shape == (1, 14 * 14 + 1, 64) and big.cls_index == 98
    torch.testing.assert_close(big.pos_embed[0, 98], torch.full((64,), 100.0))
    patches = torch.cat([big.pos_embed[0, :98], big.pos_embed[0, 99:]])
    torch.testing.assert_close(patches, torch.full_like(patches, 0.5))
    torch.testing.assert_close(big.blocks[0].mixer.in_proj.weight, source.blocks[0].mixer.in_proj.weight)
    assert big(torch.randn(2, 1, 56, 56)).shape == (2, 10)


@pytest.mark.parametrize(("name", "index"), [("vit_matched_test_patch4_28", 0), ("vim_test_patch4_28", 32)])
def test_position_embedding_resampling_keeps_the_grid_and_the_class_token(name, index):
    from ssmkit_vision.models import resample_pos_embed

    small = timm.create_model(name, img_size=16)  # 4 x 4 patches
    rows = torch.arange(4.0).repeat_interleave(4)  # a patch's row index, row-major
    grid = rows[:, None].expand(16, 64)
    cls = torch.full((1, 64), -7.0)
    pos = torch.cat([grid[: small.cls_index], cls, grid[small.cls_index :]])[None]
    same = resample_pos_embed(pos, small)
    torch.testing.assert_close(same, pos)
    large = timm.create_model(name, img_size=32)  # 8 x 8 patches
    resampled = resample_pos_embed(pos, large)[0]
    assert large.cls_index == index and resampled.shape == (65, 64)
    torch.testing.assert_close(resampled[index], cls[0])
    new_rows = torch.cat([resampled[:index], resampled[index + 1 :]])[:, 0].reshape(8, 8)
    assert (new_rows.diff(dim=0) > 0).all() and torch.allclose(new_rows, new_rows[:, :1].expand(8, 8))
    with pytest.raises(ValueError, match="square grid"):
        resample_pos_embed(pos[:, :-1], large)
