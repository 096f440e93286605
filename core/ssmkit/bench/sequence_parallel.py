"""Sequence parallelism on CPU processes (gloo): one forward + backward of a 2-layer backbone over a sequence split
across P = 1, 2, 4 ranks (`ssmkit.ops.sequence_parallel`), time per step and peak extra memory per rank against the
length, and the bytes each layer exchanges beside what ring attention would send.

Each P runs in its own group of spawned processes with `cores // P` threads each (at least one), so P = 4 on a
2-core machine oversubscribes: what scales there is the memory per rank, not the time. Bytes per layer and rank
(float32, batch B): a scan layer all-gathers its (total decay, final state) pair from every rank -- 2 x B x state
x (P - 1) values received, whatever the length -- plus a conv halo of B x channels x d_conv (Mamba); ring attention
would pass the other ranks' keys and values around the ring, 2 x B x L x D x (P - 1) / P values per layer.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ssmkit.bench.measure import peak_extra_mb
from ssmkit.train.plots import markdown_table

MIXERS = ("s5", "mamba")
D_MODEL, BATCH = 64, 1


def exchanged_bytes(mixer: str, length: int, world: int) -> tuple[int, int]:
    """(bytes one rank receives per layer by state passing, by ring attention) for `mixer` at `length`, read off the
    mixer's recurrent state: its scan state (complex values count twice) travels as (decay, state) pairs, its
    convolution window ("conv", where it has one) is the halo."""
    from ssmkit.registry import create_mixer

    state = create_mixer(mixer, D_MODEL).allocate_state(BATCH)
    floats = {name: t.numel() * (2 if t.is_complex() else 1) for name, t in state.items() if t.is_floating_point()
              or t.is_complex()}  # fmt: skip
    halo = floats.pop("conv", 0)
    others = world - 1  # what a rank receives comes from the other ranks
    passing = 4 * (2 * sum(floats.values()) * others + (halo if others else 0))
    ring = 4 * BATCH * 2 * length * D_MODEL * others // world
    return passing, ring


def _rank(rank: int, world: int, init_file: str, out_file: str, lengths: list[int], repeats: int) -> None:
    from ssmkit.models import SequenceBackbone
    from ssmkit.ops.sequence_parallel import sequence_parallel, shard_sequence

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    rows = []
    try:
        for mixer in MIXERS:
            torch.manual_seed(0)
            model = SequenceBackbone(d_model=D_MODEL, n_layers=2, mixer=mixer, mlp_ratio=2.0)
            for length in lengths:
                x = shard_sequence(torch.randn(BATCH, length, D_MODEL))

                def step(model: torch.nn.Module = model, x: torch.Tensor = x) -> torch.Tensor:
                    with sequence_parallel():
                        return model(x)

                step().sum().backward()  # warm-up (numba compiles, allocator)
                times = []
                for _ in range(repeats):
                    dist.barrier()
                    start = time.perf_counter()
                    step().sum().backward()
                    dist.barrier()
                    times.append(time.perf_counter() - start)
                memory = torch.tensor([peak_extra_mb(step) or float("nan")])
                dist.all_reduce(memory, op=dist.ReduceOp.MAX)
                rows.append({"mixer": mixer, "length": length, "world": world, "step_s": min(times),
                             "peak_extra_mb_per_rank": float(memory)})  # fmt: skip
        if rank == 0:
            torch.save(rows, out_file)
    finally:
        dist.destroy_process_group()


def run(quick: bool) -> list[dict[str, float | int | str]]:
    lengths = [256, 1024] if quick else [4096, 16384, 65536]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for world in (1, 2) if quick else (1, 2, 4):
            out = Path(tmp) / f"{world}.pt"
            mp.spawn(_rank, (world, str(Path(tmp) / f"init{world}"), str(out), lengths, 1 if quick else 3),
                     nprocs=world)  # fmt: skip
            rows += torch.load(out, weights_only=True)
    for r in rows:
        r["passing_bytes"], r["ring_bytes"] = exchanged_bytes(str(r["mixer"]), int(r["length"]), int(r["world"]))
        print(f"sequence parallel {r['mixer']:6} L {r['length']:6} P {r['world']}: {r['step_s']:.3f} s/step, "
              f"{r['peak_extra_mb_per_rank']:.0f} MiB/rank", flush=True)  # fmt: skip
    return rows


def markdown(rows: list[dict[str, float | int | str]]) -> str:
    intro = (
        f"Sequence parallelism (state passing), forward + backward of a 2-layer d_model {D_MODEL} backbone, batch "
        f"{BATCH}, on P CPU processes (gloo; `cores // P` threads each); peak extra memory is the largest over the "
        "ranks; bytes are what one rank receives per layer (float32), beside ring attention's keys and values."
    )
    header = ["mixer", "L", "P", "s / step", "peak extra MiB / rank", "state passing bytes", "ring attention bytes"]
    cells = [
        [
            r["mixer"],
            f"{r['length']:,}",
            r["world"],
            f"{r['step_s']:.3f}",
            f"{r['peak_extra_mb_per_rank']:,.0f}",
            f"{r['passing_bytes']:,}",
            f"{r['ring_bytes']:,}",
        ]  # fmt: skip
        for r in rows
    ]
    return "\n".join(["## Sequence parallelism", "", intro, "", markdown_table(header, cells)])


if __name__ == "__main__":
    print(markdown(run(quick=os.environ.get("SSMKIT_BENCH_QUICK") == "1")))
