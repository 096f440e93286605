import pytest
import torch

from ssmkit.models import LanguageModel, filter_logits


@pytest.fixture
def lm():
    torch.manual_seed(0)
    return LanguageModel(11, 16, 2, mixer="mamba", mixer_kwargs={"d_state": 4}).eval()


def test_greedy_matches_argmax_of_forward(lm):
    prompt = torch.randint(0, 11, (2, 5))
    out = lm.generate(prompt, 6, greedy=True)
    assert out.shape == (2, 11) and torch.equal(out[:, :5], prompt)
    with torch.no_grad():
        for t in range(5, 11):
            assert torch.equal(out[:, t], lm(out[:, :t])[:, -1].argmax(-1))


def test_sampling_is_seeded_and_respects_top_k(lm):
    prompt = torch.randint(0, 11, (3, 4))
    a = lm.generate(prompt, 8, top_k=3, generator=torch.Generator().manual_seed(5))
    b = lm.generate(prompt, 8, top_k=3, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    with torch.no_grad():
        for t in range(4, 12):
            top3 = lm(a[:, :t])[:, -1].topk(3).indices
            assert bool((top3 == a[:, t : t + 1]).any(-1).all())


def test_filter_logits_top_k_and_top_p():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isinf(filter_logits(logits, top_k=2)).tolist() == [[False, False, True, True]]
    # top_p=0.7: 0.5 alone is not enough, 0.5+0.3 crosses it: keep two
    assert torch.isinf(filter_logits(logits, top_p=0.7)).tolist() == [[False, False, True, True]]
    assert torch.isinf(filter_logits(logits, top_p=0.4)).tolist() == [[False, True, True, True]]


def test_bad_prompt_and_temperature(lm):
    with pytest.raises(ValueError, match="prompt must have shape"):
        lm.generate(torch.tensor([1, 2]), 3)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        lm.generate(torch.tensor([[1, 2]]), 3, temperature=0.0)
