import torch

import ssmkit
from ssmkit.ops.hippo import hippo, hippo_dplr
from ssmkit.testing import MixerContract


class TestS4Bidirectional(MixerContract):
    name = "s4"
    kwargs = {"bidirectional": True}

    def test_sees_the_future_but_not_itself_twice(self):
        mixer, x = self.make(), self.inputs()
        x2 = x.clone()
        x2[:, -1] += 1.0
        assert not torch.allclose(mixer(x)[:, 0], mixer(x2)[:, 0])
        with torch.no_grad():
            mixer.C[1].zero_()  # no backward kernel: the causal layer
        x2 = x.clone()
        x2[:, 7:] += 1.0
        torch.testing.assert_close(mixer(x)[:, :7], mixer(x2)[:, :7], atol=1e-12, rtol=0)


def _s4() -> torch.nn.Module:
    torch.manual_seed(0)
    return ssmkit.create_mixer("s4", 4, d_state=8, l_max=8).double().eval()


def test_longer_input_extends_the_kernel_without_changing_the_function():
    mixer = _s4()
    x = torch.randn(2, 30, 4, dtype=torch.float64)
    with torch.no_grad():
        state = mixer.allocate_state(2, dtype=torch.float64)
        steps = torch.stack([mixer.step(x[:, t], state)[0] for t in range(30)], 1)
        y = mixer(x)  # L = 30 > l_kernel = 8: doubled to 32, C̃ rescaled
    assert int(mixer.l_kernel) == 32
    torch.testing.assert_close(y, steps, atol=1e-9, rtol=0)  # the step used the l_kernel = 8 parameters
    torch.testing.assert_close(mixer(x[:, :5]), y[:, :5], atol=1e-9, rtol=0)


def test_step_cache_follows_parameter_updates():
    mixer = _s4()
    x = torch.randn(1, 4, dtype=torch.float64)
    with torch.no_grad():
        y0, _ = mixer.step(x, mixer.allocate_state(1, dtype=torch.float64))
        mixer.log_dt.add_(0.5)  # an optimiser step
        y1, _ = mixer.step(x, mixer.allocate_state(1, dtype=torch.float64))
        y_ref = mixer(x[:, None])[:, 0]
    assert not torch.allclose(y0, y1)
    torch.testing.assert_close(y1, y_ref, atol=1e-9, rtol=0)


def test_init_is_hippo_legs_in_its_eigenbasis_and_stable():
    mixer = _s4()
    Lambda, P, B = (torch.cat([t, t.conj()], -1).detach() for t in mixer._dplr())
    A = torch.diag_embed(Lambda) - P[..., :, None] * P.conj()[..., None, :]  # (H, N, N)
    V = hippo_dplr(8)[3]
    V = torch.cat([V, V.conj()], 1)
    A_legs, B_legs = hippo("legs", 8)
    for h in range(4):
        torch.testing.assert_close(V @ A[h] @ V.conj().T, A_legs.to(V.dtype), atol=1e-5, rtol=0)
        torch.testing.assert_close(V @ B[h], B_legs.to(V.dtype), atol=1e-5, rtol=0)
    assert torch.linalg.eigvals(mixer._dense()[0]).abs().max() < 1
