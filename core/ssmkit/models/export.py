"""Exporting a language model's recurrent step (the decoding graph): `torch.export` and ONNX.

`DecodeStep(lm)` is the step as a module, `(tokens (B,), state) -> (logits (B, V), state)`, for `torch.export`.
`export_step_onnx(lm, path, batch_size)` writes it as an ONNX graph with flat, named inputs and outputs:

    inputs:   tokens (B,) int64, state.<layer>.<key> ...
    outputs:  logits (B, V) float, next_state.<layer>.<key> ...

one state tensor per (layer, key) of `lm.allocate_state(B)`, in that order, with the state's shapes; a complex
state (S4D, S5, LRU, DSS, ...: ONNX has no complex arithmetic) travels as its real view, the shape with a trailing 2
(real, imaginary). `onnx_state(state)` flattens a state this way, so decoding feeds `next_state.*` back as
`state.*`. The graph holds the step's portable PyTorch path (`ssmkit.ops.dispatch` picks it while exporting) with
the complex arithmetic rewritten as real arithmetic on (real, imaginary) pairs; the batch size is fixed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.export.graph_signature import InputKind, OutputKind
from torch.utils._pytree import tree_unflatten

from ssmkit.layers.mixer import Mixer, State
from ssmkit.train.checkpoint import write_atomic

Tensor = torch.Tensor


class OnnxExportError(RuntimeError):
    """The step holds an operation the ONNX export cannot write (a complex operation with no real rewrite here)."""


class DecodeStep(nn.Module):
    """A decoder's recurrent step as a module: `(tokens (B,), state) -> (logits (B, V), state)`."""

    def __init__(self, lm: nn.Module) -> None:
        super().__init__()
        self.lm = lm
        self.training = lm.training  # the wrapper's mode only; .train() would set lm's

    def forward(self, tokens: Tensor, state: list[State]) -> tuple[Tensor, list[State]]:
        return self.lm.step_logits(tokens, state)


def onnx_state(state: list[State], prefix: str = "state") -> dict[str, Tensor]:
    """The state as the ONNX step's named tensors, `{"<prefix>.<layer>.<key>": tensor}`; complex tensors (..., N)
    as their real views (..., N, 2)."""
    return {
        f"{prefix}.{i}.{key}": torch.view_as_real(t) if t.is_complex() else t
        for i, layer in enumerate(state)
        for key, t in layer.items()
    }


def export_step_onnx(lm: nn.Module, path: str | os.PathLike, batch_size: int = 1) -> Path:
    """Write `lm`'s recurrent step for batches of `batch_size` to the ONNX file `path` (atomically) and return it.

    `lm` is a `TokenDecoder` (e.g. `LanguageModel`), exported as it is (call `.eval()` first for inference). Needs
    the packages onnx and onnxscript (the `dev` extra). Inputs and outputs: see the module docstring. Raises
    `OnnxExportError`, naming the model's mixers, where the step does not export.
    """
    state, step = lm.allocate_state(batch_size), DecodeStep(lm)
    tokens = torch.zeros(batch_size, dtype=torch.long, device=next(lm.parameters()).device)
    flat = onnx_state(state)
    try:
        real_step = _RealStep(torch.export.export(step, (tokens, state)).run_decompositions(), step, state)
        program = torch.onnx.export(
            real_step,
            (tokens, *flat.values()),
            input_names=["tokens", *flat],
            output_names=["logits", *onnx_state(state, "next_state")],
            dynamo=True,
            verbose=False,
        )
    except Exception as exc:
        mixers = sorted({type(m).__name__ for m in lm.modules() if isinstance(m, Mixer)})
        causes = list(_causes(exc))  # the innermost names the operation
        cause = next((e for e in causes if isinstance(e, OnnxExportError)), causes[-1])
        reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        raise OnnxExportError(f"the decoding step of {', '.join(mixers)} does not export to ONNX: {reason}") from exc
    # weights inside the file, so under 2 GB
    return write_atomic(path, lambda tmp: program.save(tmp, external_data=False))


def _causes(exc: BaseException):
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__


class _Pair(NamedTuple):
    """A complex tensor as real tensors; `im` None for a zero imaginary part."""

    re: Tensor
    im: Tensor | None


