"""MedMamba: channel shuffle, the SS-Conv-SSM block, timm's registry, and a named error for the wrong channels."""

import pytest
import timm
import torch

import ssmkit_medical.models  # noqa: F401  (registers the models in timm)
from ssmkit_medical.models import SSConvSSM, channel_shuffle


def test_channel_shuffle_interleaves_the_two_halves():
    x = torch.arange(8.0).reshape(1, 1, 1, 8)  # left half 0..3, right half 4..7
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 4, 1, 5, 2, 6, 3, 7]


def test_the_block_adds_the_shuffled_branches_to_its_input():
    block = SSConvSSM(8, d_state=4).eval()
    x = torch.randn(2, 5, 6, 8)
    left, right = x.chunk(2, -1)
    conv = block.conv(left.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    expected = channel_shuffle(torch.cat([conv, block.ss2d(block.norm(right))], -1), 2) + x
    torch.testing.assert_close(block(x), expected)
    with pytest.raises(ValueError, match="dim must be even"):
        SSConvSSM(7)


def test_registered_in_timm_and_odd_feature_maps_merge():
    assert set(timm.list_models("medmamba*")) == {"medmamba_test_patch2_28", "medmamba_tiny_patch4_224"}
    model = timm.create_model("medmamba_test_patch2_28", num_classes=3, in_chans=1)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 3)  # 14 -> 7 -> 4 (padded)
    assert model.forward_head(model.forward_features(torch.randn(1, 1, 20, 20)), pre_logits=True).shape == (1, 128)


def test_a_single_channel_model_on_rgb_images_is_a_named_error():
    model = timm.create_model("medmamba_test_patch2_28", num_classes=2, in_chans=1)
    with pytest.raises(ValueError, match=r"takes images \(B, 1, H, W\) \(single-channel\), got \(2, 3, 28, 28\)"):
        model(torch.randn(2, 3, 28, 28))
