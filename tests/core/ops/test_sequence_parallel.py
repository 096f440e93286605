"""State-passing sequence parallelism: 2 and 4 CPU processes (gloo) give the single-process outputs and gradients,
for the linear scan (resets, one right at a rank boundary; complex values as S5 has), the selective scan and the SSD
scan (every optional input, resets too), and whole backbones of S5, LRU, Mamba, Mamba-2 (conv halo included),
attention, a Mamba + attention hybrid (keys and values all-gathered), Hydra (bidirectional: both neighbours' edges,
the backward scan's state from the ranks after), MoM (routed memories in one SSD scan), S5, Mamba and Mamba-2 with
resets at and just after a rank boundary, and S5, Mamba and a Mamba + attention hybrid with `lengths` (of the whole
sequence) ending before and after a rank boundary."""

import os
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ssmkit.ops import selective_scan, ssd_scan
from ssmkit.ops.linear_scan import linear_scan
from ssmkit.ops.sequence_parallel import (
    linear_scan_sequence_parallel,
    selective_scan_sequence_parallel,
    shard_sequence,
    ssd_scan_sequence_parallel,
)

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


def close_group() -> None:
    """Every rank waits for the others before tearing gloo down, and a rank that got through leaves without the
    interpreter's teardown: threads of gloo / numba torn down at exit aborted a finished worker ("terminate called
    without an active exception", SIGABRT) in two CI runs, after its results were written. A worker whose body
    raised keeps the exception (mp.spawn reports it)."""
    dist.barrier()
    dist.destroy_process_group()
    if sys.exc_info()[0] is None:
        os._exit(0)


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
        close_group()


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


def scan_inputs(op: str) -> tuple[list[torch.Tensor], list[int | None], dict]:
    """The op's inputs in float64 (every optional one; B per step, C grouped for the selective scan), the dim of
    each that runs along the sequence (None: not split), the keyword arguments."""
    g = torch.Generator().manual_seed(2)
    r = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64)  # noqa: E731
    if op == "selective":
        b, d, n = 2, 4, 3
        args = [r(b, d, LENGTH), r(b, d, LENGTH), -torch.rand(d, n, generator=g, dtype=torch.float64), r(b, n, LENGTH),
                r(b, 2, n, LENGTH), r(d), r(b, d, LENGTH), r(d)]  # fmt: skip
        resets = torch.zeros(b, LENGTH, dtype=torch.bool)
        resets[0, [5, 12]], resets[1, 13] = True, True  # 12: a rank boundary for 2 and 4 ranks
        return args, [2, 2, None, 2, 3, None, 2, None], {"delta_softplus": True, "resets": resets}
    b, h, p, n = 2, 2, 3, 4
    args = [r(b, LENGTH, h, p), r(b, LENGTH, h), -torch.rand(h, generator=g, dtype=torch.float64), r(b, LENGTH, 1, n),
            r(b, LENGTH, 1, n), r(h), r(b, LENGTH, h, p), r(h)]  # fmt: skip
    resets = torch.zeros(b, LENGTH, dtype=torch.bool)
    resets[0, [5, 12]], resets[1, 13] = True, True  # 12: a rank boundary for 2 and 4 ranks
    return args, [1, 1, None, 1, 1, None, 1, None], {"dt_softplus": True, "chunk_size": 4, "resets": resets}


def one_process_scan(op: str, args: list[torch.Tensor], kwargs: dict) -> torch.Tensor:
    if op == "selective":
        return selective_scan(*args, **kwargs)
    x, dt, A, B, C, D, z, bias = args
    return ssd_scan(x, dt, A, B, C, D=D, z=z, dt_bias=bias, **kwargs)


