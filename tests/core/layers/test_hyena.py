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
        mixer.grouped_from, mixer.group_channels = 50, group  # 20 channels: groups of 4, of 6 (the last 2), one
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
