"""How the bench suite measures: wall time, peak memory, and the machine's floors.

- `measure_calls`: what every table row records — first call, peak memory, best forward and forward+backward —
  for the implementations of one case, timed in interleaved rounds.
- `best_time`: best wall time of repeated calls (forward, or forward + backward of the output's sum).
- `predicted_s`: a call's time extrapolated from the same implementation's smaller sizes, so a sweep stops
  before a call would take over `MAX_CALL_S`.
- `peak_extra_mb`: peak resident memory during one forward+backward minus the resident memory before it (Linux
  VmHWM after resetting it through /proc/self/clear_refs, with free heap pages returned first by malloc_trim so
  memory the allocator kept from earlier calls cannot hide new use); it counts every allocation of the process,
  torch's and numba's, including the gradients.
- `machine_floors`: float32 matmul GFLOP/s (sgemm), memory bandwidth (large copy and triad, GB/s) and torch.exp
  throughput (on an L2-resident buffer: compute only; one thread's rate times the thread count), measured on the
  machine the suite runs on.
- `Work` / `floor`: what a computation must do at least (exponentials, flops, bytes moved), turned into the
  shortest time these rates allow: the largest of the three (a roofline bound), named by the rate that sets it.
"""

from __future__ import annotations

import ctypes
import gc
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch


def best_time(fn: Callable[[], torch.Tensor], backward: bool, repeats: int) -> float:
    """Best wall time of `repeats` calls of `fn` (and `.sum().backward()` of its output if `backward`), in s."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        if backward:
            out.sum().backward()
        best = min(best, time.perf_counter() - start)
    return best


MAX_CALL_S = 60.0  # a call predicted to take longer is skipped
SLOW_CALL_S = 2.0  # a first call slower than this is timed once, not best-of-repeats


def measure_calls(calls: dict[str, Callable[[], torch.Tensor]], repeats: int) -> dict[str, dict[str, float | None]]:
    """Implementations of one case side by side: each one's first forward+backward (`first_call_s`) and
    `peak_extra_mb`, then `repeats` rounds that time each in turn once forward and once forward+backward
    (interleaved, so a busy moment of a shared machine hits them alike), keeping each one's best, in s. An
    implementation whose first call took over `SLOW_CALL_S` is timed in the first round only."""
    rows = {}
    for name, call in calls.items():
        start = time.perf_counter()
        call().sum().backward()
        rows[name] = {"first_call_s": time.perf_counter() - start, "peak_extra_mb": peak_extra_mb(call)}
    for i in range(repeats):
        for name, call in calls.items():
            if i == 0 or rows[name]["first_call_s"] <= SLOW_CALL_S:
                for mode, backward in (("forward_s", False), ("forward_backward_s", True)):
                    rows[name][mode] = min(rows[name].get(mode, math.inf), best_time(call, backward, 1))
    return rows


def predicted_s(measured: list[tuple[int, float]], size: int) -> float:
    """The time of a call at `size`, from earlier (size, seconds) calls of the same implementation: their growth
    between the last two sizes (at least linear), or linear growth from a single one."""
    (s1, t1), (s0, t0) = measured[-1], measured[-2] if len(measured) > 1 else (0, 0.0)
    exponent = max(1.0, math.log(t1 / t0) / math.log(s1 / s0)) if t0 > 0 else 1.0
    return t1 * (size / s1) ** exponent


def peak_extra_mb(fn: Callable[[], torch.Tensor]) -> float | None:
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


def machine_floors(quick: bool) -> dict[str, float]:
    """sgemm GFLOP/s, copy and triad GB/s, torch.exp Gelem/s; best of a few runs each (smaller when `quick`)."""
    size, elems, repeats = (512, 1 << 22, 2) if quick else (2048, 1 << 26, 5)
    a, b = torch.randn(size, size), torch.randn(size, size)
    src, other, dst = torch.randn(elems), torch.randn(elems), torch.empty(elems)
    x = torch.randn(1 << 15)
    triad = partial(torch.add, src, other, alpha=3.0, out=dst)
    exp_reps = 200 if quick else 2000
    return {
        "sgemm_gflop_s": 2 * size**3 / best_time(lambda: torch.mm(a, b), False, repeats) / 1e9,
        "copy_gb_s": 2 * 4 * elems / best_time(lambda: dst.copy_(src), False, repeats) / 1e9,
        "triad_gb_s": 3 * 4 * elems / best_time(triad, False, repeats) / 1e9,
        "exp_gelem_s": torch.get_num_threads() * exp_reps * x.numel() / _one_thread_s(x, exp_reps) / 1e9,
    }


def _one_thread_s(x: torch.Tensor, reps: int) -> float:
    """Best time of `reps` torch.exp calls on one thread. Timed on one thread and scaled by the thread count, as
    on a shared machine many short multi-threaded calls measure the waits at their joins, not the exp rate."""
    threads, out = torch.get_num_threads(), torch.empty_like(x)
    torch.set_num_threads(1)
    try:
        return best_time(partial(_exp_loop, x, out, reps), False, 3)
    finally:
        torch.set_num_threads(threads)


def _exp_loop(x: torch.Tensor, out: torch.Tensor, reps: int) -> torch.Tensor:
    for _ in range(reps):
        torch.exp(x, out=out)
    return out


@dataclass(frozen=True)
class Work:
    """The least one call must do: exponentials, float32 flops, bytes moved (0 where that bound does not apply)."""

    exps: float = 0.0
    flops: float = 0.0
    bytes: float = 0.0

    def __mul__(self, k: float) -> Work:
        return Work(self.exps * k, self.flops * k, self.bytes * k)


def floor(work: Work, floors: dict[str, float]) -> tuple[float, str]:
    """(the shortest time `work` can take at the machine's rates, in s; which rate sets it: exp, matmul, memory)."""
    bounds = {
        "exp": work.exps / (floors["exp_gelem_s"] * 1e9),
        "matmul": work.flops / (floors["sgemm_gflop_s"] * 1e9),
        "memory": work.bytes / (floors["triad_gb_s"] * 1e9),
    }
    name = max(bounds, key=bounds.get)
    return bounds[name], name