class _RealStep(nn.Module):
    """The exported step's graph run with complex values as `_Pair`s: `(tokens, *onnx_state tensors) ->
    (logits, *onnx_state tensors)`, real tensors only, to be traced again for ONNX."""

    def __init__(self, program: torch.export.ExportedProgram, step: DecodeStep, state: list[State]) -> None:
        super().__init__()
        self.step = step  # holds the parameters, so the ONNX graph keeps their names
        self.training = step.training
        self.graph_module = program.graph_module
        self.signature = program.graph_signature
        self.constants = program.constants
        self.out_spec = program.call_spec.out_spec
        self.state_spec = [list(layer) for layer in state]
        self.complex_keys = {(i, k) for i, layer in enumerate(state) for k, t in layer.items() if t.is_complex()}

    def forward(self, tokens: Tensor, *flat_state: Tensor) -> tuple[Tensor, ...]:
        it = iter(flat_state)
        user = [tokens] + [
            _Pair(t[..., 0], t[..., 1]) if (i, k) in self.complex_keys else t
            for i, keys in enumerate(self.state_spec)
            for k, t in zip(keys, it, strict=False)
        ]
        outputs = _PairInterpreter(self.graph_module).run(*self._inputs(iter(user)))
        specs = self.signature.output_specs
        kept = [v for v, spec in zip(outputs, specs, strict=True) if spec.kind == OutputKind.USER_OUTPUT]
        logits, state = tree_unflatten(kept, self.out_spec)
        flat = [state[i][k] for i, keys in enumerate(self.state_spec) for k in keys]
        real = (torch.stack([v.re, _zero_if_none(v.im, v.re)], -1) if isinstance(v, _Pair) else v for v in flat)
        return (logits, *real)

    def _inputs(self, user) -> list[Any]:
        values = []
        for spec in self.signature.input_specs:
            if spec.kind == InputKind.USER_INPUT:
                values.append(next(user))
            elif spec.kind == InputKind.PARAMETER:
                values.append(self.step.get_parameter(spec.target))
            elif spec.kind == InputKind.BUFFER:
                values.append(self.step.get_buffer(spec.target))
            elif spec.kind == InputKind.CONSTANT_TENSOR:
                values.append(self.constants[spec.target])
            else:
                raise OnnxExportError(f"the step's graph takes a {spec.kind.name} input (an effectful operation)")
        return values


def _zero_if_none(im: Tensor | None, re: Tensor) -> Tensor:
    return torch.zeros_like(re) if im is None else im


def _parts(x: Any) -> tuple[Any, Any]:
    """(real, imaginary or None) of a `_Pair`, a real tensor or a Python number."""
    if isinstance(x, _Pair):
        return x
    if isinstance(x, complex):
        return x.real, x.imag
    return x, None


def _add(a: Any, b: Any) -> Any:
    return a if b is None else b if a is None else a + b


def _mul(a: Any, b: Any) -> Any:
    return None if a is None or b is None else a * b


def _neg(a: Any) -> Any:
    return None if a is None else -a


def _complex_mul(a: Any, b: Any, product=_mul) -> _Pair:
    (ar, ai), (br, bi) = _parts(a), _parts(b)
    return _Pair(_add(product(ar, br), _neg(product(ai, bi))), _add(product(ar, bi), product(ai, br)))


def _complex_div(a: Any, b: Any) -> _Pair:
    (ar, ai), (br, bi) = _parts(a), _parts(b)
    if bi is None:
        return _Pair(ar / br, None if ai is None else ai / br)
    norm = br * br + bi * bi
    return _Pair(_add(ar * br, _mul(ai, bi)) / norm, _add(_mul(ai, br), _neg(ar * bi)) / norm)


def _complex_exp(a: _Pair) -> _Pair:
    magnitude = torch.exp(a.re)
    return _Pair(magnitude, None) if a.im is None else _Pair(magnitude * torch.cos(a.im), magnitude * torch.sin(a.im))


def _complex_expm1(a: _Pair) -> _Pair:
    """exp(a) - 1, accurate for small a: expm1(x) cos y - 2 sin²(y/2) + i e^x sin y."""
    if a.im is None:
        return _Pair(torch.expm1(a.re), None)
    half_sin = torch.sin(a.im / 2)
    re = torch.expm1(a.re) * torch.cos(a.im) - 2 * half_sin * half_sin
    return _Pair(re, torch.exp(a.re) * torch.sin(a.im))


