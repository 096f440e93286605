"""Backend dispatch for ops: every backend of every op is a row of one table, `BACKENDS`.

A row names the op, the backend, the import string of its function ("module:function", imported on first use, so
`import ssmkit.ops` stays cheap and `ssmkit_kernels` never imports ssmkit), the device types it runs on, its
priority and what it needs beyond torch (`REQUIREMENTS`). Every op has a `reference` backend, the readable spec.

Priority: for a tensor on a device, `resolve` picks the available backend of highest priority among those that
run on that device. 0 is the reference (loop-level PyTorch, always there), 10 a portable fast path (a PyTorch
formulation such as `fft` or `chunked`, or a CPU kernel such as `numba`), 20 a kernel for one kind of device
(Triton on CUDA). The backends of an op that share a device never share a priority.

`backends()` reports each op's choice per device, so it is never silent; a backend forced by name that is
unavailable raises instead of falling back. Each op's module declares example inputs for its backends
(`@example_inputs(op)`), on which `ssmkit.testing.BackendContract` compares every backend with the reference.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

Example = Callable[["torch.Generator", "torch.dtype"], list[tuple]]

REFERENCE = "reference"
CPU_AND_CUDA = ("cpu", "cuda")


@dataclass(frozen=True)
class Requirement:
    """What a backend needs beyond torch: an installed `package` (looked up, not imported) and, if `cuda`, a CUDA
    device. `interpreter`: the environment variable under which the package runs its GPU kernels on CPU tensors
    (for tests: `ssmkit.testing.BackendContract`). `why` is the error a forced, unavailable backend raises with."""

    package: str
    why: str
    cuda: bool = False
    interpreter: str | None = None
    # False: the backend is a torch.library custom op (torch.compile traces it as one op, fullgraph included); an
    # exported graph (torch.export, ONNX) takes the best backend made of plain torch ops instead, so it runs anywhere
    portable: bool = True


REQUIREMENTS = {
    # numba's kernels run on numpy views of the tensors, registered as torch.library custom ops
    "numba": Requirement("numba", "numba is not installed (pip install numba)", portable=False),
    "triton": Requirement(
        "triton",
        "Triton kernels need triton installed (pip install triton) and a CUDA GPU; they run on CUDA tensors",
        cuda=True,
        interpreter="TRITON_INTERPRET",
    ),
}


@dataclass(frozen=True)
class Backend:
    op: str
    name: str
    target: str  # "module:function"
    devices: tuple[str, ...] = CPU_AND_CUDA
    priority: int = 0
    requires: str | None = None  # a key of REQUIREMENTS

    def available(self) -> bool:
        return self.requires is None or requirement_met(self.requires)

    def function(self) -> Callable[..., Any]:
        return _load(self.target)


_CPU, _CUDA = ("cpu",), ("cuda",)
BACKENDS: tuple[Backend, ...] = (
    Backend("linear_scan", REFERENCE, "ssmkit.ops.linear_scan:linear_scan_ref"),
    Backend("linear_scan", "numba", "ssmkit_kernels.cpu.linear_scan:linear_scan_numba", _CPU, 10, "numba"),
    Backend("linear_scan", "triton", "ssmkit_kernels.triton.linear_scan:linear_scan_triton", _CUDA, 20, "triton"),
    Backend("selective_scan", REFERENCE, "ssmkit.ops.selective_scan:selective_scan_ref"),
    Backend("selective_scan", "numba", "ssmkit_kernels.cpu.selective_scan:selective_scan_numba", _CPU, 10, "numba"),
    Backend(
        "selective_scan", "triton", "ssmkit_kernels.triton.selective_scan:selective_scan_triton", _CUDA, 20, "triton"
    ),
    Backend("selective_state_update", REFERENCE, "ssmkit.ops.selective_scan:selective_state_update_ref"),
    Backend(
        "selective_state_update",
        "numba",
        "ssmkit_kernels.cpu.selective_scan:selective_state_update_numba",
        _CPU,
        10,
        "numba",
    ),
    Backend(
        "selective_state_update",
        "triton",
        "ssmkit_kernels.triton.selective_scan:selective_state_update_triton",
        _CUDA,
        20,
        "triton",
    ),
    Backend("ssd_scan", REFERENCE, "ssmkit.ops.ssd_scan:ssd_scan_ref"),
    Backend("ssd_scan", "chunked", "ssmkit.ops.ssd_scan:ssd_scan_chunked", priority=10),
    Backend("ssd_scan", "triton", "ssmkit_kernels.triton.ssd_scan:ssd_scan_triton", _CUDA, 20, "triton"),
    Backend("fft_conv", REFERENCE, "ssmkit.ops.fft_conv:fft_conv_ref"),
    Backend("fft_conv", "fft", "ssmkit.ops.fft_conv:fft_conv_fft", priority=10),
    Backend("diag_ssm_conv", REFERENCE, "ssmkit.ops.diag_ssm_conv:diag_ssm_conv_ref"),
    Backend("diag_ssm_conv", "blocked", "ssmkit.ops.diag_ssm_conv:diag_ssm_conv_blocked", priority=10),
    Backend("s4d_kernel", REFERENCE, "ssmkit.ops.s4d_kernel:s4d_kernel_ref"),
    Backend("s4d_kernel", "numba", "ssmkit_kernels.cpu.s4d_kernel:s4d_kernel_numba", _CPU, 10, "numba"),
    Backend("dss_kernel", REFERENCE, "ssmkit.ops.dss_kernel:dss_kernel_ref"),
    Backend("dplr_kernel", REFERENCE, "ssmkit.ops.dplr_kernel:dplr_kernel_ref"),
    Backend("krylov_kernel", REFERENCE, "ssmkit.ops.dense_ssm:krylov_kernel_ref"),
)
_TABLE = {op: {b.name: b for b in BACKENDS if b.op == op} for op in dict.fromkeys(b.op for b in BACKENDS)}


def resolve(op: str, device_type: str, backend: str | None = None) -> Callable[..., Any]:
    """The function that runs `op` on `device_type`: the named backend, or the best available one."""
    table = _TABLE[op]
    if backend is None:
        return _best(op, device_type).function()
    if backend not in table:
        raise ValueError(f"unknown backend {backend!r} for op {op!r}; known: {sorted(table)}")
    chosen = table[backend]
    if device_type not in chosen.devices or not chosen.available():
        why = REQUIREMENTS[chosen.requires].why if chosen.requires else ""
        raise RuntimeError(
            f"backend {backend!r} for op {op!r} is unavailable on device {device_type!r}" + (f": {why}" if why else "")
        )
    return chosen.function()


def reference(op: str) -> Callable[..., Any]:
    """`op`'s reference function, the spec."""
    return _TABLE[op][REFERENCE].function()


