"""The benchmark suite behind `ssmkit bench`: every registered backend of each op timed side by side in one run,
forward and forward+backward, beside installed outside implementations (`PEERS`), with the machine's floors on
top; then the one-block scaling table (`scaling.py`), training throughput of whole LMs against the length
(`training.py`), decoding throughput (`generation.py`), packed beside padded batches (`packing.py`) and transformers'
Mamba / Mamba-2 on the same weights (`transformers_peer.py`). Writes
`results.json`, `results.md` and `scaling.png` to the output folder.

A backend in the dispatch table (`ssmkit.ops.dispatch.BACKENDS`) shows up here automatically. For each row it records
`first_call_s` (the first forward+backward in this process: includes loading numba's cached JIT output, or
compiling when the cache is cold; the cold compile itself is measured in a fresh cache in the full run),
`peak_extra_mb` and best-of-`repeats` forward and forward+backward wall time, the implementations of a shape
timed in interleaved rounds (see `measure.py`). Each shape also gets a "floor" row: the least time its work
(exponentials, flops, bytes; stated per op in `cases`) takes at the machine's rates (measured before and after
the op rows, the better kept), and every row reads as a ratio to it.
A call predicted to take over `MAX_CALL_S` (extrapolated from the implementation's smaller shapes) is skipped and
says so.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F

from ssmkit.bench import generation, packing, scaling, training, transformers_peer
from ssmkit.bench.measure import MAX_CALL_S, Work, floor, machine_floors, measure_calls, predicted_s
from ssmkit.bench.ssd_minimal import ssd_scan_minimal
from ssmkit.ops import dispatch, fft_conv, linear_scan, selective_scan, ssd_scan
from ssmkit.ops.fft_conv import fast_fft_size
from ssmkit.train.plots import markdown_table

Run = Callable[[Callable[..., torch.Tensor]], torch.Tensor]  # runs one case through an implementation of its op


class Case(NamedTuple):
    """One shape of an op: its label, how to run it, its size along the swept axis, and the least work of one
    forward and of one forward+backward."""

    shape: str
    run: Run
    size: int
    work: tuple[Work, Work]


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


def linear_scan_as_selective_scan(a: torch.Tensor, b: torch.Tensor, resets: torch.Tensor | None = None):
    """The same recurrence h_t = a_t h_{t-1} + b_t (real, 0 < a < 1) as a selective scan with N = 1 (its default
    CPU backend): delta = -log a, A = -1, B = C = 1, u = b / delta, so exp(delta A) = a and delta B u = b. A reset
    is the decay 1e-30 rather than an exact 0. a, b: (B, L, D) -> h: (B, L, D)."""
    if resets is not None:
        a = a.masked_fill(resets[..., None], 1e-30)
    delta = -torch.log(a)
    ones = a.new_ones(a.shape[-1], 1)
    return selective_scan((b / delta).transpose(1, 2), delta.transpose(1, 2), -ones, ones, ones).transpose(1, 2)


# op -> peer name -> (the module it needs, or None, and the implementation)
PEERS: dict[str, dict[str, tuple[str | None, Callable[..., torch.Tensor]]]] = {
    "selective_scan": {"mambapy.pscan": ("mambapy", selective_scan_mambapy)},
    "ssd_scan": {"minimal SSD (paper listing)": (None, ssd_scan_minimal)},
    "linear_scan": {"selective_scan, N=1": (None, linear_scan_as_selective_scan)},
}


def _leaves(g: torch.Generator, *shapes: tuple[int, ...]) -> list[torch.Tensor]:
    return [torch.randn(shape, generator=g).requires_grad_() for shape in shapes]


def _selective_scan_case(b: int, d: int, n: int, length: int) -> Case:
    """Floor: B·D·L·N exponentials in the forward, twice that forward+backward."""
    g = torch.Generator().manual_seed(0)
    u, z, B, C, D = _leaves(g, (b, d, length), (b, d, length), (b, n, length), (b, n, length), (d,))
    delta = (torch.rand(b, d, length, generator=g) - 2).requires_grad_()
    A = (-torch.rand(d, n, generator=g)).requires_grad_()
    exps = b * d * n * length
    return Case(
        f"B={b} D={d} N={n} L={length}",
        lambda fn: fn(u, delta, A, B, C, D, z, delta_softplus=True),
        length,
        (Work(exps=exps), Work(exps=2 * exps)),
    )


def _ssd_scan_case(b: int, h: int, p: int, n: int, length: int, chunk: int = 64) -> Case:
    """One group. Floor: the chunked algorithm's matmul flops at the sgemm rate — C B^T per chunk (T·T·n per
    position), scores times x (T·h·p), chunk states and their read-out (2·h·p·n) — and about twice that again
    for the backward."""
    g = torch.Generator().manual_seed(0)
    x, z, dt, B, C = _leaves(g, *[(b, length, h, p)] * 2, (b, length, h), *[(b, length, 1, n)] * 2)
    A = (-torch.rand(h, generator=g)).requires_grad_()
    D, bias = _leaves(g, (h,), (h,))
    flops = 2 * b * length * (chunk * n + chunk * h * p + 2 * h * p * n)
    return Case(
        f"B={b} H={h} P={p} N={n} L={length} chunk={chunk}",
        lambda fn: fn(x, dt, A, B, C, chunk, D=D, z=z, dt_bias=bias, dt_softplus=True),
        length,
        (Work(flops=flops), Work(flops=3 * flops)),
    )


def _fft_conv_case(b: int, h: int, length: int) -> Case:
    """Kernel length = L. Floor: real FFTs of the 5-smooth size n >= 2L - 1 at ~2.5 n log2 n flops each, at the
    sgemm rate (2·B·H + H transforms forward, as many again backward), or its bytes if larger."""
    g = torch.Generator().manual_seed(0)
    u, k = _leaves(g, (b, h, length), (h, length))
    n = fast_fft_size(2 * length - 1)
    work = Work(flops=(2 * b * h + h) * 2.5 * n * math.log2(n), bytes=4 * (2 * b * h + h) * length)
    return Case(f"B={b} D={h} L={length}", lambda fn: fn(u, k), length, (work, work * 2))


def _linear_scan_case(b: int, length: int, d: int, reset_rate: float = 0.01) -> Case:
    """Real, 0.5 <= a < 1, resets at `reset_rate` of the steps. Floor: memory — read a, b and write h (3 tensors
    of B·L·D float32) forward; read a, h, dh and write da, db (5 more) backward."""
    g = torch.Generator().manual_seed(0)
    a = (0.5 + 0.5 * torch.rand(b, length, d, generator=g)).requires_grad_()
    x = torch.randn(b, length, d, generator=g).requires_grad_()
    resets = torch.rand(b, length, generator=g) < reset_rate
    size = 4 * b * length * d
    return Case(
        f"B={b} L={length} D={d} resets={reset_rate:g}",
        lambda fn: fn(a, x, resets=resets),
        length,
        (Work(bytes=3 * size), Work(bytes=8 * size)),
    )


def cases(quick: bool) -> dict[str, tuple[Callable[..., torch.Tensor], list[Case]]]:
    """op -> (its dispatching function, its cases)."""
    if quick:
        return {
            "selective_scan": (selective_scan, [_selective_scan_case(1, 8, 4, 64)]),
            "ssd_scan": (ssd_scan, [_ssd_scan_case(1, 2, 4, 4, length, chunk=16) for length in (32, 64)]),
            "fft_conv": (fft_conv, [_fft_conv_case(1, 8, length) for length in (64, 128)]),
            "linear_scan": (linear_scan, [_linear_scan_case(1, 64, 8, reset_rate=0.1)]),
        }
    return {
        # Mamba-130m's width at 4k; the selective-copy demo's shape (batch 64, E = 2 x 64, 64 + 4 steps)
        "selective_scan": (
            selective_scan,
            [_selective_scan_case(2, 768, 16, 4096), _selective_scan_case(64, 128, 16, 68)],
        ),
        "ssd_scan": (ssd_scan, [_ssd_scan_case(2, 24, 64, 64, length) for length in (1024, 4096, 16384)]),
        "fft_conv": (fft_conv, [_fft_conv_case(1, 256, 2**k) for k in range(7, 17)]),
        "linear_scan": (linear_scan, [_linear_scan_case(2, 4096, 768)]),
    }


def _implementations(op: str, dispatching: Callable[..., torch.Tensor]) -> dict[str, Callable[..., torch.Tensor]]:
    """Every available backend of `op`, then every installed peer."""
    impls = {
        be: partial(dispatching, backend=be) for be in dispatch.backends()[op]["available"] if _runs_on(op, be, "cpu")
    }
    for name, (module, fn) in PEERS.get(op, {}).items():
        if module is None or importlib.util.find_spec(module) is not None:
            impls[name] = fn
    return impls


def _fill_floors(rows: list[dict], floors: dict[str, float]) -> None:
    """Each floor row's forward and forward+backward times at the machine's rates, and the rate that sets them."""
    for r in rows:
        if r["backend"] == "floor":
            (r["forward_s"], _), (r["forward_backward_s"], r["bound"]) = (floor(Work(**w), floors) for w in r["work"])
            _print(r)


def _runs_on(op: str, backend: str, device: str) -> bool:
    try:
        dispatch.resolve(op, device, backend)
    except RuntimeError:  # a GPU-only backend
        return False
    return True


def _op_rows(quick: bool) -> list[dict]:
    """Every implementation of every op on each of its cases, then the case's floor row (its work; the times
    come in `_fill_floors`)."""
    repeats = 1 if quick else 3
    rows = []
    for op, (dispatching, op_cases) in cases(quick).items():
        measured: dict[str, list[tuple[int, float]]] = {}  # implementation -> its (size, forward+backward s)
        for case in op_cases:
            head = {"op": op, "shape": case.shape, "size": case.size}
            impls = _implementations(op, dispatching)
            slow = {name for name in impls if name in measured and predicted_s(measured[name], case.size) > MAX_CALL_S}
            times = measure_calls(
                {name: partial(case.run, impl) for name, impl in impls.items() if name not in slow}, repeats
            )
            for name in impls:
                if name in slow:
                    rows.append(head | {"backend": name, "skipped": f"predicted > {MAX_CALL_S:.0f} s per call"})
                else:
                    rows.append(head | {"backend": name} | times[name])
                    measured.setdefault(name, []).append((case.size, times[name]["forward_backward_s"]))
                _print(rows[-1])
            rows.append(head | {"backend": "floor", "work": [asdict(w) for w in case.work]})
    return rows


def _cuda_rows(quick: bool) -> list[dict]:
    """Where a CUDA GPU is present: each backend that runs on it (the Triton kernels; not the loop reference) on
    every case, inputs moved to the GPU once, timed with the device synchronised; peak memory is the GPU's."""
    if not torch.cuda.is_available():
        return []
    rows = []
    for op, (dispatching, op_cases) in cases(quick).items():
        names = [be for be in dispatch.backends()[op]["available"] if be != "reference" and _runs_on(op, be, "cuda")]
        for case, be in ((case, be) for case in op_cases for be in names):
            call = partial(case.run, _on_cuda(partial(dispatching, backend=be)))
            start = time.perf_counter()
            _synchronised(call, True)  # first call: compiles and autotunes
            row = {"op": op, "shape": case.shape, "size": case.size, "backend": f"{be} (cuda)", "device": "cuda"}
            row["first_call_s"] = time.perf_counter() - start
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            for mode, backward in (("forward_s", False), ("forward_backward_s", True)):
                row[mode] = min(_synchronised(call, backward) for _ in range(3))
            rows.append(row | {"peak_extra_mb": (torch.cuda.max_memory_allocated() - base) / 2**20})
            _print(rows[-1])
    return rows


