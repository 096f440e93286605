"""`MixerContract`: the tests every registered mixer must pass, with nothing written per mixer.

In a pytest module, `class TestEveryMixer(MixerContract): pass` runs each test below once per name in
`ssmkit.list_mixers()`, on the family's `tiny_kwargs`; what a test needs to know about a family it reads from the
class's capability attributes (`causal`, `noncausal_kwargs`, `takes_l_max`, `takes_resets`, `tags_dynamics`, see
`ssmkit.layers.mixer.Mixer`). A subclass that sets `name` (and `kwargs`, changes to the tiny ones) runs the
contract on that one variant instead, and may add tests of its own that build mixers through `self.make()`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, ClassVar

import pytest
import torch

from ssmkit.layers.mixer import Mixer
from ssmkit.registry import create_mixer, list_mixers, mixer_class

D_MODEL = 8


def tiny_mixer(name: str, dtype: torch.dtype = torch.float64, d_model: int = D_MODEL, **kwargs: Any) -> Mixer:
    """The mixer `name` on its family's `tiny_kwargs` updated by `kwargs`, seeded, in `dtype`."""
    torch.manual_seed(0)
    return create_mixer(name, d_model, **{**mixer_class(name).tiny_kwargs, **kwargs}).to(dtype)


def mixer_inputs(
    batch: int = 2, length: int = 13, d_model: int = D_MODEL, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """Fixed random inputs x: (batch, length, d_model)."""
    return torch.randn(batch, length, d_model, dtype=dtype, generator=torch.Generator().manual_seed(1))


def step_through(
    step: Callable[[torch.Tensor, Any], tuple[torch.Tensor, Any]], inputs: torch.Tensor, state: Any, start: int = 0
) -> tuple[torch.Tensor, Any]:
    """Runs a recurrent `step(x_t, state) -> (y_t, state)` (a mixer's `step`, a language model's `step_logits`) over
    the positions start.. of `inputs` (dim 1, at least one): the outputs stacked on dim 1, and the last state."""
    outputs = []
    for t in range(start, inputs.shape[1]):
        y_t, state = step(inputs[:, t], state)
        outputs.append(y_t)
    return torch.stack(outputs, 1), state


class MixerContract:
    name: ClassVar[str | None] = None  # None: every registered mixer
    kwargs: ClassVar[dict[str, Any]] = {}  # changes to the family's tiny_kwargs
    d_model: ClassVar[int] = D_MODEL
    # step vs forward in float64: the two paths are the same math, so only rounding differs.
    step_atol: ClassVar[float] = 1e-9

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        metafunc.parametrize("mixer_name", list_mixers() if self.name is None else [self.name])

    @pytest.fixture(autouse=True)
    def _select(self, mixer_name: str) -> None:
        self.mixer_name = mixer_name

    def make(self, dtype: torch.dtype = torch.float64, **overrides: Any) -> Mixer:
        return tiny_mixer(self.mixer_name, dtype, self.d_model, **{**self.kwargs, **overrides})

    def inputs(self, batch: int = 2, length: int = 13, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        return mixer_inputs(batch, length, self.d_model, dtype)

    def test_capabilities_match_the_signatures(self) -> None:
        """`takes_l_max` / `takes_resets` say what the constructor / `_forward` accept; only a causal family has
        `noncausal_kwargs`."""
        family = mixer_class(self.mixer_name)
        assert family.takes_l_max == ("l_max" in inspect.signature(family.__init__).parameters)
        assert family.takes_resets == ("resets" in inspect.signature(family._forward).parameters)
        assert family.noncausal_kwargs is None or family.causal

    def test_shape_and_dtype(self) -> None:
        for dtype in (torch.float32, torch.float64):
            mixer, x = self.make(dtype), self.inputs(dtype=dtype)
            y = mixer(x)
            assert y.shape == x.shape and y.dtype == dtype

    @pytest.mark.parametrize("half", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
    def test_moves_to_half_precision(self, half: torch.dtype) -> None:
        """`mixer.to(half)` works for every mixer: it takes and returns `half`, close to float32 (a float32-computing
        mixer keeps float32 parameters inside), trains, steps, and names a float32 input as the wrong dtype."""
        reference, x = self.make(torch.float32), self.inputs(dtype=torch.float32)
        mixer = self.make(torch.float32).to(half)
        y = mixer(x.to(half))
        assert y.dtype == half
        error = float((y.float() - reference(x)).norm() / reference(x).norm())
        assert error < 0.05, f"{self.mixer_name} in {half}: relative error {error:.3f} against float32"
        kept = {p.dtype for p in mixer.parameters() if p.is_floating_point()}
        assert kept == ({torch.float32} if mixer.computes_in_float32 else {half})
        y.float().square().sum().backward()
        assert all(p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in mixer.parameters())
        if mixer.causal:
            y_t, _ = mixer.step(x[:, 0].to(half), mixer.allocate_state(x.shape[0]))
            assert y_t.dtype == half
        with pytest.raises(ValueError, match=f"x is torch.float32 but .* takes {half}"):
            mixer(x)
        if mixer.computes_in_float32:  # never rounded: moved back, it is the float32 mixer again
            torch.testing.assert_close(mixer.float()(x), reference(x), rtol=0, atol=0)

    def test_compiles(self) -> None:
        """torch.compile (AOTAutograd, no C++ build) gives eager's outputs and gradients, in one graph where the mixer
        says `compiles_fullgraph` (numba kernels are torch.library custom ops: traced as one op each, never a
        slower path)."""
        torch._dynamo.reset()
        torch._dynamo.utils.counters.clear()
        mixer, x = self.make(torch.float32), self.inputs(dtype=torch.float32).requires_grad_()
        y = torch.compile(mixer, backend="aot_eager", fullgraph=type(mixer).compiles_fullgraph)(x)
        y.square().sum().backward()
        assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0, "nothing was compiled"
        compiled_grads = [x.grad.clone()] + [p.grad.clone() for p in mixer.parameters()]
        mixer.zero_grad()
        x.grad = None
        eager = mixer(x)
        eager.square().sum().backward()
        torch.testing.assert_close(y, eager, atol=1e-5, rtol=1e-5)
        for got, want in zip(compiled_grads, [x.grad] + [p.grad for p in mixer.parameters()], strict=True):
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)

    def test_runs_under_bf16_autocast(self) -> None:
        """Under torch.autocast(bfloat16) forward, prefill and step run and stay within 5% of float32 (the scans keep
        their recurrent state in float32 / complex64: it is allocated from the float32 parameters)."""
        mixer, x = self.make(torch.float32), self.inputs(dtype=torch.float32)
        reference = mixer(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = mixer(x)
            if mixer.causal:
                _, state = mixer.prefill(x[:, :-1])
                y_last, _ = mixer.step(x[:, -1], state)
        assert float((y.float() - reference).norm() / reference.norm()) < 0.05
        if mixer.causal:
            error = float((y_last.float() - reference[:, -1]).norm() / reference[:, -1].norm())
            assert error < 0.05, f"{self.mixer_name}: step after prefill under autocast off by {error:.3f}"

    def test_reruns_are_bit_identical(self) -> None:
        """Deterministic mode (`torch.use_deterministic_algorithms`, what `--trainer.deterministic true` sets): the
        same inputs give the same bits, outputs and every gradient (the numba kernels' reductions have a fixed
        order), so a rerun of a seeded run repeats exactly."""
        mixer, x = self.make(torch.float32), self.inputs(dtype=torch.float32)
        was = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(True)
        try:
            runs = []
            for _ in range(2):
                mixer.zero_grad()
                x_run = x.clone().requires_grad_()
                y = mixer(x_run)
                y.square().sum().backward()
                runs.append([y.detach(), x_run.grad] + [p.grad for p in mixer.parameters()])
        finally:
            torch.use_deterministic_algorithms(was)
        assert all(torch.equal(a, b) for a, b in zip(*runs, strict=True)), f"{self.mixer_name}: bits differ on rerun"

    def test_gradients_reach_every_parameter(self) -> None:
        mixer, x = self.make(), self.inputs().requires_grad_()
        mixer(x).square().sum().backward()
        assert x.grad is not None and bool(torch.isfinite(x.grad).all())
        missing = [n for n, p in mixer.named_parameters() if p.requires_grad and p.grad is None]
        assert not missing, f"no gradient reached {missing}"

    def _causal_reference(self) -> tuple[Mixer, torch.Tensor, torch.Tensor]:
        """The tiny mixer in eval mode, the inputs and forward's outputs; skips a bidirectional family (no step)."""
        mixer = self.make()
        if not mixer.causal:
            pytest.skip(f"{self.mixer_name} is bidirectional: no step")
        mixer.eval()
        x = self.inputs()
        return mixer, x, mixer(x)

    def test_step_equals_forward(self) -> None:
        mixer, x, y = self._causal_reference()
        steps, _ = step_through(mixer.step, x, mixer.allocate_state(x.shape[0], dtype=x.dtype))
        torch.testing.assert_close(steps, y, atol=self.step_atol, rtol=0)

    def test_prefill_then_step_equals_forward(self) -> None:
        """A prompt read in one `prefill` gives forward's outputs and a state from which `step` continues exactly
        as forward does over the whole sequence (prompts shorter and longer than short-conv / local windows)."""
        mixer, x, y = self._causal_reference()
        for split in (1, 9):
            y_prompt, state = mixer.prefill(x[:, :split])
            y_rest, _ = step_through(mixer.step, x, state, start=split)
            torch.testing.assert_close(torch.cat([y_prompt, y_rest], 1), y, atol=self.step_atol, rtol=0)

    def test_chunked_prefill_equals_one_pass(self) -> None:
        """A prompt read in chunks, each from the previous chunk's state, gives the one-pass outputs and a state
        that steps on as the one-pass state does."""
        mixer, x, y = self._causal_reference()
        y_one, state_one = mixer.prefill(x)
        y_a, state = mixer.prefill(x[:, :5])
        y_b, state = mixer.prefill(x[:, 5:], state)
        torch.testing.assert_close(torch.cat([y_a, y_b], dim=1), y_one, atol=1e-9, rtol=1e-7)
        x_next = self.inputs(length=1)[:, 0]
        torch.testing.assert_close(mixer.step(x_next, state)[0], mixer.step(x_next, state_one)[0], atol=1e-9, rtol=1e-7)

    def test_causal_future_does_not_change_past(self) -> None:
        mixer = self.make()
        if not mixer.causal:
            pytest.skip(f"{self.mixer_name} is bidirectional")
        x = self.inputs()
        x2 = x.clone()
        x2[:, 7:] = torch.randn_like(x2[:, 7:])
        torch.testing.assert_close(mixer(x)[:, :7], mixer(x2)[:, :7], atol=1e-10, rtol=0)

    def test_bidirectional_sees_the_next_position(self) -> None:
        """A non-causal mixer, or a causal family built with its `noncausal_kwargs`: the output at position 0
        changes with the input at position 1 (the next one, so local windows count too)."""
        mixer, noncausal = self.make(), mixer_class(self.mixer_name).noncausal_kwargs
        if mixer.causal and noncausal is None:
            pytest.skip(f"{self.mixer_name} is causal and has no noncausal_kwargs")
        if mixer.causal:
            mixer = self.make(**noncausal)
            assert not mixer.causal, f"noncausal_kwargs {noncausal} left {self.mixer_name} causal"
        x = self.inputs()
        x2 = x.clone()
        x2[:, 1] += 1.0
        assert not torch.allclose(mixer(x)[:, 0], mixer(x2)[:, 0])

    def test_resets_restart_the_state(self) -> None:
        """A family that `takes_resets`: a reset before step t is running the pieces before and from t apart."""
        mixer = self.make()
        if not (mixer_class(self.mixer_name).takes_resets and mixer.causal):
            pytest.skip(f"{self.mixer_name} takes no resets")
        x = self.inputs()
        resets = torch.zeros(2, 13, dtype=torch.bool)
        resets[0, [4, 9]] = True
        resets[1, 6] = True
        y = mixer(x, resets=resets)
        assert not torch.allclose(mixer(x)[0, 4:], y[0, 4:]), "resets must change what follows them"
        for b, cuts in ((0, [0, 4, 9, 13]), (1, [0, 6, 13])):
            pieces = [mixer(x[b : b + 1, s:e]) for s, e in zip(cuts[:-1], cuts[1:], strict=True)]
            torch.testing.assert_close(y[b : b + 1], torch.cat(pieces, 1), atol=1e-9, rtol=0)

    def test_prefill_with_resets_continues_the_forward(self) -> None:
        """A family that `takes_resets`: a sequence with resets read by prefill in two pieces (one reset right at
        the cut, one inside each piece) gives forward's outputs, and its state steps on as forward continues."""
        mixer = self.make().eval()
        if not (mixer_class(self.mixer_name).takes_resets and mixer.causal):
            pytest.skip(f"{self.mixer_name} takes no resets")
        x, resets = self.inputs(length=14), torch.zeros(2, 14, dtype=torch.bool)
        resets[0, [2, 6]], resets[1, [5, 11]] = True, True  # the cut is at 6
        y = mixer(x, resets=resets)
        y_a, state = mixer.prefill(x[:, :6], resets=resets[:, :6])
        y_b, state = mixer.prefill(x[:, 6:13], state, resets=resets[:, 6:13])
        torch.testing.assert_close(torch.cat([y_a, y_b], dim=1), y[:, :13], atol=1e-9, rtol=1e-7)
        torch.testing.assert_close(mixer.step(x[:, 13], state)[0], y[:, 13], atol=self.step_atol, rtol=1e-7)

    def test_padding_does_not_leak(self) -> None:
        mixer = self.make()
        x = self.inputs(batch=3)
        lengths = torch.tensor([13, 5, 9])
        noisy = x.clone()
        for b, n in enumerate(lengths.tolist()):
            noisy[b, n:] = 1e3 * torch.randn_like(noisy[b, n:])
        y_clean, y_noisy = mixer(x, lengths=lengths), mixer(noisy, lengths=lengths)
        for b, n in enumerate(lengths.tolist()):
            torch.testing.assert_close(y_noisy[b, :n], y_clean[b, :n], atol=1e-9, rtol=0)
            # and each sequence alone, unpadded, gives the same valid outputs
            alone = mixer(x[b : b + 1, :n])
            torch.testing.assert_close(y_clean[b : b + 1, :n], alone, atol=1e-9, rtol=0)
            assert bool((y_clean[b, n:] == 0).all()), "padded positions must be zero"

    def test_packed_sequences_equal_each_alone(self) -> None:
        """Three sequences packed in one row (`cu_seqlens`) give each one's outputs run alone, and the same input
        and parameter gradients: no state or window crosses a boundary."""
        mixer, x = self.make(), self.inputs(batch=1).requires_grad_()
        bounds = [0, 4, 5, 13]
        packed = mixer(x, cu_seqlens=torch.tensor(bounds))
        packed.square().sum().backward()
        packed_grads = [p.grad.clone() for p in mixer.parameters()]
        mixer.zero_grad()
        alone_x = x.detach().clone().requires_grad_()
        alone = torch.cat([mixer(alone_x[:, a:b]) for a, b in zip(bounds, bounds[1:], strict=False)], dim=1)
        alone.square().sum().backward()
        torch.testing.assert_close(packed, alone, atol=1e-9, rtol=1e-7)
        torch.testing.assert_close(x.grad, alone_x.grad, atol=1e-9, rtol=1e-7)
        for (name, p), grad in zip(mixer.named_parameters(), packed_grads, strict=True):
            torch.testing.assert_close(grad, p.grad, atol=1e-9, rtol=1e-7, msg=f"{self.mixer_name}: grad of {name}")

    def test_bad_cu_seqlens_name_the_problem(self) -> None:
        mixer, x = self.make(torch.float32), self.inputs(batch=1, dtype=torch.float32)
        for bounds, message in (
            ([0, 5, 12], "cover the row"),
            ([1, 5, 13], "cover the row"),
            ([0, 5, 5, 13], "increasing"),
            ([0.0, 13.0], "integer"),
        ):
            with pytest.raises(ValueError, match=message):
                mixer(x, cu_seqlens=torch.tensor(bounds))
        with pytest.raises(ValueError, match="one row"):
            mixer(self.inputs(batch=2, dtype=torch.float32), cu_seqlens=torch.tensor([0, 13]))
        with pytest.raises(ValueError, match="disagree"):
            mixer(x, cu_seqlens=torch.tensor([0, 5, 13]), lengths=torch.tensor([5, 7]))

    def test_bad_inputs_name_the_problem(self) -> None:
        mixer = self.make(torch.float32)
        with pytest.raises(ValueError, match=r"x must have shape \(B, L, D\)"):
            mixer(torch.randn(13, self.d_model))
        with pytest.raises(ValueError, match=f"D={self.d_model}"):
            mixer(torch.randn(2, 13, self.d_model + 1))
        with pytest.raises(ValueError, match="floating-point"):
            mixer(torch.ones(2, 13, self.d_model, dtype=torch.long))
        with pytest.raises(ValueError, match="lengths"):
            mixer(torch.randn(2, 13, self.d_model), lengths=torch.tensor([14, 3]))
        for half in (torch.float16, torch.bfloat16):  # the same named error for every mixer, not a torch failure
            with pytest.raises(ValueError, match=f"x is {half} but .* takes torch.float32"):
                mixer(torch.randn(2, 13, self.d_model, dtype=half))

    def test_dynamics_parameters_are_tagged(self) -> None:
        """SSM mixers tag their dynamics parameters for the optimiser groups (the class's `tags_dynamics`)."""
        mixer = self.make()
        tagged = [n for n, p in mixer.named_parameters() if hasattr(p, "_optim")]
        assert bool(tagged) == mixer.tags_dynamics, f"{self.mixer_name}: tagged parameters {tagged}"
