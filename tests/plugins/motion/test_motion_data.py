"""MotionData: shapes, splits, labels, named errors."""

from pathlib import Path

import pytest
import torch
import yaml

import ssmkit_motion
from ssmkit.data import DataError
from ssmkit_motion.datamodules import MotionData

CONFIGS = Path(ssmkit_motion.__file__).parent / "configs"
REPO = Path(__file__).resolve().parents[3]
SMALL = {"window": 16, "n_train": 8, "n_val": 8, "n_test": 8, "n_clips": 1, "clip_seconds": 2.0}


def test_procedural_windows_and_splits():
    data = MotionData(**SMALL)
    data.setup("fit")
    x, label = data.datasets["train"][0]
    assert x.shape == (16, data.n_features) == (16, 126) and x.dtype == torch.float32 and 0 <= label < 7
    assert data.classes[0] == "walk" and data.n_classes == 7
    train, val = data.split_clips["train"], data.split_clips["val"]
    assert len(train) == 14 and len(val) == 7  # mirrored copies in train only
    assert {c.name for c in train}.isdisjoint(c.name for c in val)


def test_predict_serves_the_requested_labels():
    data = MotionData(**SMALL, labels="walk,jump", n_samples=2)
    data.setup("predict")
    assert [label for _, label in data.datasets["predict"]] == [0, 0, 2, 2]
    assert len(data.item_names("predict")) == 4


def test_unknown_labels_are_data_errors(tmp_path, shared_motion):
    data = MotionData(**SMALL, labels="walk,moonwalk")
    with pytest.raises(DataError, match=r"--data.labels: unknown label\(s\) \['moonwalk'\]"):
        data.setup("predict")
    with pytest.raises(DataError, match="unknown label"):
        MotionData(root=str(shared_motion / "deepmimic"), clips=["walk", "moonwalk"], **SMALL).setup("fit")


def test_deepmimic_folder(shared_motion):
    data = MotionData(root=str(shared_motion / "deepmimic"), clips=["walk", "jump", "kick"], **SMALL)
    assert data.classes == ["jump", "kick", "walk"] and data.n_features == 126
    data.setup("fit")
    assert data.real_windows("val")[0].shape == (8, 16, 126)


def test_a_folder_without_motion_files_is_a_data_error(tmp_path):
    (tmp_path / "notes.md").write_text("x")
    with pytest.raises(DataError, match="no .bvh or DeepMimic"):
        _ = MotionData(root=str(tmp_path)).classes


@pytest.mark.parametrize("task", ["classify", "generate"])
def test_deepmimic_configs_read_the_15_shared_takes(task, shared_motion, monkeypatch):
    data_config = yaml.safe_load((CONFIGS / f"{task}_deepmimic.yaml").read_text())["data"]
    monkeypatch.chdir(REPO)  # the configs' root is relative to the repo root
    data = MotionData(**data_config)
    assert Path(data.root).resolve() == (shared_motion / "deepmimic").resolve()
    assert data.n_classes == 15 and "backflip" in data.classes and data.n_features == 126


def test_deepmimic_config_without_the_shared_folder_says_where_it_looked(tmp_path, monkeypatch):
    data_config = yaml.safe_load((CONFIGS / "classify_deepmimic.yaml").read_text())["data"]
    monkeypatch.chdir(tmp_path)  # no ../shared here
    with pytest.raises(DataError, match=r"deepmimic: no such folder .*current directory.*\.\./shared/data/motion"):
        _ = MotionData(**data_config).classes
