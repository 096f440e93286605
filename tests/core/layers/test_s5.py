import pytest
import torch

import ssmkit
from ssmkit.ops.hippo import hippo_dplr
from ssmkit.testing import MixerContract


def _s5() -> torch.nn.Module:
    torch.manual_seed(0)
    return ssmkit.create_mixer("s5", 4, d_state=8, blocks=2).double()


def test_step_restart_is_zeroing_the_state_rows():
    mixer = _s5().eval()
    x = torch.randn(1, 8, 4, dtype=torch.float64)
    resets = torch.zeros(1, 8, dtype=torch.bool)
    resets[0, 5] = True
    state = mixer.allocate_state(1, dtype=torch.float64)
    ys = []
    for t in range(8):
        if resets[0, t]:
            state["h"].zero_()
        y, state = mixer.step(x[:, t], state)
        ys.append(y)
    torch.testing.assert_close(torch.stack(ys, 1), mixer(x, resets=resets), atol=1e-12, rtol=0)


def test_conjugate_half_equals_the_full_real_system():
    """Keeping P/2 modes and doubling the real part is the real MIMO SSM with all P conjugate modes."""
    mixer = _s5()
    lam, B, C = mixer._dynamics()
    lam_f, B_f, C_f = torch.cat([lam, lam.conj()]), torch.cat([B, B.conj()]), torch.cat([C, C.conj()], 1) / 2
    x = torch.randn(1, 10, 4, dtype=torch.float64)
    h = torch.zeros(lam_f.shape[0], dtype=torch.complex128)
    ys = []
    for t in range(10):
        h = lam_f * h + B_f @ x[0, t].to(h.dtype)
        y = C_f @ h
        assert y.imag.abs().max() < 1e-12  # the full system is real
        ys.append(y.real + mixer.D * x[0, t])
    torch.testing.assert_close(mixer(x), mixer.output(torch.stack(ys)[None]), atol=1e-12, rtol=0)


def test_init_is_hippo_n_with_clipped_real_part():
    mixer = _s5()
    Lambda = hippo_dplr(4)[0].repeat(2)
    torch.testing.assert_close(mixer.Lambda_im.double(), Lambda.imag, atol=1e-6, rtol=0)
    assert bool((mixer.Lambda_re == -0.5).all())
    with torch.no_grad():
        mixer.Lambda_re.fill_(0.3)  # an unstable value is clipped to Re(Λ) = -1e-4
    assert bool((mixer._dynamics()[0].abs() < 1).all())


def test_bad_resets_and_state_size():
    mixer = _s5()
    x = torch.randn(2, 5, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"resets must be a bool tensor of shape \(B, L\) = \(2, 5\)"):
        mixer(x, resets=torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="multiple of 2 \\* blocks"):
        ssmkit.create_mixer("s5", 4, d_state=6, blocks=2)


class TestBidirectionalS5(MixerContract):
    name = "s5"
    kwargs = {"bidirectional": True}

    def test_refuses_resets(self):
        mixer, x = self.make(), self.inputs()
        with pytest.raises(ValueError, match="bidirectional S5 takes none"):
            mixer(x, resets=torch.zeros(2, 13, dtype=torch.bool))
