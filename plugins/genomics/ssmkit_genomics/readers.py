"""Readers for the formats DNA data comes in, each returning plain `Record`s (id, sequence[, label]).

- FASTA and GenBank through Bio.SeqIO, plain or gzip (`.fa .fasta .fna .fas .gb .gbk .genbank`, `+ .gz`);
- CSV with the columns `sequence,label` (GUE / GenomicBenchmarks exports);
- labelled FASTA: the label is a `label=K` field in each header (`>chr1:100-170 label=1`);
- split folders (the GUE layout): `train`, `dev` and optionally `test`, each `.csv` or labelled FASTA; the
  `dev` file is the "val" split.

Every problem is a `ssmkit.data.DataError` that names the file and the record: an empty file or record, a CSV
without the `sequence`/`label` columns, a label that is not an integer, a character outside the IUPAC codes.
"""

from __future__ import annotations

import csv
import gzip
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from Bio import SeqIO
from Bio.SeqRecord import SeqRecord

from ssmkit.data import DataError
from ssmkit_genomics.tokenizer import encode

log = logging.getLogger(__name__)

FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".fas")
GENBANK_SUFFIXES = (".gb", ".gbk", ".genbank")
# split -> its file name in a split folder (GUE calls the validation split "dev")
SPLIT_FILES = {"train": "train", "val": "dev", "test": "test"}
_LABEL = re.compile(r"(?:^|\s)label=(\S+)")


@dataclass
class Record:
    id: str
    sequence: str
    label: int | None = None


def sequence_format(path: Path) -> str:
    """'fasta' or 'genbank' from the file name (a trailing .gz is allowed)."""
    suffixes = [s.lower() for s in path.suffixes]
    suffix = suffixes[-2] if suffixes[-1:] == [".gz"] and len(suffixes) > 1 else (suffixes or [""])[-1]
    if suffix in FASTA_SUFFIXES:
        return "fasta"
    if suffix in GENBANK_SUFFIXES:
        return "genbank"
    raise DataError(f"unknown sequence file type; expected one of {FASTA_SUFFIXES + GENBANK_SUFFIXES}", source=path)


def read_sequences(path: str | Path) -> list[Record]:
    """All records of a FASTA / GenBank file (plain or gzip)."""
    path = Path(path)
    return [Record(r.id, str(r.seq)) for r in _parse(path, sequence_format(path))]


def read_labelled_fasta(path: str | Path) -> list[Record]:
    """FASTA whose headers carry `label=K` (K an integer)."""
    path = Path(path)
    records = []
    for r in _parse(path, "fasta"):
        match = _LABEL.search(r.description)
        if match is None:
            raise DataError("no 'label=K' in its header", source=path, record=r.id)
        records.append(Record(r.id, str(r.seq), _parse_label(match.group(1), path, r.id)))
    return records


def _parse(path: Path, fmt: str) -> list[SeqRecord]:
    """Bio.SeqIO records of a plain or gzip file; an empty file or record is an error."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rt") as handle:
        records = list(SeqIO.parse(handle, fmt))
    if not records:
        raise DataError(f"no {fmt} records (empty file?)", source=path)
    for r in records:
        if len(r.seq) == 0:
            raise DataError("empty sequence", source=path, record=r.id)
    return records


def read_csv(path: str | Path, labelled: bool = True) -> list[Record]:
    """CSV with a header holding `sequence` and `label` (other columns are ignored); ids are 'row N'.
    With labelled=False the `label` column is optional (inputs to predict)."""
    path = Path(path)
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None:
            raise DataError("empty file", source=path)
        required = ("sequence", "label") if labelled else ("sequence",)
        missing = [c for c in required if c not in reader.fieldnames]
        if missing:
            raise DataError(f"missing column(s) {missing}; found {reader.fieldnames}", source=path)
        records = []
        for row_number, row in enumerate(reader, start=2):  # row 1 is the header
            record = f"row {row_number}"
            sequence = (row["sequence"] or "").strip()
            if not sequence:
                raise DataError("empty sequence", source=path, record=record)
            label = _parse_label(row["label"], path, record) if labelled else None
            records.append(Record(record, sequence, label))
    if not records:
        raise DataError("header but no rows", source=path)
    return records


def read_labelled(path: str | Path) -> list[Record]:
    """Labelled records from a CSV or a labelled FASTA file."""
    path = Path(path)
    return read_csv(path) if path.suffix.lower() == ".csv" else read_labelled_fasta(path)


def read_any(path: str | Path) -> list[Record]:
    """Records of a CSV (label optional), FASTA or GenBank file: inputs to pretraining or prediction."""
    path = Path(path)
    return read_csv(path, labelled=False) if path.suffix.lower() == ".csv" else read_sequences(path)


def find_split(root: str | Path, split: str) -> Path | None:
    """The file of `split` ("train", "val", "test") in a split folder (`train.csv`, `dev.fa.gz`, ...), or None."""
    for suffix in (".csv", *FASTA_SUFFIXES):
        name = SPLIT_FILES[split] + suffix
        for candidate in (Path(root) / name, Path(root) / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def encode_records(records: list[Record], source: str) -> list[np.ndarray]:
    """Token ids of each record; logs how many IUPAC ambiguity codes became N."""
    encoded = [encode(r.sequence, r.id, source) for r in records]
    n_ambiguous = sum(e.n_ambiguous for e in encoded)
    if n_ambiguous:
        n_records = sum(e.n_ambiguous > 0 for e in encoded)
        log.warning("%s: mapped %d IUPAC ambiguity codes in %d record(s) to N", source, n_ambiguous, n_records)
    return [e.ids for e in encoded]


def _parse_label(text: str | None, path: Path, record: str) -> int:
    try:
        return int((text or "").strip())
    except ValueError:
        raise DataError(f"label {text!r} is not an integer", source=path, record=record) from None
