import pytest
import torch

import ssmkit
from ssmkit.layers import Attention, Mamba
from ssmkit.models import (
    BidirectionalMixer,
    ClassificationHead,
    LanguageModel,
    SequenceBackbone,
    pool,
    reverse_valid,
)
from ssmkit.testing import step_through


def test_hybrid_places_attention_at_chosen_layers():
    bb = SequenceBackbone(
        d_model=16,
        n_layers=4,
        mixer="mamba",
        mixer_kwargs={"d_state": 4},
        hybrid={"attention": [1, 3]},
        hybrid_kwargs={"attention": {"n_heads": 2}},
        vocab_size=11,
    )
    kinds = [type(b.mixer) for b in bb.layers]
    assert kinds == [Mamba, Attention, Mamba, Attention]
    assert bb.layers[1].mixer.n_heads == 2
    with pytest.raises(ValueError, match="outside"):
        SequenceBackbone(d_model=16, n_layers=2, hybrid={"attention": [2]})


CAUSAL_MIXERS = [name for name in ssmkit.list_mixers() if ssmkit.registry.mixer_class(name).causal]


@pytest.mark.parametrize("mixer", CAUSAL_MIXERS)
def test_language_model_step_equals_forward(mixer):
    lm = (
        LanguageModel(7, 16, 2, mixer=mixer, mlp_ratio=2, mixer_kwargs=ssmkit.registry.mixer_class(mixer).tiny_kwargs)
        .double()
        .eval()
    )
    tokens = torch.randint(0, 7, (2, 9))
    steps, _ = step_through(lm.step_logits, tokens, lm.allocate_state(2, dtype=torch.float64))
    torch.testing.assert_close(steps, lm(tokens))


@pytest.mark.parametrize("hybrid", [{}, {"attention": [1]}])
def test_prefill_then_step_equals_forward(hybrid):
    """A prompt read by `prefill_logits` in one pass, then steps, gives forward's logits (Mamba with attention)."""
    torch.manual_seed(0)
    lm = LanguageModel(7, 16, 2, mixer="mamba", mlp_ratio=2, hybrid=hybrid).double().eval()
    tokens = torch.randint(0, 7, (2, 9))
    full = lm(tokens)
    logits, state = lm.prefill_logits(tokens[:, :5])
    steps, _ = step_through(lm.step_logits, tokens, state, start=5)
    torch.testing.assert_close(torch.cat([logits[:, None], steps], 1), full[:, 4:])


def test_bidirectional_backbone_sees_both_directions():
    """A class token placed first must see later positions (Vim's lost-backward-scan trap)."""
    for bidirectional, should_change in ((False, False), (True, True)):
        bb = SequenceBackbone(
            d_model=8, n_layers=2, mixer="mamba", mixer_kwargs={"d_state": 4}, d_input=8, bidirectional=bidirectional
        )
        assert isinstance(bb.layers[0].mixer, BidirectionalMixer) == bidirectional
        x = torch.randn(2, 6, 8)
        x2 = x.clone()
        x2[:, -1] += 1.0
        changed = not torch.allclose(bb(x)[:, 0], bb(x2)[:, 0])
        assert changed == should_change


def test_bidirectional_backbone_uses_a_mixers_own_noncausal_kwargs():
    """Attention (`noncausal_kwargs = {"causal": False}`) attends both ways by itself; hydra is non-causal already."""
    hybrid_kwargs = {"attention": {"n_heads": 2}, "hydra": {"headdim": 4}}
    hybrid = {"attention": [1], "hydra": [2]}
    bb = SequenceBackbone(
        d_model=8, n_layers=3, mixer="mamba", hybrid=hybrid, hybrid_kwargs=hybrid_kwargs, bidirectional=True
    )
    mixers = [block.mixer for block in bb.layers]
    assert isinstance(mixers[0], BidirectionalMixer) and type(mixers[2]).__name__ == "Hydra"
    assert isinstance(mixers[1], Attention) and not mixers[1].causal


def test_bidirectional_padding_does_not_leak_and_reverse_valid():
    x = torch.arange(6.0).view(1, 6, 1).repeat(2, 1, 1)
    r = reverse_valid(x, torch.tensor([6, 4]))
    assert r[0, :, 0].tolist() == [5, 4, 3, 2, 1, 0]
    assert r[1, :, 0].tolist() == [3, 2, 1, 0, 4, 5]
    bb = SequenceBackbone(
        d_model=8, n_layers=1, mixer="mamba", mixer_kwargs={"d_state": 4}, d_input=8, bidirectional=True
    ).double()
    x = torch.randn(2, 7, 8, dtype=torch.float64)
    lengths = torch.tensor([7, 4])
    noisy = x.clone()
    noisy[1, 4:] = 100.0
    torch.testing.assert_close(bb(x, lengths=lengths)[1, :4], bb(noisy, lengths=lengths)[1, :4])
    torch.testing.assert_close(bb(x, lengths=lengths)[1, :4], bb(x[1:, :4])[0])
    with pytest.raises(NotImplementedError):
        bb.allocate_state(1)


