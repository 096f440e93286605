"""A HyenaDNA forward pass at a million tokens: peak memory and time (batch 1, inference mode).

    python -m ssmkit_genomics.long_forward [--length 1048576] [--autocast bf16 | --dtype bfloat16] [--out runs/bench]

The model is the pretrain config's (`configs/pretrain.yaml`: 2 order-2 Hyena layers, d_model 128, gated MLP
ratio 2, LM head) with `max_length = length`, on random bases. Measured: wall and process CPU seconds of one
forward under `torch.inference_mode()`, and its peak memory, the process's peak resident memory during the
forward (Linux `VmHWM`, reset through `/proc/self/clear_refs` just before) minus its resident memory before
it, and whether every logit is finite (`--autocast bf16`: the forward under CPU bfloat16 autocast; `--dtype
bfloat16`: weights and activations in bfloat16, Hyena's FFTs still in float32, which halves the residual stream and
its norm, the two (L, d_model) buffers that dominate at 16M tokens). Writes `long_forward.json` to `--out`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from ssmkit.models.backbone import BackboneConfig
from ssmkit.plugins import resource_path
from ssmkit_genomics.tasks import GenomicsLM
from ssmkit_genomics.tokenizer import A, T

PRETRAIN_CONFIG = "ssmkit_genomics:configs/pretrain.yaml"


def build_model(length: int, **backbone_changes: Any) -> GenomicsLM:
    """The pretrain config's model with `max_length = length` (and backbone settings changed, e.g. d_model)."""
    model_args = yaml.safe_load(resource_path(PRETRAIN_CONFIG).read_text())["model"]
    backbone = BackboneConfig.of(model_args.pop("backbone"), **backbone_changes)
    return GenomicsLM(**{**model_args, "max_length": length, "backbone": backbone}).eval()


def measure(
    length: int, seed: int = 0, autocast: str | None = None, dtype: str = "float32", **backbone_changes: Any
) -> dict[str, Any]:
    """One forward of (1, length) random bases (under `autocast` "bf16" if given, with the model in `dtype`);
    seconds (wall, CPU), peak extra MiB, the output shape and whether it is finite."""
    torch.manual_seed(seed)
    model = build_model(length, **backbone_changes).to(getattr(torch, dtype))
    tokens = torch.randint(A, T + 1, (1, length))
    before_kib = _reset_peak_rss()
    wall, cpu = time.perf_counter(), time.process_time()
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=autocast == "bf16"):
        logits = model(tokens)  # (1, length, vocab)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak_kib = _status_kib("VmHWM")
    return {
        "length": length,
        "autocast": autocast,
        "dtype": dtype,
        "d_model": model.backbone.config.d_model,
        "n_layers": model.backbone.config.n_layers,
        "parameters": sum(p.numel() for p in model.parameters()),
        "threads": torch.get_num_threads(),
        "wall_s": wall,
        "cpu_s": cpu,
        "tokens_per_s": length / wall,
        "peak_extra_mib": None if before_kib is None else (peak_kib - before_kib) / 1024,
        "peak_rss_mib": peak_kib / 1024,
        "logits_shape": list(logits.shape),
        "finite": bool(torch.isfinite(logits).all()),
    }


def _reset_peak_rss() -> int | None:
    """Resets the peak resident memory to the current one and returns it (KiB); None where not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return None
    return _status_kib("VmRSS")


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status (Linux only)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=1 << 20, help="tokens in the sequence (default 1,048,576)")
    parser.add_argument("--autocast", choices=["bf16"], help="run the forward under CPU bfloat16 autocast")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32", help="the model's dtype")
    parser.add_argument("--out", type=Path, default=Path("runs/bench"))
    args = parser.parse_args(argv)
    result = measure(args.length, autocast=args.autocast, dtype=args.dtype)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "long_forward.json").write_text(json.dumps(result, indent=2))
    peak = "n/a" if result["peak_extra_mib"] is None else f"{result['peak_extra_mib']:,.0f} MiB"
    print(
        f"HyenaDNA forward{' (bf16 autocast)' if args.autocast else ''} in {args.dtype}, batch 1, "
        f"{result['length']:,} tokens, "
        f"d_model {result['d_model']}, "
        f"{result['n_layers']} layers: {result['wall_s']:.1f} s wall, {result['cpu_s']:.1f} s CPU, "
        f"{result['tokens_per_s']:,.0f} tokens/s, peak extra memory {peak} "
        f"(peak RSS {result['peak_rss_mib']:,.0f} MiB), logits finite: {result['finite']}"
    )
    return 0 if result["finite"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
