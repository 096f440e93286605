import itertools

import pytest
import torch

from ssmkit.models import LanguageModel, beam_search, filter_logits


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


def sequence_logprob(lm, sequences, prompt_len):
    """Sum of log-probabilities of each sequence's generated tokens under a forward pass: (N, T) -> (N,)."""
    with torch.no_grad():
        logp = torch.log_softmax(lm(sequences[:, :-1]).float(), dim=-1)
    picked = logp.gather(-1, sequences[:, 1:, None])[..., 0]
    return picked[:, prompt_len - 1 :].sum(-1)


def test_beam_search_is_exact_when_the_beam_holds_every_continuation():
    """Vocabulary 3, 3 new tokens, 27 beams: the best beam is the best of all 27 continuations by brute force, and
    every returned score is the forward pass's log-probability of its sequence (state reordering is right)."""
    torch.manual_seed(1)
    lm = LanguageModel(3, 16, 2, mixer="mamba", mixer_kwargs={"d_state": 4}, hybrid={"attention": [1]}).eval()
    prompt = torch.randint(0, 3, (2, 4))
    sequences, scores = beam_search(lm, prompt, 3, num_beams=27)
    assert sequences.shape == (2, 27, 7) and torch.equal(sequences[:, :, :4], prompt[:, None].expand(2, 27, 4))
    for row in range(2):
        every = torch.tensor([list(prompt[row]) + list(c) for c in itertools.product(range(3), repeat=3)])
        brute = sequence_logprob(lm, every, 4)
        torch.testing.assert_close(scores[row, 0], brute.max(), rtol=0, atol=1e-4)
        assert torch.equal(sequences[row, 0], every[brute.argmax()])
        torch.testing.assert_close(scores[row], sequence_logprob(lm, sequences[row], 4), rtol=0, atol=1e-4)
        assert bool((scores[row, :-1] >= scores[row, 1:]).all())


def test_one_beam_is_greedy(lm):
    prompt = torch.randint(0, 11, (2, 5))
    sequences, _ = beam_search(lm, prompt, 6, num_beams=1)
    assert torch.equal(sequences[:, 0], lm.generate(prompt, 6, greedy=True))


def test_diverse_groups_start_differently(lm):
    """A large diversity penalty makes each group's first new token differ from the earlier groups'; without it,
    the groups of a plain beam search may coincide."""
    prompt = torch.randint(0, 11, (1, 5))
    sequences, scores = beam_search(lm, prompt, 4, num_beams=4, num_groups=4, diversity_penalty=100.0)
    assert len(set(sequences[0, :, 5].tolist())) == 4
    torch.testing.assert_close(scores[0], sequence_logprob(lm, sequences[0], 5), rtol=0, atol=1e-4)
    with pytest.raises(ValueError, match="must divide num_beams"):
        beam_search(lm, prompt, 4, num_beams=4, num_groups=3)