def test_token_input_errors():
    bb = SequenceBackbone(d_model=8, n_layers=1, vocab_size=5, mixer_kwargs={"d_state": 4})
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, vocab_size=5\)"):
        bb(torch.tensor([[1, 7]]))
    with pytest.raises(ValueError, match="integer tensor"):
        bb(torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"shape \(B, L\)"):
        bb(torch.zeros(3, dtype=torch.long))


def test_pooling_and_heads():
    h = torch.arange(12.0).view(2, 3, 2)
    lengths = torch.tensor([3, 2])
    assert pool(h, "last", lengths).tolist() == [[4.0, 5.0], [8.0, 9.0]]
    assert pool(h, "mean", lengths).tolist() == [[2.0, 3.0], [7.0, 8.0]]
    assert pool(h, "cls").tolist() == [[0.0, 1.0], [6.0, 7.0]]
    assert pool(h, "meanmax", lengths).tolist() == [[2.0, 3.0, 4.0, 5.0], [7.0, 8.0, 8.0, 9.0]]  # max of valid ones
    assert pool(h, "meanmax").tolist() == [[2.0, 3.0, 4.0, 5.0], [8.0, 9.0, 10.0, 11.0]]
    assert ClassificationHead(2, 4, "last")(h, lengths).shape == (2, 4)
    assert ClassificationHead(2, 4, "meanmax")(h, lengths).shape == (2, 4)
    with pytest.raises(ValueError, match="pooling must be one of"):
        ClassificationHead(2, 4, "max")


def test_tied_embeddings_share_weight():
    lm = LanguageModel(9, 8, 1, tie_embeddings=True, mixer_kwargs={"d_state": 4})
    assert lm.lm_head.proj.weight is lm.backbone.embedding.weight


def test_model_registry_presets():
    assert {"mamba_lm_tiny", "mamba_lm_small", "transformer_lm_small"} <= set(ssmkit.list_models())
    lm = ssmkit.create_model("mamba_lm_tiny", vocab_size=12, n_layers=1)
    assert isinstance(lm, LanguageModel) and len(lm.backbone.layers) == 1
    assert lm(torch.randint(0, 12, (1, 5))).shape == (1, 5, 12)
    with pytest.raises(ValueError, match="unknown model 'gpt5'; registered models: .*mamba_lm_tiny"):
        ssmkit.create_model("gpt5")


def test_final_norm_can_be_left_out_so_the_amplitude_reaches_the_head():
    torch.manual_seed(0)
    normed = SequenceBackbone(d_model=16, n_layers=2, mixer="s4d", d_input=3)
    raw = SequenceBackbone(d_model=16, n_layers=2, mixer="s4d", d_input=3, final_norm=False)
    raw.load_state_dict({k: v for k, v in normed.state_dict().items() if not k.startswith("norm_f")})
    x = torch.randn(2, 12, 3)
    h = raw(x)
    torch.testing.assert_close(normed(x), normed.norm_f(h))  # the same blocks, one norm apart
    rms = normed(3 * x).pow(2).mean(-1).sqrt()
    torch.testing.assert_close(rms, torch.ones_like(rms), atol=1e-3, rtol=0)  # every position's amplitude fixed
    assert raw(3 * x).pow(2).mean(-1).sqrt().std() > 0.05  # left free without the final norm


def test_config_object_and_keywords_build_the_same_backbone():
    """One settings object: a `BackboneConfig`, its dict form (as a checkpoint stores it) and keywords agree."""
    config = ssmkit.BackboneConfig(d_model=8, n_layers=2, mixer="s4d", mixer_kwargs={"d_state": 4})
    built = [
        SequenceBackbone(config, d_input=3),
        SequenceBackbone(config.as_dict(), d_input=3),
        SequenceBackbone(d_model=8, n_layers=2, mixer="s4d", mixer_kwargs={"d_state": 4}, d_input=3),
    ]
    shapes = [{k: v.shape for k, v in bb.state_dict().items()} for bb in built]
    assert shapes[0] == shapes[1] == shapes[2] and all(bb.config == config for bb in built)
    assert SequenceBackbone(config, n_layers=3).config.n_layers == 3  # keywords replace fields
    assert "dropout" not in config.architecture() and config.architecture()["mixer"] == "s4d"


