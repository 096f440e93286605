import pytest
import torch

import ssmkit
from ssmkit.ops import bilinear_discretise
from ssmkit.testing import MixerContract


class TestLSSLLegT(MixerContract):
    name = "lssl"
    kwargs = {"measure": "legt"}


class TestLSSLFouTLearnedA(MixerContract):
    name = "lssl"
    kwargs = {"d_state": 7, "measure": "fout", "learn_A": True}


@pytest.mark.parametrize("measure", ["legs", "legt", "fout"])
def test_recurrent_and_convolutional_modes_give_the_same_ssm_output(measure):
    """Before the output layer: y = K * u + D u equals the recurrence x_k = A_bar x_{k-1} + B_bar u_k, C x_k + D u_k."""
    torch.manual_seed(0)
    lssl = ssmkit.create_mixer("lssl", 3, d_state=6, measure=measure).double()
    lssl.output = torch.nn.Identity()
    u = torch.randn(2, 40, 3, dtype=torch.float64)
    A_bar, B_bar = bilinear_discretise(lssl.A, lssl.B, lssl.log_dt)
    x = torch.zeros(2, 3, 6, dtype=torch.float64)
    ys = []
    for k in range(40):
        x = torch.einsum("hnm,bhm->bhn", A_bar, x) + B_bar * u[:, k, :, None]
        ys.append((lssl.C * x).sum(-1) + lssl.D * u[:, k])
    torch.testing.assert_close(lssl(u), torch.stack(ys, 1), atol=1e-10, rtol=0)


def test_frozen_hippo_is_a_buffer_and_learned_a_is_tagged():
    frozen = ssmkit.create_mixer("lssl", 4, d_state=4)
    assert "A" in dict(frozen.named_buffers()) and "A" not in dict(frozen.named_parameters())
    learned = ssmkit.create_mixer("lssl", 4, d_state=4, learn_A=True)
    assert learned.A._optim["weight_decay"] == 0.0 and learned.log_dt._optim["weight_decay"] == 0.0
