"""Every registered mixer passes the mixer contract (ssmkit.testing.MixerContract), on its tiny settings and on
the variants below; then behaviour tests of single families."""

import pytest
import torch

import ssmkit
from ssmkit.layers import set_debug
from ssmkit.registry import with_l_max
from ssmkit.testing import MixerContract, mixer_inputs, step_through, tiny_mixer


class TestEveryMixer(MixerContract):
    """The contract for each name in `ssmkit.list_mixers()`."""


class TestS4DInv(MixerContract):
    name = "s4d"
    kwargs = {"d_state": 6, "init": "inv"}


class TestBidirectionalAttention(MixerContract):
    name = "attention"
    kwargs = {"causal": False}


class TestMamba2Groups(MixerContract):
    name = "mamba2"
    kwargs = {"d_state": 3, "d_conv": 2, "expand": 2, "headdim": 2, "ngroups": 2, "chunk_size": 5}


class TestHyenaOrder3(MixerContract):
    name = "hyena"
    kwargs = {"order": 3, "l_max": 16, "filter_order": 4, "emb_dim": 3, "short_kernel": 2}


class TestHyenaExplicitFilter(MixerContract):
    name = "hyena"
    kwargs = {"filter": "explicit"}


class TestH3StatePassing(MixerContract):
    """Blocks of 4 positions: the forward pass runs FlashConv's state passing across blocks."""

    name = "h3"
    kwargs = {"d_state": 4, "head_dim": 1, "shift_size": 2, "block_size": 4}


class TestSlidingWindowAttention(MixerContract):
    name = "attention"
    kwargs = {"window": 4}


class TestChunkedAttention(MixerContract):
    name = "attention"
    kwargs = {"chunk_size": 5}


class TestBidirectionalWindowAttention(MixerContract):
    name = "attention"
    kwargs = {"window": 3, "causal": False}


def test_with_l_max_fills_in_l_max_where_the_family_takes_it():
    assert with_l_max("hyena", {"order": 2}, 64) == {"l_max": 64, "order": 2}
    assert with_l_max("long_conv", {"l_max": 8}, 64) == {"l_max": 8}  # given kwargs win
    assert with_l_max("mamba", {"d_state": 4}, 64) == {"d_state": 4}


def test_family_capabilities():
    families = {name: ssmkit.registry.mixer_class(name) for name in ssmkit.list_mixers()}
    assert {n for n, f in families.items() if f.takes_l_max} >= {"hyena", "s4", "long_conv", "sgconv", "dss"}
    assert {n for n, f in families.items() if f.takes_resets} >= {"s5", "lru"}
    assert {n for n, f in families.items() if not f.causal} >= {"bimamba_v2", "hydra", "orchid"}
    assert families["attention"].noncausal_kwargs == {"causal": False}


def test_attention_kv_cache_grows_past_its_initial_capacity():
    mixer = ssmkit.create_mixer("attention", 8, n_heads=2).double().eval()
    x = torch.randn(1, 70, 8, dtype=torch.float64)
    steps, _ = step_through(mixer.step, x, mixer.allocate_state(1, dtype=torch.float64))
    torch.testing.assert_close(steps, mixer(x))


def test_registry_lists_and_rejects():
    assert {"mamba", "s4d", "attention"} <= set(ssmkit.list_mixers())
    with pytest.raises(ValueError, match="unknown mixer 'mambo'; registered mixers: .*mamba"):
        ssmkit.create_mixer("mambo", 8)
    with pytest.raises(ValueError, match="already registered"):
        ssmkit.register_mixer("mamba")(type("Dup", (), {}))


