"""Bits per base against context length on the synthetic genome with long repeats.

    python -m ssmkit_genomics.context_scan [--contexts 1024 8192 32768] [--steps 24] [--out runs/genomics_scan]

One synthetic genome (`ssmkit_genomics.synthetic`, written to `<out>/synthetic_genome.fa`): by default tandem
arrays with 3,000- and 12,000-base units (each copy predictable from the unit one period back: within reach of
an 8k context for the first, only of a 32k context for the second), optionally dispersed repeats copied from a
random distance (`--repeat_rate`); 16M bases by default, so that the README's budget (1,500 steps, 49M tokens)
is three passes: over 2M bases (25 passes) the 32k model's explicit filters, one weight per tap, memorised the
training genome and lost to the 8k model on held-out bases. The same model (`genomics.pretrain`, `--mixer`,
`--mixer_kwargs`, `--d_model`, `--n_layers`) is trained at each context length on the same token budget:
`steps` steps of `tokens_per_step` tokens (batch `tokens_per_step / context`), then evaluated on the same
held-out tail of the genome (the last `eval_tokens` bases, never trained on) tiled into windows of its context:
bits per base over all bases, over the bases outside any copy, and over the copies grouped by how far back
their source is (the bins the context lengths cut). Writes `context_scan.csv`, `context_scan.md` and
`context_scan.png`; each training is an ordinary run under `<out>/genomics/pretrain/`.

Every model trains with HyenaDNA's sequence-length warm-up (windows cut into pieces of 1,024, 2,048, ... tokens
over the first 40% of the steps; a model whose context is 1,024 has none): without it the 32k model copied where
there was nothing to copy and lost to the 8k model on one of two genomes.

The default mixer is Hyena with explicit filters: a copy one period back needs a sharp tap at that lag, which
the implicit (smooth, positional-FFN) filters of HyenaDNA do not learn at this budget (`--mixer_kwargs '{}'`
for them; dispersed repeats at random distances need a content lookup that no convolution provides).
"""

from __future__ import annotations

import argparse
import csv
import json
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
from ssmkit.train.plots import markdown_table
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
    model: dict[str, Any] = field(default_factory=dict)  # genomics.pretrain model arguments (backbone.d_model, lr, ...)


def scan(out: Path, genome: SyntheticGenome, settings: ScanSettings) -> list[dict[str, Any]]:
    """Train one model per context, evaluate each with windows of its own context and of every shorter one;
    returns one row per (model, evaluation window), also written as CSV."""
    if settings.tokens_per_step % max(settings.contexts):
        raise ValueError(
            f"tokens_per_step={settings.tokens_per_step} must be a multiple of every context, got {settings.contexts}"
        )
    if not max(settings.contexts) <= settings.eval_tokens < len(genome.sequence) // 2:
        raise ValueError(f"eval_tokens={settings.eval_tokens} must lie in [the longest context, half the genome)")
    fasta = out / "synthetic_genome.fa"
    SeqIO.write([SeqRecord(Seq(genome.sequence), id="synthetic_genome", description="")], fasta, "fasta")
    rows = [row for context in settings.contexts for row in _train_and_evaluate(out, fasta, genome, context, settings)]
    _write(rows, out, genome.entropy_rate)
    return rows


def _train_and_evaluate(
    out: Path, fasta: Path, genome: SyntheticGenome, context: int, settings: ScanSettings
) -> list[dict[str, Any]]:
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
    rows = []
    for window in [c for c in settings.contexts if c <= context]:
        bits = window_bits(cli.model, held_out, window)  # (n,) for held-out positions 1..n
        distance = genome.copy_distance[-len(held_out) :][1 : len(bits) + 1]
        rows.append(
            {
                "context": context,
                "eval_window": window,
                "batch": batch,
                "steps": steps,
                "train_tokens": steps * settings.tokens_per_step,
                "eval_tokens": len(bits),
                "bpb": float(bits.mean()),
                **bits_by_copy_distance(bits, distance, settings.contexts),
                "wall_s": wall,
                "cpu_s": cpu,
                "run": cli.trainer.logger.log_dir,
            }
        )
    return rows


def distance_groups(contexts: tuple[int, ...]) -> dict[str, tuple[int, float]]:
    """Name -> (lo, hi]: bases outside copies ('no_copy': distance 0) and copies whose source is lo < d <= hi
    bases back, cut at the context lengths."""
    edges = [0, *sorted(contexts), math.inf]
    groups = {"no_copy": (-1, 0)}
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        groups[f"copies_{lo}_{hi}" if hi != math.inf else f"copies_over_{lo}"] = (lo, hi)
    return groups


def bits_by_copy_distance(bits: np.ndarray, distance: np.ndarray, contexts: tuple[int, ...]) -> dict[str, float]:
    """bits, distance: (n,) -> for each group of `distance_groups`, `share_<g>` (of the bases) and `bpb_<g>`
    (NaN for an empty group)."""
    out = {}
    for name, (lo, hi) in distance_groups(contexts).items():
        inside = (distance > lo) & (distance <= hi)
        out[f"share_{name}"] = float(inside.mean())
        out[f"bpb_{name}"] = float(bits[inside].mean()) if inside.any() else float("nan")
    return out


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
    own, longest, groups = _own_windows(rows), _longest_model(rows), _shown_groups(rows)
    contexts = [r["context"] for r in own]
    series = {"all bases": [r["bpb"] for r in own]}
    for g, label in groups.items():
        series[f"{label} ({100 * rows[0]['share_' + g]:.0f}%)"] = [r["bpb_" + g] for r in own]
    dashed = ()
    if len(longest) > 1:
        dashed = (f"all bases, the {longest[-1]['context']:,} model on windows of that length",)
        series[dashed[0]] = [next(r["bpb"] for r in longest if r["eval_window"] == c) for c in contexts]
    title = f"one model per context, same token budget ({rows[0]['train_tokens']:,} tokens each)"
    plot_context_scan(contexts, series, entropy_rate, out / "context_scan.png", title, dashed)


