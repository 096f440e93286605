"""The classify task's sources: MedMNIST npz, image folders (the repo's PneumoniaMNIST sample), synthetic organs."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ssmkit.data import DataError
from ssmkit_medical.data import read_image_folder, read_medmnist
from ssmkit_medical.datamodules import MedicalImageData

REPO = Path(__file__).parents[3]
SHARED = REPO.parent / "shared" / "data" / "medical"


def write_npz(path, splits=("train", "val"), n=12, shape=(28, 28)):
    rng = np.random.default_rng(0)
    arrays = {}
    for split in splits:
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 2).reshape(n, 1)  # MedMNIST's (N, 1)
    np.savez(path, **arrays)
    return path


def test_a_medmnist_file_gives_its_splits_and_val_serves_test(tmp_path):
    data = MedicalImageData(npz=str(write_npz(tmp_path / "m.npz")), classes=["a", "b"], image_size=16)
    assert (data.classes, data.n_classes, data.in_chans) == (["a", "b"], 2, 1)
    data.setup("fit")
    image, label = data.datasets["val"][1]
    assert image.shape == (1, 16, 16) and label == 1 and -1 <= image.min() <= image.max() <= 1
    assert data.serving_split("test")[0] == "val" and data.item_names("test")[:2] == ["val#0", "val#1"]


def test_a_medmnist_file_without_train_or_with_bad_labels_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="lacks train_images"):
        read_medmnist(write_npz(tmp_path / "v.npz", splits=("val",)))
    path = write_npz(tmp_path / "m.npz")
    with pytest.raises(DataError, match=r"record train #1: label 1 outside the 1 classes \['x'\]"):
        read_medmnist(path, classes=["x"])


def test_colour_medmnist_images_give_three_channels(tmp_path):
    data = MedicalImageData(npz=str(write_npz(tmp_path / "c.npz", shape=(28, 28, 3))))
    assert data.in_chans == 3


def test_the_repo_image_folder_sample():
    data = MedicalImageData(root=str(REPO / "data" / "medical" / "pneumoniamnist"), val_fraction=0.25)
    assert (data.classes, data.in_chans) == (["normal", "pneumonia"], 1)
    data.setup("fit")
    assert len(data.datasets["train"]) == 12 and len(data.datasets["val"]) == 4
    assert data.item_names("val")[0].endswith(".png")


def test_a_folder_mixing_grey_and_colour_images_is_a_data_error(tmp_path):
    for name, mode in (("a", "L"), ("b", "RGB")):
        (tmp_path / name).mkdir()
        Image.new(mode, (8, 8)).save(tmp_path / name / "x.png")
    with pytest.raises(DataError, match="mixes grey .* and colour"):
        read_image_folder(tmp_path)


def test_the_synthetic_default_is_balanced_over_three_classes():
    data = MedicalImageData(n_synthetic=30, image_size=16)
    data.setup("fit")
    assert data.classes == ["liver", "kidney", "both"] and data.in_chans == 1
    assert len(data.datasets["train"]) == 24 and len(data.datasets["val"]) == 6


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/medical is absent")
def test_the_shared_pneumoniamnist_file():
    data = MedicalImageData(npz=str(SHARED / "pneumoniamnist_trainval.npz"), classes=["normal", "pneumonia"])
    data.setup("fit")
    assert len(data.datasets["train"]) == 4707 and len(data.datasets["val"]) == 524