def _on_cuda(impl: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """`impl` called on GPU copies of its tensor arguments, each copied once (leaves stay leaves)."""
    copies: dict[int, torch.Tensor] = {}

    def to_cuda(t):
        if not isinstance(t, torch.Tensor):
            return t
        return copies.setdefault(id(t), t.detach().cuda().requires_grad_(t.requires_grad))

    return lambda *args, **kwargs: impl(*map(to_cuda, args), **{k: to_cuda(v) for k, v in kwargs.items()})


def _synchronised(call: Callable[[], torch.Tensor], backward: bool) -> float:
    torch.cuda.synchronize()
    start = time.perf_counter()
    out = call()
    if backward:
        out.sum().backward()
    torch.cuda.synchronize()
    return time.perf_counter() - start


def main(quick: bool = False, out_dir: Path = Path("runs/bench")) -> int:
    floors = machine_floors(quick)
    rows = _op_rows(quick) + _cuda_rows(quick)
    floors = {k: max(v, rate) for (k, v), rate in zip(floors.items(), machine_floors(quick).values(), strict=True)}
    print("machine floors (best of two measurements): " + ", ".join(f"{k} {v:.2f}" for k, v in floors.items()))
    _fill_floors(rows, floors)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpus": os.cpu_count(),
        "quick": quick,
        "floors": floors,
    }
    if not quick and "numba" in dispatch.backends()["selective_scan"]["available"]:
        meta["numba_selective_scan_first_call"] = _numba_compile_s()
    summary = _summary(rows)
    block_rows = scaling.run(quick)
    trained = training.run(quick)
    decoding = generation.run(quick)
    packed = packing.run(quick)
    peer = transformers_peer.run(quick)
    out_dir.mkdir(parents=True, exist_ok=True)
    scaling.plot(block_rows, out_dir / "scaling.png")
    results = {
        "meta": meta,
        "summary": summary,
        "results": rows,
        "scaling": block_rows,
        "training": trained,
        "generation": decoding,
        "packing": packed,
        "transformers": peer,
    }
    (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    (out_dir / "results.md").write_text(
        "\n".join(
            [
                _markdown(rows, meta, summary),
                scaling.markdown(block_rows),
                training.markdown(trained),
                generation.markdown(decoding),
                packing.markdown(packed),
                transformers_peer.markdown(peer),
            ]
        )
    )
    print(f"wrote {out_dir / 'results.json'}, {out_dir / 'results.md'} and {out_dir / 'scaling.png'}")
    return 0


def _fwd_bwd(rows: list[dict], op: str, backend: str) -> dict[int, float]:
    """size -> forward+backward seconds of one implementation of `op` (measured rows only)."""
    return {r["size"]: r["forward_backward_s"] for r in rows if (r["op"], r["backend"]) == (op, backend)
            and "skipped" not in r}  # fmt: skip


def _summary(rows: list[dict]) -> dict[str, object]:
    """The figures the issue asks for, read off the rows (forward+backward; keys are lengths L)."""
    ssd, minimal = _fwd_bwd(rows, "ssd_scan", "chunked"), _fwd_bwd(rows, "ssd_scan", "minimal SSD (paper listing)")
    fft, direct = _fwd_bwd(rows, "fft_conv", "fft"), _fwd_bwd(rows, "fft_conv", "reference")
    scan = _fwd_bwd(rows, "linear_scan", "numba")
    both = [length for length in fft if length in direct]
    return {
        "ssd_chunked_over_minimal": {length: ssd[length] / minimal[length] for length in ssd if length in minimal},
        "ssd_chunked_peak_kib_per_position": {
            r["size"]: r["peak_extra_mb"] * 1024 / r["size"]
            for r in rows
            if (r["op"], r["backend"]) == ("ssd_scan", "chunked") and r.get("peak_extra_mb")
        },  # fmt: skip
        "fft_faster_than_direct_from_L": next(
            (length for i, length in enumerate(both) if all(fft[t] < direct[t] for t in both[i:])), None
        ),
        "direct_conv_stopped_at_L": next((length for length in fft if length not in direct), None),
        "linear_scan_numba_speedup": {
            peer: {length: _fwd_bwd(rows, "linear_scan", peer).get(length, math.nan) / scan[length] for length in scan}
            for peer in ("reference", "selective_scan, N=1")
        },
    }


def _summary_lines(summary: dict) -> list[str]:
    def per_length(values: dict[int, float], fmt: str) -> str:
        return ", ".join(f"{format(v, fmt)} at L={length}" for length, v in values.items())

    speedup = summary["linear_scan_numba_speedup"]
    return [
        "- ssd_scan chunked / minimal SSD (paper listing), forward+backward: "
        + per_length(summary["ssd_chunked_over_minimal"], ".2f"),
        "- ssd_scan chunked peak extra memory per position (constant = linear in L): "
        + per_length(summary["ssd_chunked_peak_kib_per_position"], ".0f")
        + " (KiB)",
        f"- fft_conv beats the direct conv1d from L={summary['fft_faster_than_direct_from_L']} on (forward+backward); "
        f"direct conv stopped at L={summary['direct_conv_stopped_at_L']}",
        "- linear_scan numba speedup over the torch loop: "
        + per_length(speedup["reference"], ".1f")
        + "; over selective_scan doing the same recurrence: "
        + per_length(speedup["selective_scan, N=1"], ".1f"),
    ]


def _print(row: dict) -> None:
    label = f"{row['op']:15} {row['shape']:38} {row['backend']:28}"
    if "skipped" in row:
        print(f"{label} skipped: {row['skipped']}", flush=True)
        return
    mem = row.get("peak_extra_mb")
    print(
        f"{label} fwd {row['forward_s'] * 1e3:10.2f} ms   fwd+bwd {row['forward_backward_s'] * 1e3:10.2f} ms"
        + ("" if mem is None else f"   peak +{mem:8.1f} MiB"),
        flush=True,
    )


def _markdown(rows: list[dict], meta: dict, summary: dict) -> str:
    floors = {(r["op"], r["shape"]): r["forward_backward_s"] for r in rows if r["backend"] == "floor"}

    def cell(value: float | None, fmt: str) -> str:
        return "" if value is None else format(value, fmt)

    f = meta["floors"]
    lines = [
        f"Measured {meta['date']}: torch {meta['torch']}, {meta['threads']} threads, {meta['cpus']} CPUs "
        f"({meta['machine']}); best of repeated runs.",
        f"Machine floors: float32 matmul {f['sgemm_gflop_s']:.1f} GFLOP/s (2048^2 sgemm), memory "
        f"{f['copy_gb_s']:.1f} GB/s copy / {f['triad_gb_s']:.1f} GB/s triad, torch.exp {f['exp_gelem_s']:.2f} "
        "Gelem/s (L2-resident). 'x floor' = forward+backward time / the floor row's (its bound in brackets).",
    ]
    if "numba_selective_scan_first_call" in meta:
        first = meta["numba_selective_scan_first_call"]
        lines.append(
            f"numba selective_scan first forward+backward in a fresh process: {first['cold_cache_s']:.1f} s with an "
            f"empty JIT cache (compile), {first['warm_cache_s']:.2f} s with the cache."
        )
    header = ["op", "shape", "backend", "forward (ms)", "forward+backward (ms)", "x floor", "peak extra (MiB)"]
    table = []
    for r in rows:
        if "skipped" in r:
            table.append([r["op"], r["shape"], r["backend"], f"skipped: {r['skipped']}", "", "", "", ""])
            continue
        name = f"floor ({r['bound']})" if r["backend"] == "floor" else r["backend"]
        cpu_row = r["backend"] != "floor" and r.get("device") != "cuda"  # the floors are the CPU's
        ratio = r["forward_backward_s"] / floors[r["op"], r["shape"]] if cpu_row else None
        times = [f"{r['forward_s'] * 1e3:.2f}", f"{r['forward_backward_s'] * 1e3:.2f}", cell(ratio, ".1f")]
        extras = [cell(r.get("peak_extra_mb"), ".1f"), cell(r.get("first_call_s"), ".3f")]
        table.append([r["op"], r["shape"], name, *times, *extras])
    lines += ["", markdown_table([*header, "first call (s)"], table, align="lllrrrrr"), "", "Summary:"]
    lines += _summary_lines(summary)
    return "\n".join(lines) + "\n"
