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


def backbone_worker(rank: int, world: int, init_file: str, out_dir: str, mixer: str) -> None:
    from ssmkit.models import SequenceBackbone
    from ssmkit.ops.sequence_parallel import sequence_parallel

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        backbone = SequenceBackbone(d_model=8, n_layers=2, mixer=mixer, mlp_ratio=2.0, d_input=3).double()
        x = torch.randn(2, LENGTH, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        part = slice(rank * LENGTH // world, (rank + 1) * LENGTH // world)
        try:
            with sequence_parallel():
                h = backbone(x[:, part])
        except ValueError as exc:
            torch.save({"error": str(exc)}, f"{out_dir}/{rank}.pt")
            return
        h.square().sum().backward()
        grads = [p.grad for p in backbone.parameters()]
        for grad in grads:  # each rank holds its chunk's share of the parameter gradients
            dist.all_reduce(grad)
        torch.save({"h": h.detach(), "grads": grads}, f"{out_dir}/{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("mixer", ["s5", "lru"])
def test_a_backbone_on_a_split_sequence_equals_one_process(tmp_path, mixer):
    from ssmkit.models import SequenceBackbone

    mp.spawn(backbone_worker, (2, str(tmp_path / "init"), str(tmp_path), mixer), nprocs=2)
    parts = [torch.load(tmp_path / f"{rank}.pt", weights_only=True) for rank in range(2)]
    torch.manual_seed(0)
    backbone = SequenceBackbone(d_model=8, n_layers=2, mixer=mixer, mlp_ratio=2.0, d_input=3).double()
    x = torch.randn(2, LENGTH, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    h = backbone(x)
    h.square().sum().backward()
    torch.testing.assert_close(torch.cat([p["h"] for p in parts], dim=1), h.detach(), atol=1e-10, rtol=1e-9)
    for got, p in zip(parts[0]["grads"], backbone.parameters(), strict=True):
        torch.testing.assert_close(got, p.grad, atol=1e-10, rtol=1e-9)


@pytest.mark.slow
def test_a_mixer_without_state_passing_refuses_a_split_sequence(tmp_path):
    mp.spawn(backbone_worker, (2, str(tmp_path / "init"), str(tmp_path), "mamba"), nprocs=2)
    error = torch.load(tmp_path / "0.pt", weights_only=True)["error"]
    assert "Mamba cannot read a sequence split across ranks" in error


def test_a_split_needs_a_process_group():
    from ssmkit.ops.sequence_parallel import sequence_parallel

    with pytest.raises(RuntimeError, match="needs an initialised process group"):
        with sequence_parallel():
            pass
