"""The classify task end to end (quick config on digits), prediction CSVs, and the shared MNIST sample."""

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ssmkit.plugins import find_task
from ssmkit.train.cli import run_task
from ssmkit_vision.datamodules import ImageClassificationData
from ssmkit_vision.tasks import ImageClassifier

SHARED_VISION = Path(__file__).parents[3].parent / "shared" / "data" / "vision"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    cli = run_task("fit", "vision.classify", [], runs_dir=runs, quick=True)
    return runs, Path(cli.trainer.logger.log_dir)


def test_quick_fit_writes_the_reports(quick_run):
    _, run_dir = quick_run
    for name in ("plots/loss.png", "plots/val_confusion.png", "plots/val_mistakes.png", "checkpoints/last.ckpt"):
        assert (run_dir / name).is_file(), name
    rows = list(csv.DictReader(open(run_dir / "val_per_class_accuracy.csv")))
    assert [r["class"] for r in rows] == [str(d) for d in range(10)]
    assert sum(int(r["count"]) for r in rows) == 64  # limit_val_batches 2 x batch 32
    header = (run_dir / "metrics.csv").read_text().splitlines()[0]
    assert "val/acc" in header and "val/top5" in header


def test_predict_writes_probabilities_for_a_folder_of_images(quick_run, tmp_path):
    runs, run_dir = quick_run
    folder = tmp_path / "new"
    (folder / "sub").mkdir(parents=True)
    Image.new("L", (8, 8), 128).save(folder / "a.png")
    Image.new("RGB", (20, 13), (0, 80, 255)).save(folder / "sub" / "b.jpg")
    cli = run_task(
        "predict",
        "vision.classify",
        ["--ckpt_path", str(run_dir / "checkpoints" / "last.ckpt"), "--data.predict_root", str(folder)],
        runs_dir=runs,
        quick=True,
    )
    rows = list(csv.DictReader(open(Path(cli.trainer.logger.log_dir) / "predictions.csv")))
    assert [r["item"] for r in rows] == [str(folder / "a.png"), str(folder / "sub" / "b.jpg")]
    probabilities = np.array([[float(r[f"p_{d}"]) for d in range(10)] for r in rows])
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-4)
    assert all(r["predicted"] == str(p.argmax()) for r, p in zip(rows, probabilities, strict=True))


def test_model_and_data_that_disagree_are_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="image_size: model 16, data 28"):
        run_task("fit", "vision.classify", ["--data.image_size", "28"], runs_dir=tmp_path, quick=True)


def test_every_registered_model_family_trains_in_the_task():
    data = ImageClassificationData(image_size=16, batch_size=16)
    data.setup("fit")
    images, labels = next(iter(data.train_dataloader()))
    for name in ("vim_test_patch4_28", "hydra_test_patch4_28", "vit_matched_test_patch4_28"):
        task = ImageClassifier(name, img_size=16, model_kwargs={"depth": 1, "embed_dim": 32})
        logits = task(images)
        assert logits.shape == (16, 10) and task.batch_tokens((images, labels)) == 16 * 17


def test_task_is_registered_with_both_configs():
    task = find_task("vision.classify")[2]
    assert task.config_path().is_file() and task.config_path(quick=True).is_file()


@pytest.mark.skipif(
    not (SHARED_VISION / "mnist_5k.csv.gz").is_file(),
    reason=f"shared MNIST sample not found at {SHARED_VISION / 'mnist_5k.csv.gz'} (see its PROVENANCE.md)",
)
def test_shared_mnist_sample_loads_as_4500_train_and_500_validation_and_trains(tmp_path):
    overlay = Path(find_task("vision.classify")[2].config_path()).with_name("mnist_5k.yaml")
    args = ["--config", str(overlay), "--data.arrays", str(SHARED_VISION / "mnist_5k.csv.gz")]
    args += ["--model.model_kwargs", "{depth: 1, embed_dim: 32}", "--trainer.max_epochs", "1"]
    args += ["--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "1"]
    cli = run_task("fit", "vision.classify", args, runs_dir=tmp_path)
    data = cli.datamodule
    assert (len(data.train_set), len(data.val_set)) == (4500, 500)
    assert np.bincount(data.val_set.labels).tolist() == [50] * 10
    assert data.train_set[0][0].shape == (1, 28, 28)
    assert (Path(cli.trainer.logger.log_dir) / "plots" / "val_mistakes.png").is_file()
