"""The mixer interface every sequence mixer implements.

    forward(x: (B, L, D), *, lengths: (B,) | None) -> (B, L, D)
    allocate_state(batch_size, device=None, dtype=None) -> State          (causal mixers)
    step(x_t: (B, D), state) -> (y_t: (B, D), state)                       (causal mixers)

A state is a dict of batch-first tensors, so generation can reorder or select rows (beam search) without
knowing the mixer. `step` may update the given state in place (as mamba_ssm's caches do) and returns it.
Subclasses implement `_forward` / `_step`; this base validates inputs, zeroes padded
positions (so padding cannot leak into valid ones) and, in debug mode, checks outputs for NaN/inf.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import torch
from torch import nn

from ssmkit.layers.packing import check_cu_seqlens, pack, sequence_starts, unpack
from ssmkit.ops.dispatch import import_backends
from ssmkit.ops.sequence_parallel import current_split
from ssmkit.shapes import check_lengths, check_resets, check_shape

Tensor = torch.Tensor
State = dict[str, Tensor]

_DEBUG = os.environ.get("SSMKIT_DEBUG", "") not in ("", "0")


def set_debug(enabled: bool) -> None:
    """Check every mixer output for NaN/inf (also on with the environment variable SSMKIT_DEBUG=1)."""
    global _DEBUG
    _DEBUG = enabled


def padding_mask(lengths: Tensor, seq_len: int, start: int = 0) -> Tensor:
    """(B, L) bool, true at valid positions: start + t < lengths[b] (`start`: the global position of position 0 in a
    chunk of a sequence split across ranks)."""
    return torch.arange(start, start + seq_len, device=lengths.device)[None, :] < lengths[:, None]


def _first_non_finite(t: Tensor) -> str:
    """ "batch b, position l" of the first NaN/inf of t: (B, L, ...) (or "batch b" for t: (B, D))."""
    b, *rest = (~torch.isfinite(t)).nonzero()[0].tolist()
    return f"batch {b}, position {rest[0]}" if t.dim() > 2 else f"batch {b}"


def cannot_split(names: str) -> str:
    """The refusal for mixers (`names`) that cannot read a sequence split across ranks, naming those that can."""
    from ssmkit.registry import list_mixers, mixer_class

    able = [n for n in list_mixers() if mixer_class(n).sequence_parallel and mixer_class(n).causal]
    return (
        f"{names} cannot read a sequence split across ranks (sequence_parallel is False, or it is bidirectional); "
        f"mixers that can: {', '.join(able)}"
    )


def reverse_valid(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence of `x: (B, L, ...)` within its first lengths[b] positions; padding stays put."""
    if lengths is None:
        return x.flip(1)
    t = torch.arange(x.shape[1], device=x.device)[None, :]
    idx = torch.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)  # (B, L)
    return x.gather(1, idx.view(*idx.shape, *[1] * (x.dim() - 2)).expand_as(x))