def _own_windows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each model evaluated on windows of the context it was trained at."""
    return [r for r in rows if r["eval_window"] == r["context"]]


def _longest_model(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The longest-context model on every evaluation window, shortest first."""
    longest = max(r["context"] for r in rows)
    return [r for r in rows if r["context"] == longest]


def _shown_groups(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Name -> label of the groups of bases present in the held-out tail."""
    groups = distance_groups(tuple(sorted({r["context"] for r in rows})))
    return {name: group_label(*bounds) for name, bounds in groups.items() if rows[0][f"share_{name}"] > 0}


def group_label(lo: int, hi: float) -> str:
    """(1024, 8192) -> 'copies 1,024-8,192 back'; (-1, 0) -> 'no copy'; (32768, inf) -> 'copies > 32,768 back'."""
    if hi == 0:
        return "no copy"
    return f"copies > {lo:,} back" if hi == math.inf else f"copies {lo:,}-{int(hi):,} back"


def markdown(rows: list[dict[str, Any]], entropy_rate: float) -> str:
    """The scan's tables (each model on its own context; the longest model on shorter windows); bpb per
    group of bases, each group's share of the held-out bases in its header."""
    groups = _shown_groups(rows)
    heads = [f"bpb {label} ({100 * rows[0]['share_' + g]:.0f}%)" for g, label in groups.items()]

    def bpb(r: dict[str, Any]) -> list[str]:
        return [f"**{r['bpb']:.4f}**", *(f"{r['bpb_' + g]:.4f}" for g in groups)]

    own = [
        [
            f"{r['context']:,}",
            r["batch"],
            r["steps"],
            f"{r['train_tokens']:,}",
            *bpb(r),
            f"{r['wall_s']:.0f}",
            f"{r['cpu_s']:.0f}",
        ]
        for r in _own_windows(rows)
    ]
    lines = [
        f"Bits per base on the held-out tail (background entropy rate H* = {entropy_rate:.3f} bits per base).",
        "",
        markdown_table(["context", "batch", "steps", "train tokens", "bpb", *heads, "wall (s)", "CPU (s)"], own),
    ]
    longest = _longest_model(rows)
    if len(longest) > 1:
        lines += ["", f"The {longest[-1]['context']:,}-context model evaluated on windows of each length:", ""]
        lines.append(markdown_table(["window", "bpb", *heads], [[f"{r['eval_window']:,}", *bpb(r)] for r in longest]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, nargs="+", default=[1024, 8192, 32768])
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--tokens_per_step", type=int, default=32768)
    parser.add_argument("--eval_tokens", type=int, default=262144, help="held-out bases evaluated (all contexts)")
    parser.add_argument("--genome_length", type=int, default=16_000_000, help="bases (see the docstring)")
    parser.add_argument("--tandem_periods", type=int, nargs="*", default=[3000, 12000], help="array unit lengths")
    parser.add_argument("--tandem_rate", type=float, default=0.1, help="tandem arrays per kilobase")
    parser.add_argument("--tandem_copies", type=int, nargs=2, default=[3, 4], help="min and max units per array")
    parser.add_argument("--tandem_mutation", type=float, default=0.01, help="substitutions per base per copy")
    parser.add_argument("--repeat_gap", type=int, nargs=2, default=[300, 24000], help="min and max repeat distance")
    parser.add_argument("--repeat_rate", type=float, default=0.0, help="dispersed repeat copies per kilobase")
    parser.add_argument("--repeat_len", type=int, default=128)
    parser.add_argument("--mixer", default="hyena")
    parser.add_argument("--mixer_kwargs", type=json.loads, default={"filter": "explicit"}, help="JSON")
    parser.add_argument("--d_model", type=int, default=64)
    parser.add_argument("--n_layers", type=int, default=2)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--warmup_steps", type=int, default=4)
    parser.add_argument("--length_warmup_start", type=int, default=1024, help="sequence-length warm-up (0: off)")
    parser.add_argument("--length_warmup_fraction", type=float, default=0.4, help="of the steps, in warm-up")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/genomics_scan"))
    args = parser.parse_args(argv)
    genome = synthetic_genome(
        args.genome_length,
        repeat_len=args.repeat_len,
        repeat_gap=tuple(args.repeat_gap),
        repeat_rate=args.repeat_rate,
        tandem_periods=tuple(args.tandem_periods),
        tandem_rate=args.tandem_rate,
        tandem_copies=tuple(args.tandem_copies),
        tandem_mutation=args.tandem_mutation,
        seed=args.seed,
    )
    model = {
        "backbone.mixer": args.mixer,
        "backbone.mixer_kwargs": json.dumps(args.mixer_kwargs),
        "backbone.d_model": args.d_model,
        "backbone.n_layers": args.n_layers,
        "lr": args.lr,
        "warmup_steps": args.warmup_steps,
        "length_warmup_start": args.length_warmup_start,
        "length_warmup_steps": int(args.length_warmup_fraction * args.steps),
    }
    settings = ScanSettings(tuple(args.contexts), args.steps, args.tokens_per_step, args.eval_tokens, model)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = scan(args.out, genome, settings)
    print(markdown(rows, genome.entropy_rate))
    print(f"\nplot: {args.out / 'context_scan.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
