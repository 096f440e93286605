"""Training throughput against the sequence length: tokens/s of a whole training step (forward, backward, AdamW) of a
4-layer d_model 256 language model, for each SSM family beside the attention Transformer, the batch filling about
`TOKENS` tokens (batch = TOKENS // L, at least 1).

Models: every mixer in `MIXERS` with its registry defaults (`l_max` = L where a family takes one), a gated MLP of ratio
2 in every block (the attention model's too), vocabulary 256, float32. At each length the models are timed in
interleaved rounds (one step each per round, after one untimed step; best of the rounds), so a busy moment of a
shared machine hits them alike; a model whose step is predicted over `MAX_CALL_S` from its shorter lengths is
skipped and says so. The ratio column reads each model's tokens/s over attention's at the same length.

    python -m ssmkit.bench.training [--quick] [--lengths 256 1024 ...] [--mixers mamba s4d ...]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch

from ssmkit.bench.measure import MAX_CALL_S, best_time, predicted_s
from ssmkit.models.lm import LanguageModel
from ssmkit.registry import with_l_max
from ssmkit.train.plots import markdown_table

MIXERS = ("mamba", "mamba2", "s5", "lru", "hyena", "s4d", "attention")
LENGTHS = (256, 1024, 4096, 16384, 65536)
TOKENS = 16384
D_MODEL, N_LAYERS, VOCAB = 256, 4, 256


def training_step(name: str, length: int, batch: int) -> Callable[[], torch.Tensor]:
    """One AdamW step of the model of `name` on a (batch, length) random token batch, as a call that returns the
    loss."""
    torch.manual_seed(0)
    kwargs = with_l_max(name, {}, length)
    model = LanguageModel(VOCAB, D_MODEL, N_LAYERS, mixer=name, mixer_kwargs=kwargs, mlp_ratio=2.0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    tokens = torch.randint(0, VOCAB, (batch, length + 1))

    def step() -> torch.Tensor:
        logits = model(tokens[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    return step


def run(quick: bool, lengths: tuple[int, ...] = LENGTHS, mixers: tuple[str, ...] = MIXERS) -> list[dict]:
    lengths, tokens = ((32, 64), 128) if quick else (lengths, TOKENS)
    measured: dict[str, list[tuple[int, float]]] = {name: [] for name in mixers}
    rows = []
    for length in lengths:
        batch = max(1, tokens // length)  # `measured` holds seconds per sequence: the step over its batch
        skipped = {n for n in mixers if measured[n] and batch * predicted_s(measured[n], length) > MAX_CALL_S}
        calls = {n: training_step(n, length, batch) for n in mixers if n not in skipped}
        times = _interleaved(calls, repeats=1 if quick else 2)
        for name in mixers:
            row = {"mixer": name, "L": length, "batch": batch}
            if name in skipped:
                row["skipped"] = f"predicted > {MAX_CALL_S:.0f} s per step"
            else:
                seconds = times[name]
                measured[name].append((length, seconds / batch))
                row |= {"step_s": seconds, "tokens_per_s": batch * length / seconds}
            rows.append(row)
            _print(row)
    return rows


def _interleaved(calls: dict[str, Callable[[], torch.Tensor]], repeats: int) -> dict[str, float]:
    """Each call's best time over `repeats` rounds of one call each, after one untimed call (first-call costs)."""
    for call in calls.values():
        call()
    best = {name: float("inf") for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            best[name] = min(best[name], best_time(call, backward=False, repeats=1))
    return best


def _print(row: dict) -> None:
    speed = row.get("skipped") or f"{row['step_s']:7.3f} s/step  {row['tokens_per_s']:10,.0f} tokens/s"
    print(f"training {row['mixer']:10} L={row['L']:6} batch {row['batch']:3}  {speed}", flush=True)


def markdown(rows: list[dict]) -> str:
    lengths = sorted({r["L"] for r in rows})
    by = {(r["mixer"], r["L"]): r for r in rows}
    mixers = list(dict.fromkeys(r["mixer"] for r in rows))

    def cell(name: str, length: int) -> str:
        r, ref = by[name, length], by.get(("attention", length), {})
        if "skipped" in r:
            return "skipped"
        ratio = f" ({r['tokens_per_s'] / ref['tokens_per_s']:.2f}x)" if "tokens_per_s" in ref else ""
        return f"{r['tokens_per_s']:,.0f}{ratio}"

    header = ["mixer", *(f"L={length} (batch {by[mixers[0], length]['batch']})" for length in lengths)]
    tokens = max(r["batch"] * r["L"] for r in rows)
    intro = (
        f"Training throughput, tokens/s of a whole step (forward, backward, AdamW), {N_LAYERS}-layer d_model {D_MODEL} "
        f"LM with gated MLPs, about {tokens:,} tokens per batch; in brackets the ratio to attention at that length."
    )
    return intro + "\n\n" + markdown_table(header, [[m, *(cell(m, n) for n in lengths)] for m in mixers]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--lengths", type=int, nargs="+", default=list(LENGTHS))
    parser.add_argument("--mixers", nargs="+", default=list(MIXERS))
    args = parser.parse_args()
    print(markdown(run(args.quick, tuple(args.lengths), tuple(args.mixers))))


if __name__ == "__main__":
    main()
