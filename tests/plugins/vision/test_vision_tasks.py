"""The classify task end to end (quick config on digits): reports, a test set, prediction CSVs, model and data
linked, mixup, and the shared MNIST sample."""

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from timm.data import Mixup
from timm.loss import SoftTargetCrossEntropy

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


def test_test_evaluates_the_given_test_set_and_writes_its_report(quick_run, tmp_path):
    runs, run_dir = quick_run
    np.savez(tmp_path / "t.npz", images=np.full((20, 8, 8), 200, np.uint8), labels=np.arange(20) % 10)
    args = ["--ckpt_path", "last", "--data.test_arrays", str(tmp_path / "t.npz")]
    cli = run_task("test", "vision.classify", args, runs_dir=runs, quick=True)
    assert Path(cli.trainer.ckpt_path) == run_dir / "checkpoints" / "last.ckpt"
    assert len(cli.datamodule.datasets["test"]) == 20 and "test/acc" in cli.trainer.callback_metrics
    test_dir = Path(cli.trainer.logger.log_dir)
    rows = list(csv.DictReader(open(test_dir / "test_per_class_accuracy.csv")))
    assert [int(r["count"]) for r in rows] == [2] * 10  # the 20 test images, not the validation split
    for name in ("plots/test_confusion.png", "plots/test_mistakes.png", "test_confusion.csv"):
        assert (test_dir / name).is_file(), name


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


def test_the_model_takes_classes_channels_and_size_from_the_data(tmp_path, write_folder, capsys):
    """Given once, in data: the model cannot disagree, and the model side is not a setting any more."""
    root = write_folder(tmp_path / "imgs", modes=("RGB",), classes=("a", "b", "c"), per_class=4)
    args = ["--data.root", str(root), "--data.mode", "RGB", "--data.image_size", "28", "--data.batch_size", "4"]
    cli = run_task("fit", "vision.classify", args, runs_dir=tmp_path, quick=True)
    hparams = cli.model.hparams
    assert (hparams.n_classes, hparams.in_chans, hparams.img_size) == (3, 3, 28)
    assert cli.model.model.pos_embed.shape[1] == 7 * 7 + 1 and cli.model(torch.zeros(2, 3, 28, 28)).shape == (2, 3)
    for linked in ("n_classes", "in_chans", "img_size"):
        with pytest.raises(SystemExit):
            run_task("fit", "vision.classify", [f"--model.{linked}", "3"], runs_dir=tmp_path, quick=True)
        assert f'Linked "model.{linked}" must be given via "data.' in capsys.readouterr().err


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
    train_set, val_set = cli.datamodule.datasets["train"], cli.datamodule.datasets["val"]
    assert (len(train_set), len(val_set)) == (4500, 500)
    assert np.bincount(val_set.labels).tolist() == [50] * 10
    assert train_set[0][0].shape == (1, 28, 28) and cli.model.hparams.img_size == 28
    assert (Path(cli.trainer.logger.log_dir) / "plots" / "val_mistakes.png").is_file()


def _tiny_classifier(**kwargs) -> ImageClassifier:
    torch.manual_seed(0)
    return ImageClassifier("vim_test_patch4_28", img_size=16, model_kwargs={"depth": 1, "embed_dim": 16}, **kwargs)


def test_mixup_trains_on_soft_targets_and_scores_the_hard_labels():
    task = _tiny_classifier(mixup={"mixup_alpha": 1.0, "cutmix_alpha": 0.0}, label_smoothing=0.1)
    images, labels = torch.randn(6, 1, 16, 16), torch.tensor([0, 1, 2, 3, 4, 5])
    np.random.seed(0)
    loss = task.shared_step((images.clone(), labels), "train")
    np.random.seed(0)
    mixed, soft = Mixup(mixup_alpha=1.0, cutmix_alpha=0.0, label_smoothing=0.1, num_classes=10)(images.clone(), labels)
    assert ((soft > 0.1 / 10 + 1e-6).sum(1) == 2).all()  # two classes per image, not one-hot
    logits = task(mixed)
    torch.testing.assert_close(loss, SoftTargetCrossEntropy()(logits, soft))
    hard_top1 = (logits.argmax(-1) == labels).float().mean()
    torch.testing.assert_close(task.stage_metrics["train_metrics"]["acc"].compute(), hard_top1)
    plain = _tiny_classifier()
    assert not torch.allclose(plain.shared_step((images, labels), "train"), loss)
    torch.testing.assert_close(plain.shared_step((images, labels), "val"), F.cross_entropy(plain(images), labels))


def test_cutmix_pastes_a_box_of_the_partner_image():
    mixup = _tiny_classifier(mixup={"mixup_alpha": 0.0, "cutmix_alpha": 1.0}).mixup
    images = torch.arange(4.0)[:, None, None, None].expand(4, 1, 16, 16).clone()  # image i is all i
    np.random.seed(0)
    mixed, soft = mixup(images.clone(), torch.arange(4))
    partner = images.flip(0)
    from_partner = mixed == partner
    assert ((mixed == images) | from_partner).all() and 0 < from_partner[0].float().mean() < 1
    torch.testing.assert_close(soft[0, 3], from_partner[0].float().mean())  # the box's area is the partner's weight


def test_mixup_fit_runs_and_bad_mixup_settings_are_named(tmp_path):
    mixing = ["--model.mixup", "{mixup_alpha: 0.8, cutmix_alpha: 1.0, switch_prob: 0.5}"]
    cli = run_task("fit", "vision.classify", mixing, runs_dir=tmp_path, quick=True)
    history = (Path(cli.trainer.logger.log_dir) / "metrics.csv").read_text()
    assert "train/acc" in history and "val/acc" in history
    with pytest.raises(ValueError, match="even batch size, but training batches hold 31 images"):
        run_task("fit", "vision.classify", [*mixing, "--data.batch_size", "31"], runs_dir=tmp_path, quick=True)
    with pytest.raises(ValueError, match=r"mixup takes \['label_smoothing'\] from the task"):
        _tiny_classifier(mixup={"mixup_alpha": 1.0, "label_smoothing": 0.2})
