"""The real sample data in ../shared/data/genomics (see its PROVENANCE.md), when this checkout has it."""

from pathlib import Path

import pytest

from ssmkit_genomics import readers
from ssmkit_genomics.datamodules import ClassificationData, GenomeData
from ssmkit_genomics.kmer_baseline import evaluate

SHARED = Path(__file__).parents[3].parent / "shared" / "data" / "genomics"
pytestmark = pytest.mark.skipif(
    not SHARED.is_dir(), reason=f"real genomics data not present at {SHARED} (the ../shared/data checkout)"
)


def test_chloroplast_genbank_as_pretraining_corpus():
    path = SHARED / "genomes" / "NC_000932.gb"
    (record,) = readers.read_sequences(path)
    assert record.id == "NC_000932.1" and len(record.sequence) == 154_478
    data = GenomeData(root=str(path), context_length=512, val_fraction=0.05)
    data.setup("fit")
    assert len(data.train_tokens) + len(data.val_tokens) == 154_478
    x, y = next(iter(data.train_dataloader()))
    assert x.shape == y.shape == (16, 512)


def test_gue_split_folders():
    for task in ("prom_core_notata", "prom_core_tata", "tf_human_0"):
        dev = readers.read_labelled(readers.find_split(SHARED / "gue" / task, "dev"))
        assert {r.label for r in dev} == {0, 1}
    data = ClassificationData(root=str(SHARED / "gue" / "prom_core_tata"), max_length=128)
    data.setup("fit")
    assert len(data.splits["train"]) == 4904 and len(data.splits["dev"]) == 613


def test_kmer_baseline_on_prom_core_tata():
    scores = evaluate(SHARED / "gue" / "prom_core_tata")
    assert scores["mcc"] > 0.5  # measured 0.593
