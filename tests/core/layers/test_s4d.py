import pytest
import torch

import ssmkit


def test_positive_real_part_in_a_user_supplied_A_is_clamped_with_a_warning():
    A = torch.complex(torch.tensor([-0.5, 0.2, 0.0, -1.0]), torch.arange(4.0))
    with pytest.warns(UserWarning, match=r"A_init has 2 entries with real part >= 0 \(unstable\); clamped"):
        mixer = ssmkit.create_mixer("s4d", 3, d_state=8, A_init=A)
    A_used = mixer.ssm.A()
    assert A_used.shape == (3, 4) and bool((A_used.real < 0).all())
    torch.testing.assert_close(A_used.real[0], torch.tensor([-0.5, -1e-4, -1e-4, -1.0]))
    torch.testing.assert_close(A_used.imag[1], torch.arange(4.0))


def test_bad_A_init_is_rejected():
    with pytest.raises(ValueError, match="A_init has non-finite entries"):
        ssmkit.create_mixer("s4d", 3, d_state=4, A_init=torch.tensor([complex(float("nan"), 0), -1 + 0j]))
    with pytest.raises(ValueError, match=r"A_init must be a complex tensor of shape \(N/2,\) = \(2,\)"):
        ssmkit.create_mixer("s4d", 3, d_state=4, A_init=torch.tensor([-1.0, -1.0]))


def test_longer_input_than_the_cached_kernel_recomputes_it():
    torch.manual_seed(0)
    mixer = ssmkit.create_mixer("s4d", 4, d_state=4).double().eval()
    x = torch.randn(1, 30, 4, dtype=torch.float64)
    with torch.no_grad():
        short = mixer(x[:, :8])  # caches an 8-step kernel
        assert mixer.ssm._kernel_cache._value.shape[-1] == 8
        long = mixer(x)  # 30 > 8: recomputed, not truncated
        assert mixer.ssm._kernel_cache._value.shape[-1] == 30
        torch.testing.assert_close(mixer(x[:, :8]), short)  # a shorter input reuses a prefix
    mixer.train()
    torch.testing.assert_close(long, mixer(x))  # the uncached path agrees
    x2 = x.clone()
    x2[:, 0] += 1.0
    assert not torch.allclose(long[:, 29], mixer(x2)[:, 29])  # step 29 still sees step 0
