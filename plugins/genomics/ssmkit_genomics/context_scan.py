"""Bits per base against context length on the synthetic genome with long repeats.

    python -m ssmkit_genomics.context_scan [--contexts 1024 8192 32768] [--steps 24] [--out runs/genomics_scan]

One synthetic genome (`ssmkit_genomics.synthetic`, written to `<out>/synthetic_genome.fa`) whose repeats copy a
segment from `repeat_gap` bases back. The same model (`genomics.pretrain`, `--d_model`, `--n_layers`) is trained
at each context length on the same token budget: `steps` steps of `tokens_per_step` tokens (batch
`tokens_per_step / context`), then evaluated on the same held-out tail of the genome (the last `eval_tokens`
bases, never trained on) tiled into windows of its context: bits per base over all bases, over the bases inside
a repeat copy, and over the rest. Writes `context_scan.csv`, `context_scan.md` and `context_scan.png`; each
training is an ordinary run under `<out>/genomics/pretrain/`.
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from Bio import SeqIO
from Bio.Seq import Seq
from Bio.SeqRecord import SeqRecord

from ssmkit.train.cli import run_task
from ssmkit_genomics.plots import plot_context_scan
from ssmkit_genomics.synthetic import SyntheticGenome, synthetic_genome
from ssmkit_genomics.tasks import GenomicsLM

Tensor = torch.Tensor


@dataclass(frozen=True)
class ScanSettings:
    """Every model: `steps` steps of `tokens_per_step` tokens; evaluated on the genome's last `eval_tokens` bases."""

    contexts: tuple[int, ...]
    steps: int
    tokens_per_step: int
    eval_tokens: int
    model: dict[str, Any] = field(default_factory=dict)  # genomics.pretrain model arguments (d_model, lr, ...)


def scan(out: Path, genome: SyntheticGenome, settings: ScanSettings) -> list[dict[str, Any]]:
    """Train and evaluate one model per context; returns one row per context (also written as CSV)."""
    if settings.tokens_per_step % max(settings.contexts):
        raise ValueError(
            f"tokens_per_step={settings.tokens_per_step} must be a multiple of every context, got {settings.contexts}"
        )
    if not max(settings.contexts) <= settings.eval_tokens < len(genome.sequence) // 2:
        raise ValueError(f"eval_tokens={settings.eval_tokens} must lie in [the longest context, half the genome)")
    fasta = out / "synthetic_genome.fa"
    SeqIO.write([SeqRecord(Seq(genome.sequence), id="synthetic_genome", description="")], fasta, "fasta")
    rows = [_train_and_evaluate(out, fasta, genome, context, settings) for context in settings.contexts]
    _write(rows, out, genome.entropy_rate)
    return rows


def _train_and_evaluate(
    out: Path, fasta: Path, genome: SyntheticGenome, context: int, settings: ScanSettings
) -> dict[str, Any]:
    batch, steps = settings.tokens_per_step // context, settings.steps
    args = {
        "data.root": fasta,
        "data.context_length": context,
        "data.batch_size": batch,
        "data.train_windows": steps * batch,
        "data.val_fraction": (settings.eval_tokens + 1.5) / len(genome.sequence),  # the data module floors it
        "model.max_length": context,
        "trainer.max_steps": steps,
        "trainer.max_epochs": 1,
        "trainer.limit_val_batches": 0,
        "trainer.num_sanity_val_steps": 0,
        **{f"model.{k}": v for k, v in settings.model.items()},
    }
    print(f"\n=== context scan: {context} bases, batch {batch}, {steps} steps ===", flush=True)
    wall, cpu = time.perf_counter(), time.process_time()
    cli = run_task("fit", "genomics.pretrain", [x for k, v in args.items() for x in (f"--{k}", str(v))], runs_dir=out)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    held_out = cli.datamodule.val_tokens  # the genome's last bases, as token ids
    bits = window_bits(cli.model, held_out, context)  # (n,) for held-out positions 1..n
    copied = genome.copied[-len(held_out) :][1 : len(bits) + 1]
    return {
        "context": context,
        "batch": batch,
        "steps": steps,
        "train_tokens": steps * settings.tokens_per_step,
        "eval_tokens": len(bits),
        "bpb": float(bits.mean()),
        "bpb_repeats": float(bits[copied].mean()) if copied.any() else float("nan"),
        "bpb_background": float(bits[~copied].mean()),
        "repeat_fraction": float(copied.mean()),
        "wall_s": wall,
        "cpu_s": cpu,
        "run": cli.trainer.logger.log_dir,
    }


def window_bits(model: GenomicsLM, tokens: Tensor, context: int) -> np.ndarray:
    """tokens (N,) -> bits (n,) of predicting tokens[1..n] from non-overlapping windows of `context` tokens."""
    model.eval()
    n_windows = (len(tokens) - 1) // context
    bits = []
    with torch.inference_mode():
        for i in range(n_windows):
            window = tokens[i * context : (i + 1) * context + 1]
            logits = model(window[None, :-1])[0]  # (context, V)
            bits.append(F.cross_entropy(logits, window[1:], reduction="none") / math.log(2))
    return torch.cat(bits).numpy()


def _write(rows: list[dict[str, Any]], out: Path, entropy_rate: float) -> None:
    with open(out / "context_scan.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "context_scan.md").write_text(markdown(rows, entropy_rate) + "\n")
    plot_context_scan(rows, entropy_rate, out / "context_scan.png")


def markdown(rows: list[dict[str, Any]], entropy_rate: float) -> str:
    lines = [
        f"Bits per base on the held-out tail (background entropy rate H* = {entropy_rate:.3f} bits per base).",
        "",
        "| context | batch | steps | train tokens | bpb | bpb in repeats | bpb elsewhere | wall (s) | CPU (s) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r['context']:,} | {r['batch']} | {r['steps']} | {r['train_tokens']:,} | {r['bpb']:.4f} | "
        f"{r['bpb_repeats']:.4f} | {r['bpb_background']:.4f} | {r['wall_s']:.0f} | {r['cpu_s']:.0f} |"
        for r in rows
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, nargs="+", default=[1024, 8192, 32768])
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--tokens_per_step", type=int, default=32768)
    parser.add_argument("--eval_tokens", type=int, default=131072, help="held-out bases evaluated (all contexts)")
    parser.add_argument("--genome_length", type=int, default=2_000_000)
    parser.add_argument("--repeat_gap", type=int, nargs=2, default=[300, 24000], help="min and max repeat distance")
    parser.add_argument("--repeat_rate", type=float, default=2.0, help="repeat copies per kilobase")
    parser.add_argument("--repeat_len", type=int, default=128)
    parser.add_argument("--d_model", type=int, default=64)
    parser.add_argument("--n_layers", type=int, default=2)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--warmup_steps", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/genomics_scan"))
    args = parser.parse_args(argv)
    genome = synthetic_genome(
        args.genome_length,
        repeat_len=args.repeat_len,
        repeat_gap=tuple(args.repeat_gap),
        repeat_rate=args.repeat_rate,
        seed=args.seed,
    )
    model = {"d_model": args.d_model, "n_layers": args.n_layers, "lr": args.lr, "warmup_steps": args.warmup_steps}
    settings = ScanSettings(tuple(args.contexts), args.steps, args.tokens_per_step, args.eval_tokens, model)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = scan(args.out, genome, settings)
    print(markdown(rows, genome.entropy_rate))
    print(f"\nplot: {args.out / 'context_scan.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
