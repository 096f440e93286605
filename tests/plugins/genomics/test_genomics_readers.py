import gzip
import logging

import numpy as np
import pytest
from Bio import SeqIO
from Bio.Seq import Seq
from Bio.SeqRecord import SeqRecord

from ssmkit.data import DataError
from ssmkit_genomics import readers
from ssmkit_genomics.datamodules import ClassificationData
from ssmkit_genomics.readers import Record
from ssmkit_genomics.tokenizer import decode


def write(path, text):
    path.write_text(text)
    return path


def test_fasta_plain_and_gzip(tmp_path):
    text = ">r1 first\nACGT\nACGT\n>r2\nggcc\n"
    plain = write(tmp_path / "g.fa", text)
    gz = tmp_path / "g.fasta.gz"
    with gzip.open(gz, "wt") as f:
        f.write(text)
    for path in (plain, gz):
        records = readers.read_sequences(path)
        assert [(r.id, r.sequence) for r in records] == [("r1", "ACGTACGT"), ("r2", "ggcc")]


def test_genbank(tmp_path):
    record = SeqRecord(Seq("ACGTTGCA"), id="NC_1", name="NC_1", annotations={"molecule_type": "DNA"})
    path = tmp_path / "g.gb"
    SeqIO.write([record], path, "genbank")
    assert [(r.id, r.sequence) for r in readers.read_sequences(path)] == [("NC_1", "ACGTTGCA")]


def test_unknown_suffix(tmp_path):
    with pytest.raises(DataError, match="unknown sequence file type"):
        readers.read_sequences(write(tmp_path / "g.txt", ">a\nACGT\n"))


def test_empty_file(tmp_path):
    with pytest.raises(DataError, match="no fasta records"):
        readers.read_sequences(write(tmp_path / "g.fa", ""))


def test_empty_record(tmp_path):
    with pytest.raises(DataError, match=r"g.fa, record b: empty sequence"):
        readers.read_sequences(write(tmp_path / "g.fa", ">a\nACGT\n>b\n>c\nAC\n"))


def test_bad_character_names_record_and_position(tmp_path):
    records = readers.read_sequences(write(tmp_path / "g.fa", ">ok\nACGT\n>chrX desc\nACGTAC\nGTQA\n"))
    with pytest.raises(DataError, match=r"g.fa, record chrX, position 9: character 'Q' is not an IUPAC"):
        readers.encode_records(records, "g.fa")


def test_ambiguity_codes_are_logged_with_a_count(caplog):
    records = [Record("a", "ACGRY"), Record("b", "ACGT"), Record("c", "NNW")]
    with caplog.at_level(logging.WARNING, logger="ssmkit_genomics.readers"):
        ids = readers.encode_records(records, "src")
    assert "mapped 3 IUPAC ambiguity codes in 2 record(s) to N" in caplog.text
    assert [len(x) for x in ids] == [5, 4, 3]


def test_csv(tmp_path):
    path = write(tmp_path / "train.csv", "sequence,label,extra\nACGT,0,x\nGGCC,1,y\n")
    assert [(r.id, r.sequence, r.label) for r in readers.read_csv(path)] == [
        ("row 2", "ACGT", 0),
        ("row 3", "GGCC", 1),
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty file"),
        ("sequence,label\n", "header but no rows"),
        ("seq,label\nACGT,0\n", r"missing column\(s\) \['sequence'\]"),
        ("sequence,class\nACGT,0\n", r"missing column\(s\) \['label'\]"),
        ("sequence,label\nACGT,0\nACGT,yes\n", "train.csv, record row 3: label 'yes' is not an integer"),
        ("sequence,label\nACGT,1.5\n", "train.csv, record row 2: label '1.5' is not an integer"),
        ("sequence,label\n,1\n", "train.csv, record row 2: empty sequence"),
    ],
)
def test_csv_errors(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        readers.read_csv(write(tmp_path / "train.csv", text))


def test_csv_without_labels_for_prediction(tmp_path):
    records = readers.read_any(write(tmp_path / "x.csv", "sequence\nACGT\n"))
    assert records[0].label is None


def test_labelled_fasta(tmp_path):
    path = write(tmp_path / "dev.fa", ">s1 label=1\nACGT\n>s2 chr1:5-9 label=0\nGG\n")
    assert [(r.id, r.label) for r in readers.read_labelled(path)] == [("s1", 1), ("s2", 0)]
    with pytest.raises(DataError, match="a.fa, record s1: no 'label=K'"):
        readers.read_labelled(write(tmp_path / "a.fa", ">s1\nACGT\n"))
    with pytest.raises(DataError, match="b.fa, record s1: label 'x' is not an integer"):
        readers.read_labelled(write(tmp_path / "b.fa", ">s1 label=x\nACGT\n"))


def test_split_folder(tmp_path):
    write(tmp_path / "train.csv", "sequence,label\nACGT,0\n")
    write(tmp_path / "dev.fa", ">d label=1\nACGT\n")
    assert readers.find_split(tmp_path, "train").name == "train.csv"
    assert readers.find_split(tmp_path, "val").name == "dev.fa"  # GUE's dev file is the val split
    assert readers.find_split(tmp_path, "test") is None
    data = ClassificationData(root=str(tmp_path))
    data.setup("fit")
    assert sorted(data.datasets) == ["train", "val"]
    assert data.n_classes == 2 and data.item_names("val") == ["d"] and data.item_names("test") == ["d"]


def test_missing_dev_split(tmp_path):
    write(tmp_path / "train.csv", "sequence,label\nACGT,0\n")
    with pytest.raises(FileNotFoundError, match="no dev.csv"):
        ClassificationData(root=str(tmp_path)).setup("fit")


@pytest.mark.parametrize(
    "overflow, expected",
    [("truncate", [("long:1-4", "ACGT")]), ("window", [("long:1-4", "ACGT"), ("long:5-8", "TTGG"), ("long:9-9", "C")])],
)
def test_long_sequences_truncated_or_windowed_with_a_warning(caplog, overflow, expected):
    data = ClassificationData(max_length=4, overflow=overflow)
    records = [Record("short", "ACG", 1), Record("long", "ACGTTTGGC", 0)]
    with caplog.at_level(logging.WARNING, logger="ssmkit_genomics.datamodules"):
        samples = data.fit_length(records, readers.encode_records(records, "x"))
    assert "1 sequence(s) longer than max_length=4" in caplog.text
    assert samples[0][0] == "short"
    assert [(i, decode(x)) for i, x, _ in samples[1:]] == expected
    assert all(label == 0 for _, _, label in samples[1:])
    assert all(isinstance(x, np.ndarray) for _, x, _ in samples)


def test_bad_overflow_option():
    with pytest.raises(ValueError, match="overflow must be one of"):
        ClassificationData(overflow="drop")
