"""torch.export of a language model's recurrent step (the decoding graph): the exported program steps as eager does.
Exporting picks the best backend the exporter can trace (numba's kernels are opaque calls, so the step runs on its
PyTorch path inside the graph)."""

import pytest
import torch
from torch import nn

from ssmkit.models.lm import LanguageModel
from ssmkit.registry import mixer_class


class Step(nn.Module):
    def __init__(self, lm: LanguageModel) -> None:
        super().__init__()
        self.lm = lm

    def forward(self, tokens: torch.Tensor, state: list[dict[str, torch.Tensor]]):
        return self.lm.step_logits(tokens, state)


@pytest.mark.parametrize("mixer", ["mamba", "mamba2", "s5", "lru", "s4d"])
def test_the_exported_step_equals_eager(mixer):
    torch.manual_seed(0)
    lm = LanguageModel(11, 16, 2, mixer=mixer, mixer_kwargs=mixer_class(mixer).tiny_kwargs).eval()
    tokens = torch.randint(0, 11, (4, 2))
    exported = torch.export.export(Step(lm), (tokens[0], lm.allocate_state(2))).module()
    state_eager, state_exported = lm.allocate_state(2), lm.allocate_state(2)
    for t in tokens:
        want, state_eager = lm.step_logits(t, state_eager)
        got, state_exported = exported(t, state_exported)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