@pytest.mark.parametrize("mixer", ["mamba", "s5", "hyena"])
def test_a_packed_row_equals_each_sequence_alone(mixer):
    """Through every block (norms, mixers, MLPs): a packed row of three sequences is each run alone."""
    torch.manual_seed(0)
    backbone = SequenceBackbone(d_model=16, n_layers=2, mixer=mixer, mlp_ratio=2.0, vocab_size=11).double()
    tokens, bounds = torch.randint(0, 11, (1, 20)), [0, 7, 8, 20]
    packed = backbone(tokens, cu_seqlens=torch.tensor(bounds))
    alone = torch.cat([backbone(tokens[:, a:b]) for a, b in zip(bounds, bounds[1:], strict=False)], dim=1)
    torch.testing.assert_close(packed, alone, atol=1e-9, rtol=1e-7)


def test_resets_reach_every_layer():
    """A reset at t makes the backbone's outputs from t on those of the sequence started at t."""
    torch.manual_seed(0)
    backbone = SequenceBackbone(d_model=16, n_layers=2, mixer="s5", mlp_ratio=2.0, d_input=3).double()
    x, resets = torch.randn(2, 10, 3, dtype=torch.float64), torch.zeros(2, 10, dtype=torch.bool)
    resets[:, 6] = True
    torch.testing.assert_close(backbone(x, resets=resets)[:, 6:], backbone(x[:, 6:]), atol=1e-9, rtol=1e-7)


@pytest.mark.parametrize("mixer", ["mamba", "mamba2", "attention", "s4d"])
def test_chunked_prefill_equals_one_pass(mixer):
    """A language model reads a prompt in chunks of 4 (each from the previous chunk's state): the same last logits,
    and the same next step."""
    from ssmkit.models.lm import LanguageModel
    from ssmkit.registry import mixer_class

    torch.manual_seed(0)
    lm = LanguageModel(11, 16, 2, mixer=mixer, mixer_kwargs=mixer_class(mixer).tiny_kwargs).double().eval()
    prompt, token = torch.randint(0, 11, (2, 13)), torch.tensor([3, 4])
    logits_one, state_one = lm.prefill_logits(prompt)
    logits_chunked, state_chunked = lm.prefill_logits(prompt, chunk_size=4)
    torch.testing.assert_close(logits_chunked, logits_one, atol=1e-9, rtol=1e-7)
    torch.testing.assert_close(lm.step_logits(token, state_chunked)[0], lm.step_logits(token, state_one)[0])
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        lm.prefill_logits(prompt, chunk_size=0)


@pytest.mark.parametrize("mixer", ["hyena", "mamba"])
def test_inference_in_place_and_in_chunks_equals_the_training_forward(mixer):
    """Without gradients the blocks add residuals into the forward's own buffer and run the MLP a chunk of positions
    at a time (Hyena also a group of channels at a time, added straight into the residual stream): the same logits
    as the forward with gradients, and neither a block's input nor a backbone's feature input (read without an
    embedding) is changed."""
    torch.manual_seed(0)
    kwargs = {"l_max": 64, "filter_order": 8} if mixer == "hyena" else {"d_state": 4}
    model = LanguageModel(12, 16, 2, mixer=mixer, mixer_kwargs=kwargs, mlp_ratio=2.0).double().eval()
    tokens = torch.randint(0, 12, (2, 50))
    want = model(tokens)
    for block in model.backbone.layers:
        block.INFERENCE_CHUNK = 7
        if mixer == "hyena":
            block.mixer.grouped_from, block.mixer.group_positions = 0, 5 * 100  # groups of 5
    x = model.backbone.embed(tokens)
    before = x.clone()
    with torch.no_grad():
        got = model(tokens)
        model.backbone.layers[0](x)
    torch.testing.assert_close(got, want.detach(), atol=1e-12, rtol=1e-12)
    assert torch.equal(x, before)
    backbone = model.backbone.double()
    features = SequenceBackbone(backbone.config).double().eval()  # d_input = d_model: no embedding
    features.layers, features.norm_f = backbone.layers, backbone.norm_f
    with torch.no_grad():
        read = features(x)
    torch.testing.assert_close(read, model.backbone(tokens).detach(), atol=1e-12, rtol=1e-12)
    assert torch.equal(x, before)