def test_debug_mode_catches_non_finite_outputs():
    mixer = ssmkit.create_mixer("s4d", 4, d_state=4)
    with torch.no_grad():
        mixer.ssm.D.fill_(float("nan"))
    x = torch.randn(1, 5, 4)
    assert torch.isnan(mixer(x)).any()  # off by default: no check on the hot path
    set_debug(True)
    try:
        with pytest.raises(FloatingPointError, match="S4D.forward produced NaN or inf at batch 0, position 0"):
            mixer(x)
        healthy, poisoned = ssmkit.create_mixer("hyena", 4, **ssmkit.registry.mixer_class("hyena").tiny_kwargs), x
        poisoned[0, 3] = float("nan")
        with pytest.raises(FloatingPointError, match="the input first at batch 0, position 3"):
            healthy(poisoned)
    finally:
        set_debug(False)


def test_mamba_dynamics_tags_and_init():
    m = ssmkit.create_mixer("mamba", 16)
    tagged = {n for n, p in m.named_parameters() if getattr(p, "_optim", {}).get("weight_decay") == 0.0}
    assert tagged == {"A_log", "D", "dt_proj.bias"}
    dt = torch.nn.functional.softplus(m.dt_proj.bias)
    assert 1e-3 * 0.99 <= dt.min() and dt.max() <= 0.1 * 1.01


def test_hydra_every_position_sees_every_other():
    mixer, x = tiny_mixer("hydra"), mixer_inputs()
    for t in (0, 6, 12):
        x2 = x.clone()
        x2[:, t] += 1.0
        changed = (mixer(x2) - mixer(x)).abs().amax(dim=(0, 2)) > 0
        assert bool(changed.all()), f"a change at position {t} must reach every position"


def test_hyena_longer_than_l_max_is_a_clear_error():
    mixer = tiny_mixer("hyena", torch.float32)
    with pytest.raises(ValueError, match="sequence length 33 exceeds the filters' l_max=32"):
        mixer(torch.randn(1, 33, 8))


def test_hyena_explicit_tap_at_one_lag_copies_the_input_from_that_far_back():
    mixer = tiny_mixer("hyena", filter="explicit", order=1, filter_squash=0.0)
    with torch.no_grad():
        mixer.filter.weight.zero_()
        mixer.filter.weight[:, 9] = 1.0  # h(t) = delta(t - 9)
        mixer.filter_bias.zero_()
    x = mixer_inputs()
    v, gate = mixer._projections(x)
    expected = mixer.out_proj((gate[..., 9:] * v[..., :-9]).transpose(1, 2))
    torch.testing.assert_close(mixer(x)[:, 9:], expected)


def test_hyena_explicit_squash_soft_thresholds_the_taps():
    mixer = tiny_mixer("hyena", filter="explicit", filter_squash=0.1)
    with torch.no_grad():
        mixer.filter.weight.copy_(torch.linspace(-0.3, 0.3, mixer.filter.weight.numel()).view_as(mixer.filter.weight))
    w, h = mixer.filter.weight, mixer.filter(32)
    torch.testing.assert_close(h, torch.where(w.abs() <= 0.1, 0.0, w - 0.1 * w.sign()))


def test_hyena_unknown_filter_is_named():
    with pytest.raises(ValueError, match="filter must be one of"):
        tiny_mixer("hyena", filter="fno")


def test_long_conv_squash_makes_small_weights_exactly_zero():
    mixer = tiny_mixer("long_conv", squash_lambda=0.5, smooth_width=1)
    with torch.no_grad():
        mixer.weight.copy_(torch.linspace(-1, 1, mixer.weight.numel()).view_as(mixer.weight))
    k = mixer.kernel(32)
    small = mixer.weight.abs() <= 0.5
    assert bool((k[small] == 0).all()) and bool((k[~small].abs() == mixer.weight[~small].abs() - 0.5).all())


def test_sgconv_parameters_grow_sublinearly_with_length():
    counts = [ssmkit.create_mixer("sgconv", 4, l_max=n, kernel_dim=8).sub_kernels for n in (64, 1024, 16384)]
    sizes = [sum(p.numel() for p in subs) for subs in counts]
    assert sizes == [4 * 8 * 4, 4 * 8 * 8, 4 * 8 * 12]  # H * kernel_dim * (1 + log2(L / kernel_dim))
    k = ssmkit.create_mixer("sgconv", 4, l_max=64, kernel_dim=8).kernel(64)
    assert k.shape == (4, 64) and torch.allclose(k.norm(dim=-1), torch.ones(4))


