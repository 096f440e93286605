"""Resolution scaling of Vim against a ViT (the Vision Mamba paper's efficiency point): throughput and peak memory
of one training step (forward + backward) at growing image sizes with patch 4, so the token count grows as
(size / 4)^2. The paper's claim: Vim's cost grows linearly in the tokens, attention's memory quadratically (with
an explicit L x L attention matrix; PyTorch's fused `scaled_dot_product_attention` never holds one, so measure).

    python apps/bench/vision_scaling.py [--quick] [--device cpu|cuda] [--out runs/bench]

Models: `vim_test_patch4_28` and `vit_matched_test_patch4_28` (D = 64, about the same parameter count), built at
each size. Peak memory: on CPU the process's peak resident memory during the step minus before it (the bench
suite's measure), on CUDA `torch.cuda.max_memory_allocated` minus the memory allocated before the step.
Writes vision_scaling.{json,md,png} to the output folder.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import timm
import torch

import ssmkit_vision.models  # noqa: F401  (registers the models in timm)
from ssmkit.bench.measure import peak_extra_mb  # the suite's CPU peak-memory measure
from ssmkit.bench.scaling import loglog_panels
from ssmkit.train.plots import markdown_table

MODELS = {"Vim": "vim_test_patch4_28", "ViT": "vit_matched_test_patch4_28"}


def measure(name: str, size: int, batch: int, device: str, repeats: int) -> dict:
    model = timm.create_model(name, img_size=size).to(device)
    images = torch.randn(batch, 1, size, size, device=device)

    def step() -> torch.Tensor:
        model.zero_grad(set_to_none=True)
        return model(images)

    step().sum().backward()  # warm-up (and numba's cached kernels loaded)
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        step().sum().backward()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return {
        "model": name,
        "size": size,
        "tokens": (size // 4) ** 2 + 1,
        "batch": batch,
        "step_s": best,
        "images_per_s": batch / best,
        "peak_mb": _peak_mb(step, device),
    }


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _peak_mb(step, device: str) -> float | None:
    if device != "cuda":
        return peak_extra_mb(step)
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step().sum().backward()
    return (torch.cuda.max_memory_allocated() - before) / 2**20


def markdown(rows: list[dict], meta: dict) -> str:
    intro = (
        f"Vision resolution scaling on {meta['device']} ({meta['machine']}, {meta['threads']} threads): one training "
        "step (forward + backward), patch 4, best of the repeats."
    )
    header = ["model", "size", "tokens", "batch", "step (s)", "images/s", "peak memory (MiB)"]
    table = [
        [
            r["label"],
            r["size"],
            r["tokens"],
            r["batch"],
            f"{r['step_s']:.4f}",
            f"{r['images_per_s']:.1f}",
            "n/a" if r["peak_mb"] is None else f"{r['peak_mb']:.1f}",
        ]  # fmt: skip
        for r in rows
    ]
    return intro + "\n\n" + markdown_table(header, table, align="lrrrrrr") + "\n"


def plot(rows: list[dict], out: Path) -> None:
    series = {
        label: [(r["tokens"], r["images_per_s"], r["peak_mb"]) for r in rows if r["label"] == label] for label in MODELS
    }
    labels = ("training images / s", "peak memory of a step (MiB)")
    loglog_panels(series, "tokens per image (patch 4)", labels, "Vim vs ViT: resolution scaling (28 .. 224 px)", out)


def main(quick: bool = False, device: str = "cpu", out_dir: Path = Path("runs/bench")) -> int:
    sizes = [28, 56] if quick else [28, 56, 112, 224]
    batch, repeats = (2, 1) if quick else (8, 2)
    rows = []
    for size in sizes:
        for label, name in MODELS.items():
            row = {"label": label, **measure(name, size, batch, device, repeats)}
            print(f"{label:4s} {size:4d} px  {row['step_s']:.4f} s/step  peak {row['peak_mb']} MiB", flush=True)
            rows.append(row)
    meta = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "CPU",
        "machine": platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "quick": quick,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vision_scaling.json").write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    (out_dir / "vision_scaling.md").write_text(markdown(rows, meta))
    plot(rows, out_dir / "vision_scaling.png")
    print(markdown(rows, meta))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="28 and 56 px only, batch 2 (seconds)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--out", type=Path, default=Path("runs/bench"))
    args = parser.parse_args()
    raise SystemExit(main(args.quick, args.device, args.out))
