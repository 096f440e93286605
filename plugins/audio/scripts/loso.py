"""Leave-one-speaker-out (LOSO) evaluation of `audio.classify`: one `ssmkit fit` per fold, then `ssmkit test` of
its best-validation checkpoint, and a table of per-fold and mean test accuracy.

    python plugins/audio/scripts/loso.py --name raw_s4d --config fsdd.yaml --minutes 7 --epochs 48
    python plugins/audio/scripts/loso.py --name cnn --config fsdd.yaml --config cnn.yaml --minutes 7 --epochs 200

Folds: the speakers of `--root` in sorted order s_0 ... s_{n-1} (FSDD: george, nicolas, theo, yweweler). Fold i
tests on s_i (`--data.test_speakers [s_i]`) and trains on the others. `--val held-in` (the default,
`--data.val_speakers []`): all other speakers train (FSDD: three, 1,500 clips) and a stratified
`--data.val_fraction` of their clips selects the checkpoint. `--val speaker`: the checkpoint is selected on
s_{(i+1) mod n} (`--data.val_speakers [s_{i+1}]`) and the rest train (FSDD: two speakers, 1,000 clips).

Budget per fold: `--minutes` of training (`--trainer.max_time`) and at most `--epochs` epochs (which also sets
the length of the cosine schedule: pick it so the epochs fit the minutes). `--config` names a file of the plugin's
`configs/` folder or a path, repeated in order; everything after `--` goes to every `ssmkit fit`. Each finished
fold is appended to `<out>/loso.csv` (one row per model and fold, whatever run wrote it), and `<out>/loso.md`, the
markdown table of every model in that CSV (per-fold test accuracy, mean and standard deviation), is rewritten
and printed.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from pathlib import Path

from ssmkit.plugins import find_task
from ssmkit.train.cli import run_task
from ssmkit.train.plots import markdown_table
from ssmkit_audio.readers import find_clips

SPEC = "audio.classify"
FIELDS = ["model", "fold", "test_speaker", "val_speaker", "val_acc", "test_acc", "epochs", "steps", "seconds", "run"]


def folds(speakers: list[str], val_speaker: bool = True) -> list[tuple[str, str]]:
    """(test speaker, val speaker) per fold: each speaker in sorted order is tested once; its validation speaker is
    the next one (cyclically), or "" without `val_speaker` (val: a share of the training speakers' clips)."""
    ordered = sorted(set(speakers))
    if len(ordered) < (3 if val_speaker else 2):
        raise ValueError(f"leave-one-speaker-out needs >= 3 speakers (2 without a validation speaker), got {ordered}")
    return [(s, ordered[(i + 1) % len(ordered)] if val_speaker else "") for i, s in enumerate(ordered)]


def config_path(name: str) -> str:
    """A config file: a path as given, or a file of the plugin's configs/ folder."""
    path = Path(name)
    return str(path if path.is_file() else find_task(SPEC)[2].config_path().with_name(name))


def fold_args(base: list[str], test: str, val: str, minutes: float, epochs: int) -> list[str]:
    """`ssmkit fit` flags of one fold: the configs and extras (`base`), the speakers and the budget."""
    seconds = round(minutes * 60)
    max_time = f"00:{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    return [
        *base,
        f"--data.test_speakers=[{test}]",
        f"--data.val_speakers=[{val}]",  # []: a stratified share of the training speakers' clips
        f"--trainer.max_time={max_time}",
        f"--trainer.max_epochs={epochs}",
    ]


def fit_and_test(args: list[str], runs_dir: Path) -> dict[str, float | str]:
    """Fit, then test the best-validation checkpoint: its val and test accuracy, epochs, steps, wall seconds."""
    start = time.perf_counter()
    cli = run_task("fit", SPEC, args, runs_dir=runs_dir)
    trainer = cli.trainer
    epochs, steps = trainer.current_epoch, trainer.global_step
    val = float(trainer.checkpoint_callback.best_model_score)
    test = trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path="best", verbose=False)[0]
    return {
        "val_acc": val,
        "test_acc": float(test["test/acc"]),
        "epochs": epochs,
        "steps": steps,
        "seconds": time.perf_counter() - start,
        "run": str(trainer.logger.log_dir),
    }


def read_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def append_row(path: Path, row: dict) -> None:
    new = not path.is_file()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        if new:
            writer.writeheader()
        writer.writerow({k: row[k] for k in FIELDS})


def table(rows: list[dict[str, str]]) -> str:
    """Markdown: one row per model, the test accuracy of each fold (by test speaker), mean, std, minutes."""
    speakers = sorted({r["test_speaker"] for r in rows})
    header = ["model", *(f"test {s}" for s in speakers), "mean test acc", "std", "mean val acc", "wall min"]
    cells = []
    for model in dict.fromkeys(r["model"] for r in rows):
        runs = {r["test_speaker"]: r for r in rows if r["model"] == model}
        accs = [float(r["test_acc"]) for r in runs.values()]
        cells.append(
            [
                model,
                *(f"{float(runs[s]['test_acc']):.3f}" if s in runs else "-" for s in speakers),
                f"{statistics.fmean(accs):.3f}" + ("" if len(accs) == len(speakers) else f" ({len(accs)} folds)"),
                f"{statistics.pstdev(accs):.3f}",
                f"{statistics.fmean(float(r['val_acc']) for r in runs.values()):.3f}",
                f"{sum(float(r['seconds']) for r in runs.values()) / 60:.1f}",
            ]
        )
    return markdown_table(header, cells)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True, help="the model's row label in the table")
    parser.add_argument("--config", action="append", default=[], help="a config file (repeatable, in order)")
    parser.add_argument("--root", default="../shared/data/audio/fsdd", help="the FSDD-style folder")
    parser.add_argument("--minutes", type=float, default=7.0, help="training time per fold")
    parser.add_argument("--epochs", type=int, default=1000, help="at most this many epochs per fold")
    parser.add_argument("--folds", nargs="*", default=None, help="test speakers to run (default: all)")
    parser.add_argument(
        "--val",
        choices=["speaker", "held-in"],
        default="held-in",
        help="checkpoint selection on the next speaker, or on a stratified --data.val_fraction of the training"
        " speakers' clips (all other speakers train)",
    )
    parser.add_argument("--out", default="runs/loso", help="runs, loso.csv and loso.md go here")
    parser.add_argument("extra", nargs="*", help="after --: more `ssmkit fit` flags for every fold")
    opts = parser.parse_args(argv)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    base = [arg for c in opts.config for arg in ("--config", config_path(c))]
    base += [f"--data.root={opts.root}", *opts.extra]
    speakers = [c.speaker for c in find_clips(opts.root, "filename")]
    for fold, (test, val) in enumerate(folds(speakers, opts.val == "speaker")):
        if opts.folds is not None and test not in opts.folds:
            continue
        result = fit_and_test(fold_args(base, test, val, opts.minutes, opts.epochs), out / opts.name)
        row = {"model": opts.name, "fold": fold, "test_speaker": test, "val_speaker": val, **result}
        append_row(out / "loso.csv", row)
        print(f"{opts.name} fold {fold} (test {test}, val {val}): {row}", flush=True)
        text = table(read_rows(out / "loso.csv"))
        (out / "loso.md").write_text(text + "\n")
        print(text, flush=True)


if __name__ == "__main__":
    main()
