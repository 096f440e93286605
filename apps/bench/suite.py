"""The benchmark suite behind `ssmkit bench`: times every registered backend of each op, side by side in
one run, forward and forward+backward, and writes `results.json` and `results.md` to the output folder.

A backend registered with `ssmkit.ops.dispatch` shows up here automatically, measured beside the reference at
the same shapes; installed outside implementations (`peers`, e.g. mamba.py's pscan) are measured beside them.
For each row it records:
- `first_call_s`: the first forward+backward in this process (includes loading numba's cached JIT output, or
  compiling when the cache is cold; the cold compile itself is measured in a fresh cache in the full run);
- `peak_extra_mb`: peak resident memory during one forward+backward minus the resident memory before it (Linux
  VmHWM after resetting it through /proc/self/clear_refs, with free heap pages returned first by malloc_trim so
  memory the allocator kept from earlier calls cannot hide new use); it counts every allocation of the process,
  torch's and numba's, including the gradients;
- best-of-`repeats` forward and forward+backward wall time.
Selective-scan cases also get an "exp floor" row: B·D·L·N exponentials for the forward (twice that for
forward+backward) at the machine's torch.exp rate, measured on an L2-resident buffer (compute only, no memory
traffic), so every time reads as a ratio to the floor.
"""

from __future__ import annotations

import ctypes
import gc
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

from ssmkit.ops import dispatch, fft_conv, selective_scan

sys.path.insert(0, str(Path(__file__).parent))  # the suite's sibling modules (loaded by path, not installed)
import generation  # noqa: E402

Run = Callable[[Callable[..., torch.Tensor]], torch.Tensor]  # runs one case through an implementation of its op


def _best_time(fn: Callable[[], torch.Tensor], backward: bool, repeats: int) -> float:
    """Best wall time of `repeats` runs, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        if backward:
            out.sum().backward()
        best = min(best, time.perf_counter() - start)
    return best


def _peak_extra_mb(fn: Callable[[], torch.Tensor]) -> float | None:
    """Peak RSS during one forward+backward minus RSS before it, in MiB; None where /proc or glibc is missing."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        gc.collect()
        libc.malloc_trim(0)
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        before = _proc_status_kb("VmRSS")
        fn().sum().backward()
        return (_proc_status_kb("VmHWM") - before) / 1024
    except OSError:
        return None


def _proc_status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status")


def _exp_rate() -> float:
    """torch.exp throughput in elements/s on a float32 buffer that stays in L2 (best of three ~0.1 s runs)."""
    x = torch.randn(1 << 15)
    out = torch.empty_like(x)
    reps = 2000
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(reps):
            torch.exp(x, out=out)
        best = min(best, time.perf_counter() - start)
    return reps * x.numel() / best


_COMPILE_PROBE = """
import time, torch
from ssmkit.ops import selective_scan
u, dt, z = (torch.randn(1, 4, 8, requires_grad=True) for _ in range(3))
A, B, C, D = -torch.rand(4, 3), torch.randn(1, 3, 8), torch.randn(1, 3, 8), torch.randn(4)
start = time.perf_counter()
selective_scan(u, dt, A, B, C, D, z, delta_softplus=True, backend="numba").sum().backward()
print(time.perf_counter() - start)
"""


def _numba_compile_s() -> dict[str, float]:
    """First float32 selective_scan forward+backward in a fresh process: with an empty JIT cache, then cached."""
    with tempfile.TemporaryDirectory() as cache:
        env = os.environ | {"NUMBA_CACHE_DIR": cache}
        runs = [
            subprocess.run([sys.executable, "-c", _COMPILE_PROBE], env=env, capture_output=True, text=True)
            for _ in "12"
        ]
    return {k: float(r.stdout.split()[-1]) for k, r in zip(("cold_cache_s", "warm_cache_s"), runs, strict=True)}


