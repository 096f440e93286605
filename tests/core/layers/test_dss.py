import torch

import ssmkit
from ssmkit.ops.hippo import hippo_dplr
from ssmkit.testing import MixerContract


class TestDSSGrowingModes(MixerContract):
    """DSS-softmax allows Re(Λ) > 0; step and forward still agree."""

    name = "dss"

    def make(self, dtype=torch.float64, **overrides):
        mixer = super().make(dtype, **overrides)
        with torch.no_grad():
            mixer.ssm.Lambda_re[::2] = 0.3
        return mixer


def test_init_is_the_hippo_normal_spectrum_and_kernel_length_follows_the_input():
    torch.manual_seed(0)
    mixer = ssmkit.create_mixer("dss", 4, d_state=8, l_max=16).double()
    torch.testing.assert_close(mixer.ssm.Lambda_im.double(), hippo_dplr(8)[0].imag, atol=1e-6, rtol=0)
    x = torch.randn(1, 40, 4, dtype=torch.float64)  # longer than l_max: the kernel covers all 40 steps
    x2 = x.clone()
    x2[:, 0] += 1.0
    assert not torch.allclose(mixer(x)[:, 39], mixer(x2)[:, 39])