def scan_worker(rank: int, world: int, init_file: str, out_dir: str, op: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        args, dims, kwargs = scan_inputs(op)
        kwargs = {k: shard_sequence(v) if k == "resets" else v for k, v in kwargs.items()}
        args = [
            (a if dim is None else shard_sequence(a, dim=dim)).clone().requires_grad_()
            for a, dim in zip(args, dims, strict=True)
        ]
        if op == "selective":
            y = selective_scan_sequence_parallel(*args, **kwargs)
        else:
            x, dt, A, B, C, D, z, bias = args
            y = ssd_scan_sequence_parallel(x, dt, A, B, C, D=D, z=z, dt_bias=bias, **kwargs)
        weights = shard_sequence(torch.randn(y.shape[:1] + (LENGTH,) + y.shape[2:] if op == "ssd" else
                                             y.shape[:2] + (LENGTH,), generator=torch.Generator().manual_seed(3),
                                             dtype=torch.float64), dim=1 if op == "ssd" else 2)  # fmt: skip
        (y * weights).sum().backward()
        torch.save({"y": y.detach(), "grads": [a.grad for a in args]}, f"{out_dir}/{rank}.pt")
    finally:
        close_group()


@pytest.mark.slow
@pytest.mark.parametrize("world", [2, 4])
@pytest.mark.parametrize("op", ["selective", "ssd"])
def test_gated_scans_on_a_split_sequence_equal_one_process(tmp_path, world, op):
    mp.spawn(scan_worker, (world, str(tmp_path / "init"), str(tmp_path), op), nprocs=world)
    parts = [torch.load(tmp_path / f"{rank}.pt", weights_only=True) for rank in range(world)]
    args, dims, kwargs = scan_inputs(op)
    args = [a.requires_grad_() for a in args]
    y = one_process_scan(op, args, kwargs)
    seq_dim = 1 if op == "ssd" else 2
    weights = torch.randn(y.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    (y * weights).sum().backward()
    torch.testing.assert_close(torch.cat([p["y"] for p in parts], dim=seq_dim), y.detach(), atol=1e-10, rtol=1e-9)
    for i, (arg, dim) in enumerate(zip(args, dims, strict=True)):
        got = [p["grads"][i] for p in parts]
        got = sum(got) if dim is None else torch.cat(got, dim=dim)  # shared inputs: the ranks' shares add up
        torch.testing.assert_close(got, arg.grad, atol=1e-10, rtol=1e-9)


def tiny(mixer: str) -> dict:
    from ssmkit.registry import mixer_class

    return dict(mixer_class(mixer).tiny_kwargs)


def make_backbone(mixer: str):
    """A 2-layer backbone of `mixer`; "mamba+attention": Mamba with attention at layer 1 (a hybrid); "<mixer> resets"
    / "<mixer> lengths": the same read with resets / lengths (see `backbone_inputs`)."""
    from ssmkit.models import SequenceBackbone

    name, _, other = mixer.removesuffix(" resets").removesuffix(" lengths").partition("+")
    hybrid = {other: [1]} if other else {}
    kwargs = {"hybrid": hybrid, "hybrid_kwargs": {other: tiny(other)}} if other else {}
    return SequenceBackbone(d_model=8, n_layers=2, mixer=name, mlp_ratio=2.0, d_input=3, mixer_kwargs=tiny(name),
                            **kwargs).double()  # fmt: skip


def backbone_inputs(mixer: str) -> dict[str, torch.Tensor]:
    """For "<mixer> resets": resets (2, LENGTH), one at the rank boundary 12 and one just after it (inside the conv
    window of a boundary read from the previous rank). For "<mixer> lengths": lengths (2,) of the whole sequence,
    one ending before the boundary (rank 1 holds only padding) and one after it."""
    if mixer.endswith(" lengths"):
        return {"lengths": torch.tensor([7, 17])}
    if not mixer.endswith(" resets"):
        return {}
    resets = torch.zeros(2, LENGTH, dtype=torch.bool)
    resets[0, [3, 12]], resets[1, 14] = True, True
    return {"resets": resets}


def backbone_worker(rank: int, world: int, init_file: str, out_dir: str, mixer: str) -> None:
    from ssmkit.ops.sequence_parallel import sequence_parallel

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        backbone = make_backbone(mixer)
        x = torch.randn(2, LENGTH, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        try:
            shard_sequence(x[:, 1:])  # 23 positions do not split over 2 ranks
        except ValueError as exc:
            uneven = str(exc)
        try:
            given = backbone_inputs(mixer)
            if "resets" in given:
                given["resets"] = shard_sequence(given["resets"])
            with sequence_parallel():
                h = backbone(shard_sequence(x), **given)  # lengths count the whole sequence
        except ValueError as exc:
            torch.save({"error": str(exc)}, f"{out_dir}/{rank}.pt")
            return
        h.square().sum().backward()
        grads = [p.grad for p in backbone.parameters()]
        for grad in grads:  # each rank holds its chunk's share of the parameter gradients
            dist.all_reduce(grad)
        torch.save({"h": h.detach(), "grads": grads, "uneven": uneven}, f"{out_dir}/{rank}.pt")
    finally:
        close_group()


@pytest.mark.slow
@pytest.mark.parametrize(
    "mixer",
    [
        "s5",
        "lru",
        "mamba",
        "mamba2",
        "attention",
        "mamba+attention",
        "hydra",
        "mom",
        "s5 resets",
        "mamba resets",
        "mamba2 resets",
        "s5 lengths",
        "mamba lengths",
        "mamba+attention lengths",
    ],  # fmt: skip
)
def test_a_backbone_on_a_split_sequence_equals_one_process(tmp_path, mixer):
    mp.spawn(backbone_worker, (2, str(tmp_path / "init"), str(tmp_path), mixer), nprocs=2)
    parts = [torch.load(tmp_path / f"{rank}.pt", weights_only=True) for rank in range(2)]
    torch.manual_seed(0)
    backbone = make_backbone(mixer)
    x = torch.randn(2, LENGTH, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    h = backbone(x, **backbone_inputs(mixer))
    h.square().sum().backward()
    torch.testing.assert_close(torch.cat([p["h"] for p in parts], dim=1), h.detach(), atol=1e-10, rtol=1e-9)
    for got, p in zip(parts[0]["grads"], backbone.parameters(), strict=True):
        torch.testing.assert_close(got, p.grad, atol=1e-10, rtol=1e-9)
    assert "23 positions does not split evenly over 2 ranks: pad it to a multiple of 2" in parts[0]["uneven"]


@pytest.mark.slow
def test_a_mixer_without_state_passing_refuses_a_split_sequence(tmp_path):
    mp.spawn(backbone_worker, (2, str(tmp_path / "init"), str(tmp_path), "hyena"), nprocs=2)
    error = torch.load(tmp_path / "0.pt", weights_only=True)["error"]
    assert "Hyena cannot read a sequence split across ranks" in error and "mamba2" in error


def test_a_split_needs_a_process_group():
    from ssmkit.ops.sequence_parallel import sequence_parallel

    with pytest.raises(RuntimeError, match="needs an initialised process group"):
        with sequence_parallel():
            pass
