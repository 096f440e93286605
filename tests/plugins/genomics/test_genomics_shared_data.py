"""The real sample data in ../shared/data/genomics (see its PROVENANCE.md), when this checkout has it."""

from pathlib import Path

import pytest
import torch

from ssmkit.cli import main
from ssmkit.plugins import find_task
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


GUE_TASKS = ("prom_core_notata", "prom_core_tata", "tf_human_0")  # the ones the README names


def test_gue_split_folders():
    for task in GUE_TASKS:
        val = readers.read_labelled(readers.find_split(SHARED / "gue" / task, "val"))  # dev.csv
        assert {r.label for r in val} == {0, 1}
    data = ClassificationData(root=str(SHARED / "gue" / "prom_core_tata"), max_length=128)
    assert data.n_classes == 2  # read from the labels
    assert len(data.datasets["train"]) == 4904 and len(data.datasets["val"]) == 613
    assert data.item_names("val")[:2] == ["row 2", "row 3"]


@pytest.mark.parametrize("task", GUE_TASKS)
def test_the_gue_recipe_runs_on_every_task_the_readme_names(task, tmp_path):
    """configs/gue.yaml over each GUE folder, as the README runs it but cut to two steps. Its validation step
    (320) is after more batches than an epoch of prom_core_tata has (76): Lightning refused that until the
    recipe counted it in steps across epochs."""
    recipe = find_task("genomics.classify")[2].config_path().with_name("gue.yaml")
    args = ["--config", str(recipe), "--data.root", str(SHARED / "gue" / task), "--trainer.max_steps", "2"]
    assert main(["fit", "genomics.classify", "--runs_dir", str(tmp_path), *args]) == 0
    ckpt = torch.load(tmp_path / "genomics" / "classify" / "version_0" / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 2 and ckpt["hyper_parameters"]["max_length"] == 128


def test_kmer_baseline_on_prom_core_tata():
    scores = evaluate(SHARED / "gue" / "prom_core_tata")
    assert scores["mcc"] > 0.5  # measured 0.593
