"""The tasks end to end on their quick configs: the reports, AUC, predicted masks of a folder, the baselines."""

import csv
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

from ssmkit.train.cli import run_task
from ssmkit_medical.tasks import MedicalClassifier, Segmenter, stack_volumes


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


def test_classify_logs_accuracy_and_auc_and_predicts_a_csv(runs):
    cli = run_task("fit", "medical.classify", [], runs_dir=runs, quick=True)
    run_dir = Path(cli.trainer.logger.log_dir)
    assert {"val/acc", "val/auc"} <= set(cli.trainer.callback_metrics)
    assert (run_dir / "plots" / "val_confusion.png").is_file()
    cli = run_task("predict", "medical.classify", ["--ckpt_path", "last"], runs_dir=runs, quick=True)
    rows = list(csv.DictReader(open(run_dir / "predict" / "predictions.csv")))
    assert rows[0]["item"].startswith("synthetic#") and {"p_liver", "p_kidney", "p_both"} <= set(rows[0])


def test_segment_reports_dice_and_overlays_and_writes_masks_of_a_folder(runs, tmp_path):
    cli = run_task("fit", "medical.segment", [], runs_dir=runs, quick=True)
    run_dir = Path(cli.trainer.logger.log_dir)
    logged = set(cli.trainer.callback_metrics)
    assert {"val/dice", "val/dice_liver", "val/dice_kidney", "val/iou", "val/hd95", "val/hd95_kidney"} <= logged
    assert (run_dir / "plots" / "val_overlays.png").is_file()
    rows = list(csv.DictReader(open(run_dir / "val_metrics.csv")))
    assert [r["class"] for r in rows] == ["liver", "kidney"] and {"dice", "iou", "hd95"} <= set(rows[0])
    Image.fromarray(np.full((40, 36), 90, np.uint8)).save(tmp_path / "scan.png")  # larger than the 32 px window
    volume = np.random.default_rng(0).uniform(0, 255, (40, 36, 3)).astype(np.float32)  # read as 3 slices
    nib.save(nib.Nifti1Image(volume, np.eye(4)), tmp_path / "vol.nii.gz")
    args = ["--ckpt_path", "last", "--data.predict_root", str(tmp_path)]
    run_task("predict", "medical.segment", args, runs_dir=runs, quick=True)
    predictions = run_dir / "predict" / "predictions"
    mask = np.asarray(Image.open(predictions / "scan.png"))
    assert mask.shape == (40, 36) and set(np.unique(mask)) <= {0, 1, 2}
    stacked = np.asarray(nib.load(predictions / "vol.nii.gz").dataobj)  # the slices' masks back in one volume
    assert stacked.shape == (40, 36, 3) and set(np.unique(stacked)) <= {0, 1, 2}
    assert sorted(p.name for p in predictions.iterdir()) == ["overlays.png", "scan.png", "vol.nii.gz"]


def test_sliced_predictions_stack_back_into_their_volumes_in_slice_order():
    masks = [np.full((2, 2), k) for k in range(5)]
    names = ["a_z000", "a_z001", "img", "b_z000", "a_z002"]
    stacked = stack_volumes(names, ["a", "a", None, "b", "a"], masks)
    assert sorted(stacked) == ["a", "b", "img"]
    assert stacked["a"].shape == (2, 2, 3) and list(stacked["a"][0, 0]) == [0, 1, 4]
    assert stacked["img"].shape == (2, 2) and stacked["b"].shape == (2, 2, 1)


@pytest.mark.parametrize("name", ["dynunet", "unet"])
def test_the_segmentation_baselines_run_in_the_same_task(name):
    task = Segmenter(model_name=name, n_classes=2, patch_size=[16, 16], model_kwargs={"filters": [4, 8, 16]})
    assert task(torch.randn(1, 1, 16, 16)).shape == (1, 2, 16, 16)


def test_resnet18_is_the_classification_baseline_built_from_scratch():
    task = MedicalClassifier(model_name="resnet18", n_classes=2, in_chans=1)
    assert task(torch.randn(2, 1, 28, 28)).shape == (2, 2)
