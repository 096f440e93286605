"""The benchmark suite behind `ssmkit bench`: times every registered backend of each op, side by side in
one run, forward and forward+backward, and writes `results.json` and `results.md` to the output folder.

This is the frame the kernels work fills: a new backend registered with `ssmkit.ops.dispatch` shows up
here automatically, measured beside the reference at the same shapes.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ssmkit.ops import dispatch, fft_conv, selective_scan


def _time(fn: Callable[[], torch.Tensor], backward: bool, repeats: int) -> float:
    """Best wall time of `repeats` runs (after one warm-up), in seconds."""
    best = float("inf")
    for i in range(repeats + 1):
        start = time.perf_counter()
        out = fn()
        if backward:
            out.sum().backward()
        elapsed = time.perf_counter() - start
        if i:
            best = min(best, elapsed)
    return best


def _selective_scan_case(b: int, d: int, n: int, length: int) -> tuple[str, Callable[[str], torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    u = torch.randn(b, d, length, generator=g).requires_grad_()
    delta = torch.rand(b, d, length, generator=g).requires_grad_()
    A = (-torch.rand(d, n, generator=g)).requires_grad_()
    B = torch.randn(b, n, length, generator=g).requires_grad_()
    C = torch.randn(b, n, length, generator=g).requires_grad_()
    return f"B={b} D={d} N={n} L={length}", lambda be: selective_scan(
        u, delta, A, B, C, delta_softplus=True, backend=be
    )


def _fft_conv_case(b: int, h: int, length: int) -> tuple[str, Callable[[str], torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    u = torch.randn(b, h, length, generator=g).requires_grad_()
    k = torch.randn(h, length, generator=g).requires_grad_()
    return f"B={b} H={h} L={length}", lambda be: fft_conv(u, k, backend=be)


def cases(quick: bool) -> dict[str, list[tuple[str, Callable[[str], torch.Tensor]]]]:
    if quick:
        return {
            "selective_scan": [_selective_scan_case(1, 8, 4, 64)],
            "fft_conv": [_fft_conv_case(1, 8, 256)],
        }
    return {
        "selective_scan": [_selective_scan_case(2, 768, 16, 1024)],
        "fft_conv": [_fft_conv_case(2, 768, length) for length in (1024, 4096)],
    }


def main(quick: bool = False, out_dir: Path = Path("runs/bench")) -> int:
    repeats = 1 if quick else 3
    rows = []
    for op, op_cases in cases(quick).items():
        for shape, run in op_cases:
            for backend in dispatch.backends()[op]["available"]:
                row = {"op": op, "shape": shape, "backend": backend}
                for mode, backward in (("forward_s", False), ("forward_backward_s", True)):
                    row[mode] = _time(lambda: run(backend), backward, repeats)  # noqa: B023
                rows.append(row)
                print(
                    f"{op:16} {shape:28} {backend:10} fwd {row['forward_s'] * 1e3:9.2f} ms   "
                    f"fwd+bwd {row['forward_backward_s'] * 1e3:9.2f} ms",
                    flush=True,
                )
    meta = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "quick": quick,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    (out_dir / "results.md").write_text(_markdown(rows, meta))
    print(f"wrote {out_dir / 'results.json'} and {out_dir / 'results.md'}")
    return 0


def _markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        f"torch {meta['torch']}, {meta['threads']} threads, {meta['machine']}; best of repeated runs.",
        "",
        "| op | shape | backend | forward (ms) | forward+backward (ms) |",
        "| --- | --- | --- | ---: | ---: |",
    ]
    lines += [
        f"| {r['op']} | {r['shape']} | {r['backend']} | {r['forward_s'] * 1e3:.2f} "
        f"| {r['forward_backward_s'] * 1e3:.2f} |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"
