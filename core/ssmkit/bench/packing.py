"""Packed beside padded batches of mixed lengths: the same sequences as one packed row (`cu_seqlens`) and as a
padded batch (`lengths`), forward + backward through one mixer, tokens/s counted over the real tokens only.

A resettable mixer (`takes_resets`: S5, LRU, Mamba, Mamba-2) reads the packed row in one pass and skips the padding's
work; the other mixers run a packed row as a padded batch inside (`ssmkit.layers.packing`), so for them the two times
should match.
"""

from __future__ import annotations

import torch

from ssmkit.bench.measure import best_time
from ssmkit.registry import create_mixer, mixer_class
from ssmkit.train.plots import markdown_table

MIXERS = ("s5", "lru", "mamba", "mamba2", "attention")


def mixed_lengths(n: int, shortest: int, longest: int) -> torch.Tensor:
    """n lengths spread log-uniformly over [shortest, longest] (seeded): a few long sequences, many short."""
    g = torch.Generator().manual_seed(0)
    logs = torch.empty(n).uniform_(float(torch.tensor(shortest).log()), float(torch.tensor(longest).log()), generator=g)
    return logs.exp().round().long().clamp(shortest, longest)


def measure(name: str, lengths: torch.Tensor, d_model: int, repeats: int) -> dict[str, float | int | str]:
    torch.manual_seed(0)
    mixer = create_mixer(name, d_model, **mixer_class(name).tiny_kwargs)
    total = int(lengths.sum())
    packed_x = torch.randn(1, total, d_model, requires_grad=True)
    cu_seqlens = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
    padded_x = torch.randn(len(lengths), int(lengths.max()), d_model, requires_grad=True)
    padded_s = best_time(lambda: mixer(padded_x, lengths=lengths), backward=True, repeats=repeats)
    packed_s = best_time(lambda: mixer(packed_x, cu_seqlens=cu_seqlens), backward=True, repeats=repeats)
    return {
        "mixer": name,
        "sequences": len(lengths),
        "tokens": total,
        "padded_tokens": len(lengths) * int(lengths.max()),
        "padded_tokens_per_s": total / padded_s,
        "packed_tokens_per_s": total / packed_s,
        "speedup": padded_s / packed_s,
    }


def run(quick: bool) -> list[dict[str, float | int | str]]:
    lengths = mixed_lengths(8, 8, 64) if quick else mixed_lengths(32, 16, 2048)
    rows = [measure(name, lengths, 16 if quick else 64, 1 if quick else 3) for name in MIXERS]
    for r in rows:
        print(f"packing {r['mixer']:10} padded {r['padded_tokens_per_s']:10.0f} tok/s   packed "
              f"{r['packed_tokens_per_s']:10.0f} tok/s   x{r['speedup']:.2f}", flush=True)  # fmt: skip
    return rows


def markdown(rows: list[dict[str, float | int | str]]) -> str:
    first = rows[0]
    intro = (
        f"Packed vs padded, forward + backward: {first['sequences']} sequences of mixed lengths, {first['tokens']:,} "
        f"real tokens ({first['padded_tokens']:,} with padding); tokens/s over the real tokens."
    )
    header = ["mixer", "padded tokens/s", "packed tokens/s", "packed / padded"]
    cells = [
        [r["mixer"], f"{r['padded_tokens_per_s']:,.0f}", f"{r['packed_tokens_per_s']:,.0f}", f"{r['speedup']:.2f}x"]
        for r in rows
    ]
    return "\n".join(["## Packed batches", "", intro, "", markdown_table(header, cells)])
