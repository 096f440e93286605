"""State-passing sequence parallelism for the linear scan: 2 and 4 CPU processes (gloo) give the single-process
outputs and gradients, with resets (one right at a rank boundary) and complex values as S5 has."""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ssmkit.ops.linear_scan import linear_scan
from ssmkit.ops.sequence_parallel import linear_scan_sequence_parallel

LENGTH = 24


def inputs(dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    """a, b (2, LENGTH, 3), resets (2, LENGTH) with one at position 12 (a boundary for 2 and 4 ranks), weights."""
    g = torch.Generator().manual_seed(0)
    real = torch.float64
    magnitude = 0.5 + 0.5 * torch.rand(2, LENGTH, 3, generator=g, dtype=real)
    if dtype.is_complex:
        a = torch.polar(magnitude, torch.rand(2, LENGTH, 3, generator=g, dtype=real))
        b = torch.complex(*torch.randn(2, 2, LENGTH, 3, generator=g, dtype=real))
    else:
        a, b = magnitude, torch.randn(2, LENGTH, 3, generator=g, dtype=real)
    resets = torch.rand(2, LENGTH, generator=g) < 0.1
    resets[0, 12] = True
    weights = torch.randn(2, LENGTH, 3, generator=g, dtype=real)
    return a, b, resets, weights


def loss(h: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return ((h.real if h.is_complex() else h) * weights).sum() + (h.abs() ** 2).sum()


def worker(rank: int, world: int, init_file: str, out_dir: str, complex_values: bool) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        a, b, resets, weights = inputs(torch.complex128 if complex_values else torch.float64)
        part = slice(rank * LENGTH // world, (rank + 1) * LENGTH // world)
        a, b = a[:, part].clone().requires_grad_(), b[:, part].clone().requires_grad_()
        h = linear_scan_sequence_parallel(a, b, resets[:, part])
        loss(h, weights[:, part]).backward()
        torch.save({"h": h.detach(), "da": a.grad, "db": b.grad}, f"{out_dir}/{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("world", [2, 4])
@pytest.mark.parametrize("complex_values", [False, True], ids=["real", "complex"])
def test_state_passing_equals_one_process(tmp_path, world, complex_values):
    mp.spawn(worker, (world, str(tmp_path / "init"), str(tmp_path), complex_values), nprocs=world)
    parts = [torch.load(tmp_path / f"{rank}.pt", weights_only=True) for rank in range(world)]
    a, b, resets, weights = inputs(torch.complex128 if complex_values else torch.float64)
    a, b = a.requires_grad_(), b.requires_grad_()
    h = linear_scan(a, b, resets=resets)
    loss(h, weights).backward()
    for key, want in (("h", h.detach()), ("da", a.grad), ("db", b.grad)):
        torch.testing.assert_close(torch.cat([p[key] for p in parts], dim=1), want, atol=1e-10, rtol=1e-9)