def _best(op: str, device_type: str) -> Backend:
    usable = [b for b in _TABLE[op].values() if device_type in b.devices and b.available()]
    if _exporting():  # an exported graph holds plain torch ops only: the best portable backend
        usable = [b for b in usable if b.requires is None or REQUIREMENTS[b.requires].portable]
    return max(usable, key=lambda b: b.priority)


def _exporting() -> bool:
    import torch

    return torch.compiler.is_exporting()


def backends() -> dict[str, dict[str, Any]]:
    """For each op: the registered backends, which are available, and the default per device."""
    return {
        op: {
            "registered": sorted(table),
            "available": sorted(name for name, b in table.items() if b.available()),
            "default": {dev: _best(op, dev).name for dev in CPU_AND_CUDA},
        }
        for op, table in sorted(_TABLE.items())
    }


def requirement_met(name: str) -> bool:
    """Whether REQUIREMENTS[name] holds here: its package is installed (looked up once, when this module loads; not
    imported: importing triton would fix its interpreter setting) and, where it needs one, torch sees a CUDA device.
    Plain lookups, so torch.compile traces the dispatch inside a model's forward."""
    if not _INSTALLED[name]:
        return False
    if not REQUIREMENTS[name].cuda:
        return True
    import torch

    return torch.cuda.is_available()


_INSTALLED = {name: importlib.util.find_spec(r.package) is not None for name, r in REQUIREMENTS.items()}


@functools.cache
def _load(target: str) -> Callable[..., Any]:
    module, _, name = target.partition(":")
    return getattr(sys.modules[module] if module in sys.modules else import_module(module), name)


@functools.cache
def import_backends() -> None:
    """Imports the module of every backend available here, once (numba's kernels: ~0.4 s). Mixers call it when they
    are built, so their forward under torch.compile finds the kernels loaded: dynamo does not trace imports."""
    for backend in BACKENDS:
        if backend.available():
            _load(backend.target)


_EXAMPLES: dict[str, Example] = {}  # op -> its module's `@example_inputs(op)` function


def example_inputs(op: str) -> Callable[[Example], Example]:
    """Decorator for `fn(generator, dtype) -> [args, ...]` in `op`'s own module: small random positional arguments
    of calls of `op`'s backends, floating-point tensors in `dtype` (float32 or float64; complex ones in the complex
    dtype of that precision). Tensors that require grad are the inputs whose gradients the backend contract
    compares; a call may also update a tensor argument in place (a decoding state), which is compared too."""

    def declare(fn: Example) -> Example:
        _EXAMPLES[op] = fn
        return fn

    return declare


def examples(op: str, generator: torch.Generator, dtype: torch.dtype) -> list[tuple]:
    """The argument tuples `op`'s module declares (importing that module, the reference's, declares them)."""
    reference(op)
    if op not in _EXAMPLES:
        raise LookupError(f"op {op!r} declares no example inputs (@example_inputs({op!r}) in its module)")
    return _EXAMPLES[op](generator, dtype)
