"""ssmkit <-> transformers Mamba / Mamba-2 conversion on tiny random models built in the test (nothing
downloads)."""

import pytest
import torch

transformers = pytest.importorskip("transformers", reason="transformers is not installed (it is in the dev extra)")

from ssmkit.convert import from_transformers, to_transformers  # noqa: E402


def tiny_hf(kind: str):
    torch.manual_seed(0)
    common = {"vocab_size": 37, "hidden_size": 16, "state_size": 4, "num_hidden_layers": 2, "conv_kernel": 3}
    if kind == "mamba":
        return transformers.MambaForCausalLM(transformers.MambaConfig(**common, expand=2, time_step_rank=3))
    config = transformers.Mamba2Config(**common, expand=2, head_dim=4, num_heads=8, n_groups=2, chunk_size=8)
    return transformers.Mamba2ForCausalLM(config)


@pytest.fixture(params=["mamba", "mamba2"])
def pair(request):
    hf = tiny_hf(request.param).eval()
    with torch.no_grad():  # random, not the init's near-identity values, so every weight matters
        for p in hf.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return hf, from_transformers(hf).eval()


def test_forward_logits_agree(pair):
    hf, lm = pair
    ids = torch.randint(0, 37, (2, 21))
    with torch.no_grad():
        ours, theirs = lm(ids), hf(ids).logits
    assert ours.shape == (2, 21, 37)
    assert (ours - theirs).abs().max() < 1e-4


def test_token_by_token_generation_agrees(pair):
    hf, lm = pair
    prompt = torch.randint(0, 37, (2, 5))
    out = hf.generate(prompt, max_new_tokens=6, do_sample=False, output_logits=True, return_dict_in_generate=True)
    ours = lm.generate(prompt, 6, greedy=True)
    assert torch.equal(ours, out.sequences)
    state = lm.allocate_state(2)
    with torch.no_grad():
        for t in range(ours.shape[1] - 1):
            logits, state = lm.step_logits(ours[:, t], state)
            if t >= 4:
                assert (logits - out.logits[t - 4]).abs().max() < 1e-4


def test_round_trip_back_to_transformers(pair):
    hf, lm = pair
    back = to_transformers(lm).eval()
    ids = torch.randint(0, 37, (1, 9))
    with torch.no_grad():
        assert (back(ids).logits - hf(ids).logits).abs().max() < 1e-5
    assert back.config.tie_word_embeddings == hf.config.tie_word_embeddings


def test_unsupported_configs_are_refused_with_the_reason():
    hf = tiny_hf("mamba")
    hf.config.hidden_act = "gelu"
    with pytest.raises(ValueError, match="hidden_act='gelu'"):
        from_transformers(hf)
    from ssmkit.models import LanguageModel

    with pytest.raises(ValueError, match="only pure Mamba or Mamba-2 stacks"):
        to_transformers(LanguageModel(11, 8, 2, mixer="mamba", hybrid={"attention": [1]}))
