import pytest
import torch

import ssmkit
from ssmkit.layers.liquid_s4 import input_products
from ssmkit.testing import MixerContract


class TestLiquidS4Degree1(MixerContract):
    name = "liquid_s4"
    kwargs = {"liquid_degree": 1}


def test_degree_1_is_s4():
    torch.manual_seed(0)
    liquid = ssmkit.create_mixer("liquid_s4", 4, d_state=8, l_max=16, liquid_degree=1)
    s4 = ssmkit.create_mixer("s4", 4, d_state=8, l_max=16)
    s4.load_state_dict(liquid.state_dict())
    x = torch.randn(2, 11, 4)
    torch.testing.assert_close(liquid(x), s4(x))


def test_input_products_are_causal_products_of_consecutive_inputs():
    u = torch.tensor([[[2.0, 3.0, 5.0, 7.0]]])
    U = input_products(u, 3)
    assert U[0, 0, 0].tolist() == [0.0, 6.0, 15.0, 35.0]  # u_t u_{t-1}
    assert U[1, 0, 0].tolist() == [0.0, 0.0, 30.0, 105.0]  # u_t u_{t-1} u_{t-2}


def test_liquid_terms_change_the_output_and_match_the_definition():
    torch.manual_seed(0)
    m = ssmkit.create_mixer("liquid_s4", 3, d_state=4, l_max=16, liquid_degree=2).double()
    x = torch.randn(1, 9, 3, dtype=torch.float64)
    u = x.transpose(1, 2)
    K = m.kernel(9)
    s = m._dense()[1].sum(-1).real
    U2 = u * torch.nn.functional.pad(u, (1, 0))[..., :9]
    y = torch.zeros_like(u)
    for t in range(9):
        for j in range(t + 1):
            y[..., t] += K[:, j] * u[..., t - j] + K[:, j] * s * U2[..., t - j]
    expected = m.output((y + m.D[:, None] * u).transpose(1, 2))
    torch.testing.assert_close(m(x), expected)
    s4_only = ssmkit.create_mixer("liquid_s4", 3, d_state=4, l_max=16, liquid_degree=1).double()
    s4_only.load_state_dict(m.state_dict())
    assert not torch.allclose(s4_only(x), m(x))


def test_bidirectional_is_refused():
    with pytest.raises(ValueError, match="liquid_s4 is causal"):
        ssmkit.create_mixer("liquid_s4", 4, bidirectional=True)