def changed_positions(mixer: torch.nn.Module, t: int) -> list[bool]:
    """Which output positions change when the input at position t does (13 positions)."""
    x = mixer_inputs()
    x2 = x.clone()
    x2[:, t] += 1.0
    return ((mixer(x2) - mixer(x)).abs().amax(dim=(0, 2)) > 0).tolist()


def test_sliding_window_attention_attends_only_within_the_window():
    assert changed_positions(tiny_mixer("attention", window=4), 3) == [t in range(3, 7) for t in range(13)]


def test_chunked_attention_attends_only_within_the_chunk():
    assert changed_positions(tiny_mixer("attention", chunk_size=5), 6) == [t in range(6, 10) for t in range(13)]


def test_mom_matches_the_memory_equations():
    """M_i = gamma_i M_i + [routed] k_i v_i^T; o = sum_i g_i M_i^T q + M_s^T q (shared memory last)."""
    mixer, x = tiny_mixer("mom"), mixer_inputs(batch=1)[0]
    gates = torch.cat([mixer.route(x), torch.ones(13, 1, dtype=x.dtype)], dim=-1)
    k, v = mixer.kv_proj(x).unflatten(-1, (2, 4, 4)).unbind(1)
    q, gamma = mixer.q_proj(x), torch.sigmoid(mixer.decay_logit)
    memories = torch.zeros(4, 4, 4, dtype=x.dtype)
    outputs = []
    for t in range(13):
        memories = gamma[:, None, None] * memories + (gates[t] > 0)[:, None, None] * k[t, :, :, None] * v[t, :, None, :]
        reads = torch.einsum("hkv,k->hv", memories, q[t])
        outputs.append(mixer.out_proj(mixer.norm((gates[t, :, None] * reads).sum(0))))
    torch.testing.assert_close(mixer(x[None])[0], torch.stack(outputs))


def test_mom_routing_picks_top_k_and_unrouted_memories_stay_empty():
    mixer = tiny_mixer("mom")
    x = mixer_inputs(batch=1).abs()  # positive inputs: the router logits below are ordered 0 > 1 > 2
    gates = mixer.route(x)
    assert bool(((gates > 0).sum(-1) == 2).all()) and torch.allclose(gates.sum(-1), torch.ones(1, 13, dtype=x.dtype))
    with torch.no_grad():
        mixer.router.weight.zero_()
        mixer.router.weight[0] = 1.0
        mixer.router.weight[1] = 0.5  # memory 2 keeps logit 0: never in the top 2
    state = mixer.allocate_state(1, dtype=x.dtype)
    for t in range(5):
        _, state = mixer.step(x[:, t], state)
    memories = state["memories"][0]
    assert bool(memories[2].eq(0).all()) and not bool(memories[0].eq(0).all())


def test_longvq_attention_equals_softmax_attention_over_quantised_keys():
    """The code-factorised read is exact causal softmax attention with keys replaced by their codes."""
    mixer, x = tiny_mixer("longvq"), mixer_inputs(batch=1)
    q, k = mixer.qk_proj(x).chunk(2, dim=-1)
    v, _ = mixer.vz_proj(x).chunk(2, dim=-1)
    codes = mixer.assign(k)
    values = torch.cumsum(codes[..., None] * v[..., None, :], dim=1)
    fast = mixer._read(q, values, torch.cumsum(codes, dim=1))
    quantised = codes @ mixer.codebook  # (1, L, d_key)
    scores = (q @ quantised.transpose(1, 2)) / mixer.d_key**0.5
    scores = scores.masked_fill(torch.ones(13, 13, dtype=torch.bool).triu(1), float("-inf"))
    torch.testing.assert_close(fast, scores.softmax(-1) @ v)


