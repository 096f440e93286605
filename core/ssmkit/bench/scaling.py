"""Scaling in the sequence length: forward+backward time and peak extra memory of ONE block — the backbone's
pre-norm residual `Block` (x + mixer(RMSNorm(x)), no MLP) around `create_mixer(name, d_model)` with its default
arguments (l_max = L for a family that takes one: Hyena) — at d_model 256, batch 1, float32, for a linear-time family
(Mamba, Mamba-2, Hyena, S4D) beside attention (causal SDPA), the linear-vs-quadratic picture.

A mixer stops at the first length whose predicted forward+backward time (`measure.predicted_s`: extrapolated
from its shorter lengths) exceeds `MAX_CALL_S`; the row says so.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ssmkit.bench.measure import MAX_CALL_S, measure_calls, predicted_s
from ssmkit.models.backbone import Block
from ssmkit.registry import create_mixer, with_l_max
from ssmkit.train.plots import markdown_table, save_figure

MIXERS = ("mamba", "mamba2", "hyena", "s4d", "attention")
D_MODEL = 256


def measure(name: str, length: int, repeats: int) -> dict[str, float | int | str | None]:
    torch.manual_seed(0)
    block = Block(create_mixer(name, D_MODEL, **with_l_max(name, {}, length)), D_MODEL, mlp_ratio=0.0, dropout=0.0)
    x = torch.randn(1, length, D_MODEL)
    return {"mixer": name, "L": length} | measure_calls({name: lambda: block(x)}, repeats)[name]


def run(quick: bool) -> list[dict[str, float | int | str | None]]:
    lengths, repeats = ((16, 32), 1) if quick else ((1024, 4096, 16384, 65536), 2)
    rows = []
    for name in MIXERS:
        measured: list[tuple[int, float]] = []
        for length in lengths:
            if measured and predicted_s(measured, length) > MAX_CALL_S:
                rows.append({"mixer": name, "L": length, "skipped": f"predicted > {MAX_CALL_S:.0f} s per call"})
            else:
                rows.append(measure(name, length, repeats))
                measured.append((length, rows[-1]["forward_backward_s"]))
            _print(rows[-1])
    return rows


def _print(row: dict) -> None:
    if "skipped" in row:
        print(f"scaling {row['mixer']:10} L={row['L']:6}  skipped: {row['skipped']}", flush=True)
    else:
        print(f"scaling {row['mixer']:10} L={row['L']:6}  fwd+bwd {row['forward_backward_s']:8.3f} s   "
              f"peak +{row['peak_extra_mb'] or float('nan'):8.1f} MiB", flush=True)  # fmt: skip


def markdown(rows: list[dict]) -> str:
    lengths = sorted({r["L"] for r in rows})
    cells = {(r["mixer"], r["L"]): r for r in rows}

    def cell(r: dict) -> str:
        if "skipped" in r:
            return "stopped"
        mem = "n/a" if r["peak_extra_mb"] is None else f"{r['peak_extra_mb']:.0f} MiB"
        return f"{r['forward_backward_s']:.3f} s, {mem}"

    intro = (
        f"One block (RMSNorm + mixer + residual), d_model {D_MODEL}, batch 1, float32: forward+backward time and "
        f"peak extra memory. 'stopped': predicted over {MAX_CALL_S:.0f} s per call (from its growth so far)."
    )
    header = ["mixer", *(f"L={length}" for length in lengths)]
    table = [[m, *(cell(cells[m, length]) for length in lengths)] for m in MIXERS]
    return intro + "\n\n" + markdown_table(header, table, align="l" + "r" * len(lengths)) + "\n"


def plot(rows: list[dict], out: Path) -> None:
    """Log-log time and peak memory against L, one line per mixer."""
    series = {
        name: [
            (r["L"], r["forward_backward_s"], r["peak_extra_mb"])
            for r in rows
            if r["mixer"] == name and "skipped" not in r
        ]
        for name in MIXERS
    }
    labels = ("forward+backward time (s)", "peak extra memory (MiB)")
    loglog_panels(series, "sequence length L", labels, f"One block, d_model {D_MODEL}, batch 1 (CPU)", out)


def loglog_panels(
    series: dict[str, list[tuple[float, float, float | None]]],
    xlabel: str,
    ylabels: tuple[str, str],
    title: str,
    out: Path,
) -> None:
    """Two log-log panels side by side, one line per series of (x, left y, right y) points (None: not measured)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, points in series.items():
        for i, ax in enumerate(axes):
            ax.plot([p[0] for p in points], [float("nan") if p[i + 1] is None else p[i + 1] for p in points],
                    marker="o", label=label)  # fmt: skip
    for ax, ylabel in zip(axes, ylabels, strict=True):
        ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel=ylabel)
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, out, dpi=120)
