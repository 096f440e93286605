"""Readers for the formats DNA data comes in, each returning plain `Record`s (id, sequence[, label]).

- FASTA and GenBank through Bio.SeqIO, plain or gzip (`.fa .fasta .fna .fas .gb .gbk .genbank`, `+ .gz`);
- CSV with the columns `sequence,label` (GUE / GenomicBenchmarks exports);
- labelled FASTA: the label is a `label=K` field in each header (`>chr1:100-170 label=1`);
- split folders (the GUE layout): `train`, `dev` and optionally `test`, each `.csv` or labelled FASTA.

Every problem is an error that names the file and the record: an empty file or record, a CSV without the
`sequence`/`label` columns, a label that is not an integer, a character outside the IUPAC codes.
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

from ssmkit_genomics.tokenizer import encode

log = logging.getLogger(__name__)

FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".fas")
GENBANK_SUFFIXES = (".gb", ".gbk", ".genbank")
SPLITS = ("train", "dev", "test")
_LABEL = re.compile(r"(?:^|\s)label=(\S+)")


class DataFormatError(ValueError):
    """A file that cannot be read as the format it claims; the message names file and record."""


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
    raise DataFormatError(f"{path}: unknown sequence file type; expected one of {FASTA_SUFFIXES + GENBANK_SUFFIXES}")


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
            raise DataFormatError(f"{path}: record {r.id!r} has no 'label=K' in its header")
        records.append(Record(r.id, str(r.seq), _parse_label(match.group(1), f"{path}: record {r.id!r}")))
    return records


def _parse(path: Path, fmt: str) -> list[SeqRecord]:
    """Bio.SeqIO records of a plain or gzip file; an empty file or record is an error."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rt") as handle:
        records = list(SeqIO.parse(handle, fmt))
    if not records:
        raise DataFormatError(f"{path}: no {fmt} records (empty file?)")
    for r in records:
        if len(r.seq) == 0:
            raise DataFormatError(f"{path}: record {r.id!r} has an empty sequence")
    return records


def read_csv(path: str | Path, labelled: bool = True) -> list[Record]:
    """CSV with a header holding `sequence` and `label` (other columns are ignored); ids are 'row N'.
    With labelled=False the `label` column is optional (inputs to predict)."""
    path = Path(path)
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None:
            raise DataFormatError(f"{path}: empty file")
        required = ("sequence", "label") if labelled else ("sequence",)
        missing = [c for c in required if c not in reader.fieldnames]
        if missing:
            raise DataFormatError(f"{path}: missing column(s) {missing}; found {reader.fieldnames}")
        records = []
        for row_number, row in enumerate(reader, start=2):  # row 1 is the header
            where = f"{path}: row {row_number}"
            sequence = (row["sequence"] or "").strip()
            if not sequence:
                raise DataFormatError(f"{where}: empty sequence")
            label = _parse_label(row["label"], where) if labelled else None
            records.append(Record(f"row {row_number}", sequence, label))
    if not records:
        raise DataFormatError(f"{path}: header but no rows")
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
    """The file of `split` in a split folder (`train.csv`, `dev.fa.gz`, ...), or None."""
    for suffix in (".csv", *FASTA_SUFFIXES):
        for candidate in (Path(root) / f"{split}{suffix}", Path(root) / f"{split}{suffix}.gz"):
            if candidate.is_file():
                return candidate
    return None


def encode_records(records: list[Record], source: str) -> list[np.ndarray]:
    """Token ids of each record; logs how many IUPAC ambiguity codes became N."""
    encoded = [encode(r.sequence, f"{source}: record {r.id!r}") for r in records]
    n_ambiguous = sum(e.n_ambiguous for e in encoded)
    if n_ambiguous:
        n_records = sum(e.n_ambiguous > 0 for e in encoded)
        log.warning("%s: mapped %d IUPAC ambiguity codes in %d record(s) to N", source, n_ambiguous, n_records)
    return [e.ids for e in encoded]


def _parse_label(text: str | None, where: str) -> int:
    try:
        return int((text or "").strip())
    except ValueError:
        raise DataFormatError(f"{where}: label {text!r} is not an integer") from None