def test_longvq_gradients_reach_the_keys_through_the_straight_through_assignment():
    mixer, x = tiny_mixer("longvq"), mixer_inputs()
    mixer(x).sum().backward()
    assert mixer.qk_proj.weight.grad[mixer.d_key :].abs().sum() > 0  # the rows that make the keys


def test_orchid_shift_equivariant():
    """Shifting the input inside zero padding shifts the output: the kernel depends on the data only through a
    shift-invariant cross-correlation."""
    mixer = tiny_mixer("orchid")
    with torch.no_grad():  # biases would make the zero padding non-zero after the projection
        mixer.in_proj.bias.zero_()
        mixer.out_proj.bias.zero_()
    x = torch.zeros(1, 20, 8, dtype=torch.float64)
    x[:, 2:9] = mixer_inputs(batch=1, length=7)
    shifted = x.roll(5, dims=1)
    torch.testing.assert_close(mixer(shifted), mixer(x).roll(5, dims=1))


def test_orchid_two_sided_convolution_matches_the_definition():
    from ssmkit.layers.orchid import two_sided_conv

    v, h = torch.randn(1, 1, 6, dtype=torch.float64), torch.randn(11, dtype=torch.float64)  # lags -5..5
    wrapped = torch.cat([h[5:], torch.zeros(16 - 11, dtype=torch.float64), h[:5]])
    y = two_sided_conv(v, torch.fft.rfft(wrapped, n=16), 16)
    expected = [sum(h[5 + t - s] * v[0, 0, s] for s in range(6)) for t in range(6)]
    torch.testing.assert_close(y[0, 0], torch.stack(expected))


def seqboat_with_gate(bias: float, pattern: torch.Tensor | None = None) -> torch.nn.Module:
    """A tiny SeqBoat whose gate is forced: all off (bias -50), all on (+50), or on where `pattern` is."""
    mixer = tiny_mixer("seqboat")
    with torch.no_grad():
        mixer.gate.weight.zero_()
        mixer.gate.bias.fill_(bias)
    if pattern is not None:
        original = mixer.activation
        mixer.activation = lambda h: (original(h)[0], pattern.expand(h.shape[:-1]))
    return mixer


def test_seqboat_gate_off_is_the_ssm_path_alone():
    mixer, x = seqboat_with_gate(-50.0), mixer_inputs()
    h = mixer.ssm(mixer.in_proj(x).transpose(1, 2)).transpose(1, 2)
    torch.testing.assert_close(mixer(x), mixer.out_proj(h))


def test_seqboat_attention_runs_on_the_activated_tokens_only():
    pattern = torch.tensor([True, False] * 6 + [True])
    mixer, x = seqboat_with_gate(50.0, pattern), mixer_inputs()
    h = mixer.ssm(mixer.in_proj(x).transpose(1, 2)).transpose(1, 2)
    attn = torch.zeros_like(h)
    attn[:, pattern] = mixer.attention(h[:, pattern])  # attention over the activated tokens, run directly
    torch.testing.assert_close(mixer(x), mixer.out_proj(h + attn))  # p = sigmoid(50) = 1 in float64


def test_seqboat_step_with_sequences_activating_differently():
    mixer = tiny_mixer("seqboat").eval()
    with torch.no_grad():
        mixer.gate.bias.fill_(0.0)
        mixer.gate.weight.normal_(0, 3.0)
    x = mixer_inputs(batch=3, length=17)
    h = mixer.ssm(mixer.in_proj(x).transpose(1, 2)).transpose(1, 2)
    active = mixer.activation(h)[1]
    assert active.any() and not active.all() and not bool((active == active[:1]).all())
    steps, _ = step_through(mixer.step, x, mixer.allocate_state(3, dtype=x.dtype))
    torch.testing.assert_close(steps, mixer(x), atol=1e-9, rtol=0)