def selective_scan_mambapy(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    """mamba.py's selective scan (`MambaBlock.selective_scan`: (b, l, d, n) tensors and `pscan`) behind the ssmkit
    signature, for B, C of shape (b, n, l); the peer the issue measures against."""
    from mambapy.pscan import pscan

    x, dt = u.transpose(1, 2), delta.transpose(1, 2)  # (b, l, d)
    if delta_bias is not None:
        dt = dt + delta_bias
    if delta_softplus:
        dt = F.softplus(dt)
    Bt, Ct = B.transpose(1, 2), C.transpose(1, 2)  # (b, l, n)
    deltaA = torch.exp(dt.unsqueeze(-1) * A)  # (b, l, d, n)
    BX = (dt.unsqueeze(-1) * Bt.unsqueeze(2)) * x.unsqueeze(-1)
    y = (pscan(deltaA, BX) @ Ct.unsqueeze(-1)).squeeze(3)
    if D is not None:
        y = y + D * x
    if z is not None:
        y = y * F.silu(z.transpose(1, 2))
    return y.transpose(1, 2)


PEERS: dict[str, dict[str, tuple[str, Callable[..., torch.Tensor]]]] = {
    "selective_scan": {"mambapy.pscan": ("mambapy", selective_scan_mambapy)},
}


def _selective_scan_case(b: int, d: int, n: int, length: int) -> tuple[str, Run, int]:
    g = torch.Generator().manual_seed(0)
    u = torch.randn(b, d, length, generator=g).requires_grad_()
    delta = (torch.rand(b, d, length, generator=g) - 2).requires_grad_()
    A = (-torch.rand(d, n, generator=g)).requires_grad_()
    B = torch.randn(b, n, length, generator=g).requires_grad_()
    C = torch.randn(b, n, length, generator=g).requires_grad_()
    D = torch.randn(d, generator=g).requires_grad_()
    z = torch.randn(b, d, length, generator=g).requires_grad_()
    return (
        f"B={b} D={d} N={n} L={length}",
        lambda fn: fn(u, delta, A, B, C, D, z, delta_softplus=True),
        b * d * n * length,
    )


def _fft_conv_case(b: int, h: int, length: int) -> tuple[str, Run, int]:
    g = torch.Generator().manual_seed(0)
    u = torch.randn(b, h, length, generator=g).requires_grad_()
    k = torch.randn(h, length, generator=g).requires_grad_()
    return f"B={b} H={h} L={length}", lambda fn: fn(u, k), 0


def cases(quick: bool) -> dict[str, tuple[Callable[..., torch.Tensor], list[tuple[str, Run, int]]]]:
    """op -> (its dispatching function, [(shape label, run, exponentials in one forward)])."""
    if quick:
        return {
            "selective_scan": (selective_scan, [_selective_scan_case(1, 8, 4, 64)]),
            "fft_conv": (fft_conv, [_fft_conv_case(1, 8, 256)]),
        }
    return {
        "selective_scan": (selective_scan, [_selective_scan_case(2, 768, 16, 4096)]),
        "fft_conv": (fft_conv, [_fft_conv_case(2, 768, length) for length in (1024, 4096)]),
    }


def _implementations(op: str, dispatching: Callable[..., torch.Tensor]) -> dict[str, Callable[..., torch.Tensor]]:
    """Every available backend of `op`, then every installed peer."""
    impls = {be: partial(dispatching, backend=be) for be in dispatch.backends()[op]["available"]}
    for name, (module, fn) in PEERS.get(op, {}).items():
        if importlib.util.find_spec(module) is not None:
            impls[name] = fn
    return impls


def _measure(run: Run, impl: Callable[..., torch.Tensor], repeats: int) -> dict[str, float | None]:
    call = partial(run, impl)
    start = time.perf_counter()
    call().sum().backward()
    row = {"first_call_s": time.perf_counter() - start, "peak_extra_mb": _peak_extra_mb(call)}
    for mode, backward in (("forward_s", False), ("forward_backward_s", True)):
        row[mode] = _best_time(call, backward, repeats)
    return row


def main(quick: bool = False, out_dir: Path = Path("runs/bench")) -> int:
    repeats = 1 if quick else 3
    exp_rate = _exp_rate()
    rows = []
    for op, (dispatching, op_cases) in cases(quick).items():
        for shape, run, exps in op_cases:
            for name, impl in _implementations(op, dispatching).items():
                rows.append({"op": op, "shape": shape, "backend": name} | _measure(run, impl, repeats))
                _print(rows[-1])
            if exps:
                floor = {"forward_s": exps / exp_rate, "forward_backward_s": 2 * exps / exp_rate}
                rows.append({"op": op, "shape": shape, "backend": "exp floor"} | floor)
                _print(rows[-1])
    meta = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "quick": quick,
        "exp_gelem_per_s": exp_rate / 1e9,
    }
    if not quick and "numba" in dispatch.backends()["selective_scan"]["available"]:
        meta["numba_selective_scan_first_call"] = _numba_compile_s()
    decoding = generation.run(quick)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps({"meta": meta, "results": rows, "generation": decoding}, indent=2))
    (out_dir / "results.md").write_text(_markdown(rows, meta) + "\n" + generation.markdown(decoding))
    print(f"wrote {out_dir / 'results.json'} and {out_dir / 'results.md'}")
    return 0


def _print(row: dict) -> None:
    mem = row.get("peak_extra_mb")
    print(
        f"{row['op']:16} {row['shape']:28} {row['backend']:14} fwd {row['forward_s'] * 1e3:9.2f} ms   "
        f"fwd+bwd {row['forward_backward_s'] * 1e3:9.2f} ms" + ("" if mem is None else f"   peak +{mem:8.1f} MiB"),
        flush=True,
    )


def _markdown(rows: list[dict], meta: dict) -> str:
    floors = {r["shape"]: r["forward_backward_s"] for r in rows if r["backend"] == "exp floor"}

    def cell(value: float | None, fmt: str) -> str:
        return "" if value is None else format(value, fmt)

    lines = [
        f"torch {meta['torch']}, {meta['threads']} threads, {meta['machine']}; best of repeated runs; "
        f"torch.exp {meta['exp_gelem_per_s']:.2f} Gelem/s (L2-resident).",
    ]
    if "numba_selective_scan_first_call" in meta:
        first = meta["numba_selective_scan_first_call"]
        lines.append(
            f"numba selective_scan first forward+backward in a fresh process: {first['cold_cache_s']:.1f} s with an "
            f"empty JIT cache (compile), {first['warm_cache_s']:.2f} s with the cache."
        )
    lines += [
        "",
        "| op | shape | backend | forward (ms) | forward+backward (ms) | x exp floor | peak extra (MiB) "
        "| first call (s) |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        floor = floors.get(r["shape"]) if r["backend"] != "exp floor" else None
        lines.append(
            f"| {r['op']} | {r['shape']} | {r['backend']} | {r['forward_s'] * 1e3:.2f} "
            f"| {r['forward_backward_s'] * 1e3:.2f} | {cell(floor and r['forward_backward_s'] / floor, '.1f')} "
            f"| {cell(r.get('peak_extra_mb'), '.1f')} | {cell(r.get('first_call_s'), '.3f')} |"
        )
    return "\n".join(lines) + "\n"
