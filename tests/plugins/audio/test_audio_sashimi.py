"""SaShiMi (ssmkit_audio.sashimi): recurrent mode equals convolution mode, and the U-shaped stack is causal (the
up-pooling's one-step shift), over mu-law tokens."""

import pytest
import torch

from ssmkit.models import BackboneConfig
from ssmkit.testing import step_through
from ssmkit_audio.sashimi import Sashimi, SashimiLM

TINY = BackboneConfig(d_model=4, n_layers=1, mixer="s4d", mixer_kwargs={"d_state": 4}, mlp_ratio=2)


def tokens(length: int = 64, batch: int = 2) -> torch.Tensor:
    return torch.randint(0, 256, (batch, length), generator=torch.Generator().manual_seed(1))


def tiny_lm(**kwargs) -> SashimiLM:
    torch.manual_seed(0)
    return SashimiLM(TINY, **kwargs).double().eval()


@pytest.mark.parametrize("pools", [(4, 4), (2, 3)])
def test_recurrent_mode_equals_convolution_mode(pools):
    model, x = tiny_lm(pools=pools), tokens(48)
    with torch.no_grad():
        steps, _ = step_through(model.step, x, model.allocate_state(2, dtype=torch.float64))
        torch.testing.assert_close(steps, model(x), atol=1e-9, rtol=0)


def test_causal_through_the_pooling():
    model, x = tiny_lm(), tokens(64)
    with torch.no_grad():
        y = model(x)
        for t in (1, 5, 16, 17, 40):
            changed = x.clone()
            changed[:, t:] = (changed[:, t:] + 101) % 256
            after = model(changed)
            torch.testing.assert_close(after[:, :t], y[:, :t], atol=1e-12, rtol=0)
            assert not torch.allclose(after[:, t], y[:, t])


def test_widths_and_lengths():
    model = Sashimi(BackboneConfig(d_model=8, n_layers=2, mixer="s4d"), pools=(4, 4), expand=2)
    assert [d.linear.out_features for d in model.down] == [16, 32]
    assert [s.d_model for s in model.stacks] == [16, 8] and model.centre.d_model == 32
    assert model(torch.randn(1, 32, 8)).shape == (1, 32, 8)
    with pytest.raises(ValueError, match="multiple of prod\\(pools\\) = 16"):
        model(torch.randn(1, 20, 8))