class Mixer(nn.Module):
    """Base class of sequence mixers: `(B, L, D) -> (B, L, D)`.

    A family declares what code outside it needs to know as class attributes (read on the class, before an
    instance exists), so nothing outside the mixers tests a mixer's name:

    - `causal`: whether the output at t depends on inputs up to t only (an instance may differ when its kwargs
      make it bidirectional, e.g. `S4(bidirectional=True)`).
    - `noncausal_kwargs`: kwargs that make this causal family attend both ways by itself (attention:
      `{"causal": False}`); None where a bidirectional model must run two copies (`BidirectionalMixer`).
    - `takes_l_max`: the constructor takes `l_max`, the longest sequence its kernels / filters are made for
      (`ssmkit.registry.with_l_max` fills it in).
    - `takes_resets`: `forward(x, resets=...)` accepts `resets: (B, L)` bool, restarting the state.
    - `tiny_kwargs`: small hyper-parameters for CPU tests: `create_mixer(name, d, **cls.tiny_kwargs)`.
    - `tags_dynamics`: it tags SSM dynamics parameters / kernels for the optimiser groups (`no_weight_decay`).
    - `sequence_parallel`: inside `ssmkit.ops.sequence_parallel.sequence_parallel(...)` (each rank holds a chunk of
      the sequence) it passes its state between ranks; the others refuse by name there.
    - `computes_in_float32`: its kernels need float32 (complex arithmetic, FFTs, matrix solves, cdist). Moved to
      float16 / bfloat16 (`mixer.to(torch.bfloat16)`, `.half()`, Lightning's "bf16-true"), it keeps its parameters
      and state in float32, takes and returns the dtype it was moved to (`io_dtype`) and computes in float32 in
      between; the other mixers run in the reduced dtype itself.
    - `compiles_fullgraph`: `torch.compile(mixer, fullgraph=True)` traces its forward and backward in one graph
      (the numba kernels are torch.library custom ops); False where the graph depends on the data.
    """

    causal: bool = True
    noncausal_kwargs: ClassVar[dict[str, Any] | None] = None
    takes_l_max: ClassVar[bool] = False
    takes_resets: ClassVar[bool] = False
    tiny_kwargs: ClassVar[dict[str, Any]] = {}
    tags_dynamics: ClassVar[bool] = True
    computes_in_float32: ClassVar[bool] = False
    sequence_parallel: ClassVar[bool] = False
    compiles_fullgraph: ClassVar[bool] = True
    io_dtype: torch.dtype | None = None  # set when a float32-computing mixer is moved to a reduced dtype

    def __init__(self, d_model: int) -> None:
        super().__init__()
        import_backends()  # the kernels loaded before any forward: torch.compile does not trace imports
        if d_model < 1:
            raise ValueError(f"d_model must be >= 1, got {d_model}")
        self.d_model = d_model

    def discrete_poles(self) -> Tensor | None:
        """The poles of a time-invariant SSM's discretised recurrence (complex, any shape: |z| < 1 is stable), or
        None for a mixer without them (selective, attention, convolution). S4, S4D have them."""
        return None

    def splits_across_ranks(self) -> bool:
        """Whether this instance reads a sequence split across ranks: its family passes state (`sequence_parallel`)
        and it is causal. A bidirectional family that passes state both ways overrides this (Hydra)."""
        return self.sequence_parallel and self.causal

    def _apply(self, fn: Any, recurse: bool = True) -> Mixer:
        """`.to()`, `.half()`, `.cuda()` ...: a float32-computing mixer takes only the device of a cast to a reduced
        dtype, and remembers the dtype as the one it takes and returns."""
        if not self.computes_in_float32:
            return super()._apply(fn, recurse)
        moved = fn(torch.zeros((), device=self._factory(None, None)["device"]))
        if moved.dtype in (torch.float16, torch.bfloat16):
            self.io_dtype = moved.dtype
            return super()._apply(lambda t: t.to(moved.device), recurse)
        self.io_dtype = None
        return super()._apply(fn, recurse)

    def _to_compute(self, x: Tensor) -> Tensor:
        return x if self.io_dtype is None else x.float()

    def _to_io(self, y: Tensor) -> Tensor:
        return y if self.io_dtype is None else y.to(self.io_dtype)

    def forward(
        self, x: Tensor, *, lengths: Tensor | None = None, cu_seqlens: Tensor | None = None, **extra: Tensor | None
    ) -> Tensor:
        """x: (B, L, D) -> (B, L, D). `extra`: per-family inputs passed on to `_forward` (S5's `resets`).
        `cu_seqlens: (N + 1,)`: x is a packed row (1, L, D) of N sequences end to end (see `ssmkit.layers.packing`).
        Inside `sequence_parallel` x is this rank's chunk and `lengths (B,)` still count the whole sequence."""
        check_shape("x", x, "(B, L, D)", None, None, self.d_model)
        if cu_seqlens is not None:
            return self._forward_packed(x, cu_seqlens, lengths, **extra)
        split = current_split()
        if split is not None and not self.splits_across_ranks():
            raise ValueError(cannot_split(type(self).__name__))
        self._check_dtype("x", x)
        check_lengths(lengths, x.shape[0], x.shape[1] if split is None else split.total(x.shape[1]))
        check_resets(extra.get("resets"), x.shape[0], x.shape[1])
        x = self._to_compute(x)
        start = 0 if split is None else split.start(x.shape[1])  # lengths count the whole sequence's positions
        mask = None if lengths is None else padding_mask(lengths, x.shape[1], start)[..., None].to(x.dtype)
        y = self._forward(x if mask is None else x * mask, lengths, **extra)
        if mask is not None:
            y = y * mask
        self._debug_check(y, "forward", x)
        return self._to_io(y)

    def _forward_packed(self, x: Tensor, cu_seqlens: Tensor, lengths: Tensor | None, **extra: Tensor | None) -> Tensor:
        """A resettable causal scan reads the packed row in one pass, restarting at each sequence's start; any other
        mixer runs the sequences as a padded batch."""
        check_cu_seqlens(cu_seqlens, x, lengths)
        if self.causal and self.takes_resets:
            starts = sequence_starts(cu_seqlens, x.shape[1])
            resets = extra.pop("resets", None)
            return self.forward(x, resets=starts if resets is None else starts | resets.bool(), **extra)
        padded, lengths = unpack(x, cu_seqlens)
        return pack(self.forward(padded, lengths=lengths, **extra), lengths)

    def accumulate(self, x: Tensor, out: Tensor) -> Tensor:
        """out += forward(x), in place, for inference (no gradients): x, out (B, L, D). A family that can form its
        output piece by piece overrides this so the whole output never exists at once (Hyena's channel groups); the
        default adds forward(x)."""
        return out.add_(self(x))

    def step(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        if not self.causal:
            raise NotImplementedError(f"{type(self).__name__} is bidirectional and has no recurrent step")
        check_shape("x_t", x_t, "(B, D)", None, self.d_model)
        self._check_dtype("x_t", x_t)
        y, state = self._step(self._to_compute(x_t), state)
        self._debug_check(y, "step")
        return self._to_io(y), state

    def prefill(self, x: Tensor, state: State | None = None, resets: Tensor | None = None) -> tuple[Tensor, State]:
        """Reads a prompt in one call: x (B, L, D) -> (y, state) with y equal to `forward(x)` and `state` the state
        after the last position, ready for `step`. Given a `state` (from an earlier prefill or step), x continues
        that sequence: a long prompt read in chunks gives the one-pass outputs with memory bounded by the chunk.
        `resets (B, L)` bool (families that `takes_resets`) restarts the state before the flagged steps, as in
        `forward`: a rollout of several episodes continues from the state the previous rollout left.
        Mixers with a parallel form override `_prefill` / `_prefill_from` (a given state); the default steps."""
        if not self.causal:
            raise NotImplementedError(f"{type(self).__name__} is bidirectional and has no recurrent state")
        if current_split() is not None:
            raise ValueError("prefill reads a whole prompt on one rank: call it outside sequence_parallel")
        check_shape("x", x, "(B, L, D)", None, None, self.d_model)
        self._check_dtype("x", x)
        x = self._to_compute(x)
        if resets is not None:
            if not self.takes_resets:
                raise ValueError(f"{type(self).__name__} takes no resets (takes_resets is False)")
            check_resets(resets, x.shape[0], x.shape[1])
            state = self.allocate_state(x.shape[0], x.device, x.dtype) if state is None else state
            y, state = self._prefill_from(x, state, resets=resets)
        else:
            y, state = self._prefill(x) if state is None else self._prefill_from(x, state)
        self._debug_check(y, "prefill", x)
        return self._to_io(y), state

    def allocate_state(
        self, batch_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> State:
        raise NotImplementedError(f"{type(self).__name__} has no recurrent state")

    def _forward(self, x: Tensor, lengths: Tensor | None) -> Tensor:
        raise NotImplementedError

    def _step(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        raise NotImplementedError

    def _prefill(self, x: Tensor) -> tuple[Tensor, State]:
        return self._prefill_from(x, self.allocate_state(x.shape[0], x.device, x.dtype))

    def _prefill_from(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """x (B, L, D) continuing from `state` -> (y, the state after the last step). Mixers whose parallel path takes
        an initial state override this; the default steps."""
        return self._steps(x, state)

    def _steps(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """x (B, L, D) read one step at a time from `state` -> (y (B, L, D), the state after the last step)."""
        ys = []
        for x_t in x.unbind(1):
            y_t, state = self._step(x_t, state)
            ys.append(y_t)
        return torch.stack(ys, dim=1), state

    def _check_dtype(self, name: str, x: Tensor) -> None:
        """Inputs come in the mixer's dtype: the one it was moved to (`io_dtype`), else its parameters' floating
        dtype (a complex parameter counts as its real dtype), so that no mixer fails deep inside torch, or silently
        changes precision, on a float16 / bfloat16 input. Under autocast (mixed precision) the dtypes differ on
        purpose and are left alone."""
        if torch.is_autocast_enabled(x.device.type):
            return
        p = next((p for p in self.parameters() if p.is_floating_point() or p.is_complex()), None)
        expected = None if p is None else (p.real.dtype if p.is_complex() else p.dtype)
        expected = self.io_dtype or expected
        if expected is not None and x.dtype != expected:
            raise ValueError(
                f"{name} is {x.dtype} but {type(self).__name__} takes {expected} "
                f"({'the dtype it was moved to' if self.io_dtype else 'its parameters'}): cast the input "
                f"(x.to({expected})) or move the mixer (mixer.to({x.dtype})), or run under torch.autocast"
            )

    def _debug_check(self, y: Tensor, where: str, x: Tensor | None = None) -> None:
        """In debug mode, name the first non-finite output (batch row, position) and, when the input `x` was not
        finite either, its first non-finite position: FFT and attention mixers spread one bad input position over
        the whole sequence (earlier positions included), where the scans keep it causal."""
        if not _DEBUG or bool(torch.isfinite(y).all()):
            return
        where_y = _first_non_finite(y)
        cause = "" if x is None or bool(torch.isfinite(x).all()) else f"; the input first at {_first_non_finite(x)}"
        raise FloatingPointError(f"{type(self).__name__}.{where} produced NaN or inf at {where_y}{cause} (debug mode)")

    def _factory(self, device: torch.device | None, dtype: torch.dtype | None) -> dict:
        """device/dtype for new state tensors: the given ones, else those of the parameters (always those of the
        parameters for a float32-computing mixer moved to a reduced dtype: its state stays float32)."""
        p = next(self.parameters())
        return {"device": device or p.device, "dtype": p.dtype if self.io_dtype else (dtype or p.dtype)}


def no_weight_decay(*params: nn.Parameter, lr_scale: float | None = None) -> None:
    """Tag SSM dynamics parameters (A, log-dt, D, ...) as in state-spaces/s4: no weight decay, and
    optionally their own learning rate (a multiple of the base rate). Read by `ssmkit.train.optim`."""
    for p in params:
        p._optim = {"weight_decay": 0.0, **({} if lr_scale is None else {"lr_scale": lr_scale})}
