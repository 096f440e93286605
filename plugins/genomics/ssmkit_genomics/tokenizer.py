"""Single-nucleotide tokenizer (HyenaDNA's character tokenizer, reduced to what the tasks use).

    ids:  0 [PAD]   1 [SEP]   2 A   3 C   4 G   5 T   6 N

Input is case-insensitive (soft-masked genomes keep their lower case). U reads as T. The IUPAC ambiguity
codes R Y S W K M B D H V map to N and are counted; any other character is a `ssmkit.data.DataError` naming
the file, the record and the position, so a corrupt file never trains silently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ssmkit.data import DataError

Tensor = torch.Tensor

TOKENS = ("[PAD]", "[SEP]", "A", "C", "G", "T", "N")
PAD, SEP, A, C, G, T, N = range(len(TOKENS))
VOCAB_SIZE = len(TOKENS)
AMBIGUOUS = "RYSWKMBDHV"

_INVALID = -1
_LUT = np.full(256, _INVALID, dtype=np.int64)
for _letters, _id in (("Aa", A), ("Cc", C), ("Gg", G), ("TtUu", T), ("Nn", N)):
    for _ch in _letters:
        _LUT[ord(_ch)] = _id
for _ch in AMBIGUOUS + AMBIGUOUS.lower():
    _LUT[ord(_ch)] = N
_IS_AMBIGUOUS = np.zeros(256, dtype=bool)
_IS_AMBIGUOUS[[ord(c) for c in AMBIGUOUS + AMBIGUOUS.lower()]] = True

# reverse complement on ids: A<->T, C<->G; N and the specials map to themselves
_COMPLEMENT = torch.tensor([PAD, SEP, T, G, C, A, N])


@dataclass
class Encoded:
    ids: np.ndarray  # (L,) int64 token ids
    n_ambiguous: int  # IUPAC ambiguity codes that were mapped to N


def encode(sequence: str, record: str | None = None, source: str | None = None) -> Encoded:
    """DNA string -> token ids. `record` (a FASTA id, a CSV row) and `source` (the file) name it in errors."""
    if not sequence:
        raise DataError("empty sequence", source=source, record=record)
    raw = np.frombuffer(sequence.encode("ascii", errors="replace"), dtype=np.uint8)
    ids = _LUT[raw]
    bad = np.flatnonzero(ids == _INVALID)
    if bad.size:
        pos = int(bad[0])
        raise DataError(
            f"character {sequence[pos]!r} is not an IUPAC nucleotide code",
            source=source,
            record=record,
            position=pos + 1,
        )
    return Encoded(ids, int(_IS_AMBIGUOUS[raw].sum()))


def decode(ids: Tensor | np.ndarray) -> str:
    """Token ids (L,) -> DNA string; specials are dropped."""
    return "".join(TOKENS[i] for i in np.asarray(ids).tolist() if i > SEP)


def reverse_complement(ids: Tensor) -> Tensor:
    """(..., L) ids -> the reverse complement along the last dimension."""
    return _COMPLEMENT.to(ids.device)[ids].flip(-1)
