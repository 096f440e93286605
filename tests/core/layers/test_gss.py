import torch

import ssmkit


def test_widths_follow_the_paper():
    gss = ssmkit.create_mixer("gss", 16)
    assert gss.u_proj.out_features == 4 and gss.v_proj.out_features == 64 and gss.out_proj.out_features == 16


def test_gate_multiplies_the_ssm_path():
    """Zeroing the gate branch's projection zeroes the output apart from the output bias."""
    torch.manual_seed(0)
    gss = ssmkit.create_mixer("gss", 8, **ssmkit.registry.mixer_class("gss").tiny_kwargs)
    with torch.no_grad():
        gss.v_proj.weight.zero_()
        gss.v_proj.bias.zero_()
    y = gss(torch.randn(2, 5, 8))
    torch.testing.assert_close(y, gss.out_proj.bias.expand_as(y))
