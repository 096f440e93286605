"""U-Mamba-bot and -enc, VM-UNet: token flattening, the channel-token switch, the ablations against DynUNet, sliding
windows, gradients."""

import pytest
import torch
from monai.networks.nets import DynUNet

from ssmkit_medical.tasks import Segmenter
from ssmkit_medical.unets import MambaLayer, UMambaBot, UMambaEnc, create_segmenter, from_tokens, to_tokens
from ssmkit_medical.vmunet import PatchExpand2D, VMUNet


@pytest.mark.parametrize("shape", [(2, 5, 3, 4), (2, 5, 3, 4, 2)])
@pytest.mark.parametrize("channel_token", [False, True])
def test_flatten_then_unflatten_round_trips(shape, channel_token):
    x = torch.randn(shape)
    tokens = to_tokens(x, channel_token)
    assert tokens.shape == ((2, 5, x[0, 0].numel()) if channel_token else (2, x[0, 0].numel(), 5))
    assert torch.equal(from_tokens(tokens, x.shape, channel_token), x)


def test_channel_tokens_exactly_when_tokens_are_at_most_channels():
    assert MambaLayer(16, 16, d_state=4).channel_token and not MambaLayer(16, 17, d_state=4).channel_token
    layer = MambaLayer(16, 16, d_state=4)
    assert layer.norm.normalized_shape == (16,) and layer(torch.randn(2, 16, 4, 4)).shape == (2, 16, 4, 4)
    with pytest.raises(ValueError, match="training patch size"):
        layer(torch.randn(1, 16, 8, 8))
    filters = (8, 16, 32)  # total stride 4: the bottleneck of a 32 px patch has 64 positions, of 16 px 16
    assert not create_segmenter("umamba_bot", 1, 2, [32, 32], filters).bottleneck[1].channel_token
    assert create_segmenter("umamba_bot", 1, 2, [16, 16], filters).bottleneck[1].channel_token


def test_umamba_bot_is_dynunet_plus_one_mamba_layer_in_2d_and_3d():
    for patch in ([32, 32], [16, 16, 16]):
        umamba, dynunet = (create_segmenter(name, 1, 3, patch, (8, 16, 32)) for name in ("umamba_bot", "dynunet"))
        assert isinstance(umamba, UMambaBot) and type(dynunet) is DynUNet
        assert count(umamba) == count(dynunet) + count(umamba.bottleneck[1])
        assert umamba(torch.randn(1, 1, *patch)).shape == (1, 3, *patch)
    with pytest.raises(ValueError, match="unknown segmentation model 'swin'"):
        create_segmenter("swin", 1, 2, [32, 32])


def count(module):
    return sum(p.numel() for p in module.parameters())


def test_umamba_enc_is_dynunet_plus_a_mamba_layer_after_every_encoder_stage():
    for patch in ([32, 32], [16, 16, 16]):
        umamba, dynunet = (create_segmenter(name, 1, 3, patch, (8, 16, 32)) for name in ("umamba_enc", "dynunet"))
        assert isinstance(umamba, UMambaEnc)
        layers = [m for m in umamba.modules() if isinstance(m, MambaLayer)]
        assert [layer.channels for layer in layers] == [8, 16, 32]
        assert count(umamba) == count(dynunet) + sum(count(layer) for layer in layers)
        assert umamba(torch.randn(1, 1, *patch)).shape == (1, 3, *patch)
    # the channel-token rule per level, tokens <= channels: 8 px -> 64, 16, 4 positions for 8, 16, 32 channels
    layers = [
        m for m in create_segmenter("umamba_enc", 1, 2, [8, 8], (8, 16, 32)).modules() if isinstance(m, MambaLayer)
    ]
    assert [(layer.tokens, layer.channel_token) for layer in layers] == [(64, False), (16, True), (4, True)]


def test_vmunet_shapes_patch_expanding_and_errors():
    assert PatchExpand2D(6)(torch.randn(2, 4, 3, 6)).shape == (2, 8, 6, 3)
    assert PatchExpand2D(8, scale=4)(torch.randn(1, 2, 3, 8)).shape == (1, 8, 12, 2)
    net = create_segmenter("vmunet", 1, 3, [32, 32], (8, 16, 32), d_state=4)
    assert isinstance(net, VMUNet) and net(torch.randn(2, 1, 32, 64)).shape == (2, 3, 32, 64)
    with pytest.raises(ValueError, match="divisible by 16"):
        net(torch.randn(1, 1, 24, 32))
    with pytest.raises(ValueError, match="patch_size divisible by 16"):
        create_segmenter("vmunet", 1, 2, [24, 32], (8, 16, 32))
    with pytest.raises(ValueError, match="vmunet is 2D"):
        create_segmenter("vmunet", 1, 2, [16, 16, 16])
    with pytest.raises(ValueError, match="dims doubling"):
        VMUNet(dims=(8, 24))


@pytest.mark.parametrize("name", ["vmunet", "umamba_enc"])
def test_gradients_reach_every_parameter(name):
    torch.manual_seed(0)
    net = create_segmenter(name, 1, 2, [32, 32], (8, 16, 32), **({"d_state": 4} if name == "vmunet" else {}))
    net(torch.randn(2, 1, 32, 32)).square().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


@pytest.mark.parametrize("name", ["umamba_bot", "umamba_enc", "vmunet"])
def test_sliding_window_equals_the_whole_image_forward_when_one_window_covers_it(name):
    task = Segmenter(name, n_classes=3, patch_size=[32, 32], model_kwargs={"filters": [8, 16, 32]}).eval()
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(task.infer(x), task(x))
