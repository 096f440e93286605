"""U-Mamba-bot: token flattening, the channel-token switch, the ablation against DynUNet, sliding windows."""

import pytest
import torch
from monai.networks.nets import DynUNet

from ssmkit_medical.tasks import Segmenter
from ssmkit_medical.unets import MambaLayer, UMambaBot, create_segmenter, from_tokens, to_tokens


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
        count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
        assert count(umamba) == count(dynunet) + count(umamba.bottleneck[1])
        assert umamba(torch.randn(1, 1, *patch)).shape == (1, 3, *patch)
    with pytest.raises(ValueError, match="unknown segmentation model 'swin'"):
        create_segmenter("swin", 1, 2, [32, 32])


def test_sliding_window_equals_the_whole_image_forward_when_one_window_covers_it():
    task = Segmenter(n_classes=3, patch_size=[32, 32], model_kwargs={"filters": [8, 16, 32]}).eval()
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(task.infer(x), task(x))
