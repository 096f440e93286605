"""The yardstick for `genomics.classify`: scikit-learn logistic regression on k-mer counts.

    python -m ssmkit_genomics.kmer_baseline ../shared/data/genomics/gue/*  [--k 4]

For each split folder (train + val, i.e. GUE's dev file; CSV or labelled FASTA, read with the plugin's readers),
fits on train and prints val accuracy, MCC and macro F1 as a markdown table. k-mers holding N are not counted.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ssmkit.train.plots import markdown_table
from ssmkit_genomics import readers
from ssmkit_genomics.tokenizer import A, T


def kmer_counts(ids: np.ndarray, k: int = 4) -> np.ndarray:
    """Token ids (L,) -> (4**k,) counts of the k-mers made of A, C, G, T only."""
    bases = ids - A  # A C G T -> 0..3
    ok = (ids >= A) & (ids <= T)
    if len(ids) < k:
        return np.zeros(4**k)
    windows = np.lib.stride_tricks.sliding_window_view(bases, k)
    valid = np.lib.stride_tricks.sliding_window_view(ok, k).all(1)
    index = windows[valid] @ (4 ** np.arange(k - 1, -1, -1))
    return np.bincount(index, minlength=4**k).astype(float)


def features(path: Path, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, 4**k) k-mer frequencies and (N,) labels of a labelled file."""
    records = readers.read_labelled(path)
    counts = np.stack([kmer_counts(x, k) for x in readers.encode_records(records, str(path))])
    return counts / counts.sum(1, keepdims=True).clip(min=1), np.array([r.label for r in records])


def evaluate(root: Path, k: int = 4) -> dict[str, float]:
    """Fit on root's train split, score on its val split (GUE's dev file)."""
    splits = {}
    for split in ("train", "val"):
        path = readers.find_split(root, split)
        if path is None:
            raise FileNotFoundError(f"{root}: no {readers.SPLIT_FILES[split]} split (.csv or labelled FASTA)")
        splits[split] = features(path, k)
    (x_train, y_train), (x_val, y_val) = splits["train"], splits["val"]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    pred = model.fit(x_train, y_train).predict(x_val)
    return {
        "acc": accuracy_score(y_val, pred),
        "mcc": matthews_corrcoef(y_val, pred),
        "f1": f1_score(y_val, pred, average="macro"),
        "n_train": len(y_train),
        "n_val": len(y_val),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="+", type=Path, help="split folders (train + dev)")
    parser.add_argument("--k", type=int, default=4)
    args = parser.parse_args(argv)
    rows = []
    for root in args.roots:
        r = evaluate(root, args.k)
        rows.append([root.name, args.k, r["n_train"], r["n_val"], *(f"{r[m]:.3f}" for m in ("acc", "mcc", "f1"))])
    print(markdown_table(["task", "k", "train", "val", "val acc", "val MCC", "val F1"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
