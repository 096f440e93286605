"""`MixerContract`: the tests every registered mixer must pass. Subclass it in a pytest module and set
`name` (and, if needed, `kwargs`); the family's `tiny_kwargs` are used by default."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import torch

from ssmkit.registry import create_mixer, mixer_class


class MixerContract:
    name: ClassVar[str]
    kwargs: ClassVar[dict[str, Any] | None] = None
    d_model: ClassVar[int] = 8
    # step vs forward in float64: the two paths are the same math, so only rounding differs.
    step_atol: ClassVar[float] = 1e-9
    # SSM and long-convolution mixers tag their dynamics parameters / kernels (no weight decay).
    tags_dynamics: ClassVar[bool] = True

    def make(self, dtype: torch.dtype = torch.float64, **overrides: Any):
        torch.manual_seed(0)
        kwargs = {
            **(self.kwargs if self.kwargs is not None else mixer_class(self.name).tiny_kwargs),
            **overrides,
        }
        return create_mixer(self.name, self.d_model, **kwargs).to(dtype)

    def inputs(self, batch: int = 2, length: int = 13, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        return torch.randn(batch, length, self.d_model, dtype=dtype, generator=torch.Generator().manual_seed(1))

    def test_shape_and_dtype(self) -> None:
        for dtype in (torch.float32, torch.float64):
            mixer, x = self.make(dtype), self.inputs(dtype=dtype)
            y = mixer(x)
            assert y.shape == x.shape and y.dtype == dtype

    def test_gradients_reach_every_parameter(self) -> None:
        mixer, x = self.make(), self.inputs().requires_grad_()
        mixer(x).square().sum().backward()
        assert x.grad is not None and bool(torch.isfinite(x.grad).all())
        missing = [n for n, p in mixer.named_parameters() if p.requires_grad and p.grad is None]
        assert not missing, f"no gradient reached {missing}"

    def test_step_equals_forward(self) -> None:
        mixer = self.make()
        if not mixer.causal:
            pytest.skip(f"{self.name} is bidirectional: no step")
        mixer.eval()
        x = self.inputs()
        y = mixer(x)
        state = mixer.allocate_state(x.shape[0], dtype=x.dtype)
        steps = []
        for t in range(x.shape[1]):
            y_t, state = mixer.step(x[:, t], state)
            steps.append(y_t)
        torch.testing.assert_close(torch.stack(steps, 1), y, atol=self.step_atol, rtol=0)

    def test_prefill_then_step_equals_forward(self) -> None:
        """A prompt read in one `prefill` gives forward's outputs and a state from which `step` continues exactly
        as forward does over the whole sequence (prompts shorter and longer than short-conv / local windows)."""
        mixer = self.make()
        if not mixer.causal:
            pytest.skip(f"{self.name} is bidirectional: no state")
        mixer.eval()
        x = self.inputs()
        y = mixer(x)
        for split in (1, 9):
            y_prompt, state = mixer.prefill(x[:, :split])
            steps = [y_prompt]
            for t in range(split, x.shape[1]):
                y_t, state = mixer.step(x[:, t], state)
                steps.append(y_t[:, None])
            torch.testing.assert_close(torch.cat(steps, 1), y, atol=self.step_atol, rtol=0)

    def test_causal_future_does_not_change_past(self) -> None:
        mixer = self.make()
        if not mixer.causal:
            pytest.skip(f"{self.name} is bidirectional")
        x = self.inputs()
        x2 = x.clone()
        x2[:, 7:] = torch.randn_like(x2[:, 7:])
        torch.testing.assert_close(mixer(x)[:, :7], mixer(x2)[:, :7], atol=1e-10, rtol=0)

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

    def test_dynamics_parameters_are_tagged(self) -> None:
        """SSM mixers tag their dynamics parameters for the optimiser groups (`tags_dynamics = False` opts out)."""
        mixer = self.make()
        tagged = [n for n, p in mixer.named_parameters() if hasattr(p, "_optim")]
        assert bool(tagged) == self.tags_dynamics, f"{self.name}: tagged parameters {tagged}"
