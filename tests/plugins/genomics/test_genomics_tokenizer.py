import numpy as np
import pytest
import torch

from ssmkit.data import DataError
from ssmkit_genomics.tokenizer import A, C, G, N, T, decode, encode, reverse_complement


def test_encode_is_case_insensitive_and_reads_u_as_t():
    enc = encode("ACgtNu")
    assert enc.ids.tolist() == [A, C, G, T, N, T]
    assert enc.n_ambiguous == 0


def test_iupac_ambiguity_codes_map_to_n_and_are_counted():
    enc = encode("ARYSWKMBDHVNa")
    assert enc.ids.tolist() == [A] + [N] * 11 + [A]
    assert enc.n_ambiguous == 10  # N itself is not an ambiguity code to count


@pytest.mark.parametrize("bad, position", [("ACGTX", 5), ("AC-GT", 3), ("ACGé", 4), ("1CGT", 1)])
def test_characters_outside_iupac_name_the_record_and_position(bad, position):
    with pytest.raises(DataError, match=rf"^x.fa, record chr7, position {position}: character .* is not an IUPAC"):
        encode(bad, "chr7", "x.fa")


def test_empty_sequence_is_an_error():
    with pytest.raises(DataError, match="record seq1: empty sequence"):
        encode("", "seq1")


def test_decode_drops_specials_and_round_trips():
    assert decode(np.array([0, 1, *encode("ACGTN").ids])) == "ACGTN"


def test_reverse_complement():
    ids = torch.from_numpy(encode("AACGTN").ids)
    assert decode(reverse_complement(ids)) == "NACGTT"
    assert torch.equal(reverse_complement(reverse_complement(ids)), ids)