aten = torch.ops.aten
# Operations that act on the real and imaginary parts alike (shape changes, sums).
_PARTWISE = {
    aten.view.default,
    aten._unsafe_view.default,
    aten.reshape.default,
    aten.permute.default,
    aten.unsqueeze.default,
    aten.squeeze.dim,
    aten.squeeze.dims,
    aten.expand.default,
    aten.clone.default,
    aten.alias.default,
    aten.slice.Tensor,
    aten.select.int,
    aten.sum.dim_IntList,
}
_MATMUL = {aten.mm.default: torch.mm, aten.bmm.default: torch.bmm}


class _PairInterpreter(torch.fx.Interpreter):
    """Runs an aten graph holding complex tensors as `_Pair`s of real tensors."""

    def call_function(self, target: Any, args: tuple, kwargs: dict) -> Any:
        if target is aten._assert_tensor_metadata.default:
            return None
        if not any(isinstance(a, _Pair) for a in (*args, *kwargs.values())):
            if target is aten.complex.default:
                return _Pair(*args)
            if target is aten.view_as_complex.default:
                return _Pair(args[0][..., 0], args[0][..., 1])
            dtype = kwargs.get("dtype")
            if target is aten._to_copy.default and dtype is not None and dtype.is_complex:
                return _Pair(target(*args, **{**kwargs, "dtype": dtype.to_real()}), None)
            return super().call_function(target, args, kwargs)
        return _complex_op(target, args, kwargs)


def _complex_op(target: Any, args: tuple, kwargs: dict) -> Any:
    """`target(*args, **kwargs)` with complex arguments given as `_Pair`s, by real arithmetic."""
    a, rest = args[0], args[1:]
    if target in _PARTWISE and isinstance(a, _Pair) and not any(isinstance(r, _Pair) for r in rest):
        return _Pair(target(a.re, *rest, **kwargs), None if a.im is None else target(a.im, *rest, **kwargs))
    if target in _MATMUL:
        product = _MATMUL[target]
        return _complex_mul(a, rest[0], lambda x, y: None if x is None or y is None else product(x, y))
    rewrite = _COMPLEX.get(target)
    if rewrite is None or (kwargs and target not in _TAKE_KWARGS):
        raise OnnxExportError(
            f"the ONNX export has no real rewrite of the complex operation {target}{' with ' if kwargs else ''}"
            f"{', '.join(kwargs)}; add one to ssmkit.models.export, or use torch.export (which keeps complex tensors)"
        )
    return rewrite(*args, **kwargs)


def _complex_add(a: Any, b: Any, sign: int = 1) -> _Pair:
    (ar, ai), (br, bi) = _parts(a), _parts(b)
    return _Pair(ar + sign * br, _add(ai, None if bi is None else sign * bi))


def _complex_full_like(a: _Pair, value: Any, **kwargs: Any) -> _Pair:
    value_re, value_im = _parts(value)
    return _Pair(
        aten.full_like.default(a.re, value_re, **kwargs),
        aten.full_like.default(a.re, value_im, **kwargs) if value_im else None,
    )


def _complex_where(condition: Tensor, x: Any, y: Any) -> _Pair:
    (xr, xi), (yr, yi) = _parts(x), _parts(y)
    im = None if xi is None and yi is None else torch.where(condition, _zero_if_none(xi, xr), _zero_if_none(yi, yr))
    return _Pair(torch.where(condition, xr, yr), im)


def _complex_to_copy(a: _Pair, **kwargs: Any) -> _Pair:
    dtype = kwargs.get("dtype")
    if dtype is not None:
        if not dtype.is_complex:
            raise OnnxExportError(f"the ONNX export does not cast complex to {dtype} (that drops the imaginary part)")
        kwargs = {**kwargs, "dtype": dtype.to_real()}
    return _Pair(*(None if p is None else aten._to_copy.default(p, **kwargs) for p in a))


# Real rewrites of complex operations, (args as in aten, complex ones as `_Pair`s) -> `_Pair` or real tensor.
_COMPLEX = {
    aten.view_as_real.default: lambda a: torch.stack([a.re, _zero_if_none(a.im, a.re)], -1),
    aten.add.Tensor: _complex_add,
    aten.sub.Tensor: lambda a, b: _complex_add(a, b, -1),
    aten.neg.default: lambda a: _Pair(-a.re, _neg(a.im)),
    aten.mul.Tensor: _complex_mul,
    aten.div.Tensor: _complex_div,
    aten.exp.default: _complex_exp,
    aten.expm1.default: _complex_expm1,
    aten.full_like.default: _complex_full_like,
    aten.where.self: _complex_where,
    aten._to_copy.default: _complex_to_copy,
}
_TAKE_KWARGS = {aten.full_like.default, aten._to_copy.default}
