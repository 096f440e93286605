"""Hyena's long-input inference path: channel group by channel group equals the whole forward."""

import pytest
import torch

from ssmkit.layers.hyena import Hyena


@pytest.mark.parametrize("filter_kind", ["implicit", "explicit"])
@pytest.mark.parametrize("order, group", [(1, 4), (2, 6), (3, 20)])
def test_grouped_inference_equals_the_whole_forward(filter_kind, order, group):
    torch.manual_seed(0)
    mixer = Hyena(20, l_max=64, order=order, filter_order=8, filter=filter_kind).double().eval()
    x = torch.randn(2, 50, 20, dtype=torch.float64)
    with torch.no_grad():
        whole = mixer(x)
        mixer.grouped_from, mixer.group_positions = 50, group * 100  # B L = 100; 20 channels: groups of 4, of 6, one
        grouped = mixer(x)
    torch.testing.assert_close(grouped, whole, atol=1e-12, rtol=1e-12)
    base = torch.randn(2, 50, 20, dtype=torch.float64)
    with torch.no_grad():
        added = mixer.accumulate(x, base.clone())  # the groups' shares added straight into the buffer given
    torch.testing.assert_close(added, base + whole, atol=1e-12, rtol=1e-12)


def test_grouped_inference_is_only_for_long_inputs_without_gradients():
    mixer = Hyena(8, l_max=16, order=2, filter_order=8)
    calls = []
    mixer._forward_grouped = lambda u, out: calls.append(u.shape[1]) or out
    mixer.grouped_from = 10
    x = torch.randn(1, 12, 8)
    mixer(x)  # gradients on: the whole forward
    with torch.no_grad():
        mixer(x[:, :9])  # shorter than grouped_from
        mixer(x)
    assert calls == [12]


def test_groups_narrow_as_the_input_grows():
    mixer = Hyena(8, l_max=64, order=1, filter_order=8).eval()
    mixer.grouped_from, mixer.group_positions = 0, 128
    widths = []

    def filters(length, channels, hidden):
        widths.append(channels.stop - channels.start)
        return torch.zeros(widths[-1], length)

    mixer.filter.forward = filters
    with torch.no_grad():
        for length in (32, 64, 200):  # 128 // L channels per group, at least one
            mixer(torch.randn(1, length, 8))
    assert widths == [4, 4, 2, 2, 2, 2] + [1] * 8


def test_filter_features_in_chunks_equal_the_whole():
    mixer = Hyena(8, l_max=64, order=2, filter_order=8).double()
    whole = mixer.filter.hidden(50)  # gradients on: one pass
    with torch.no_grad():
        torch.testing.assert_close(mixer.filter.hidden(50, chunk=7), whole.detach(), atol=1e-14, rtol=1e-14)
