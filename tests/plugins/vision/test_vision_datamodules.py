"""`ImageClassificationData`: modes and sizes, digits by default, what the model reads from it before setup, and
the validation / test / predict splits (a test set of its own, or the validation split in its place)."""

import logging

import numpy as np
import pytest

from ssmkit.data import DataError, stratified_split
from ssmkit_vision.datamodules import ImageClassificationData


def first_batch(data, stage="fit"):
    data.setup(stage)
    return next(iter(data.train_dataloader()))


@pytest.mark.parametrize(("mode", "channels"), [("L", 1), ("RGB", 3)])
def test_mixed_image_modes_are_converted_to_the_configured_one(tmp_path, write_folder, mode, channels):
    root = write_folder(tmp_path / "imgs", modes=("L", "RGB", "RGBA", "P"), per_class=4)
    data = ImageClassificationData(root=str(root), mode=mode, image_size=28, val_fraction=0.25, batch_size=8)
    images, labels = first_batch(data)
    assert images.shape == (6, channels, 28, 28) and data.classes == ["cat", "dog"]
    assert data.in_chans == channels and set(labels.tolist()) <= {0, 1}


@pytest.mark.parametrize("fit", ["resize", "pad"])
def test_sizes_off_the_patch_grid_are_resized_or_padded_as_configured(tmp_path, write_folder, fit):
    root = write_folder(tmp_path / "imgs", sizes=((30, 30), (26, 19), (41, 28)))
    data = ImageClassificationData(root=str(root), image_size=28, fit=fit, val_fraction=0.34, batch_size=8)
    images, _ = first_batch(data)
    assert images.shape[1:] == (1, 28, 28)


def test_digits_are_the_bundled_default_with_a_stratified_split():
    data = ImageClassificationData(image_size=16, val_fraction=0.2)
    data.setup("fit")
    train_set, val_set = data.datasets["train"], data.datasets["val"]
    assert len(train_set) + len(val_set) == 1797 and data.n_classes == 10
    image, label = val_set[0]
    assert image.shape == (1, 16, 16) and 0 <= label < 10
    train, val = stratified_split(np.repeat(np.arange(10), 500), 0.1, seed=0)
    assert len(val) == 500 and np.bincount(np.repeat(np.arange(10), 500)[val]).tolist() == [50] * 10
    assert not set(train) & set(val)


def test_what_the_model_takes_is_known_right_after_construction(tmp_path, write_folder):
    """The command line links n_classes, in_chans and image_size to the model before any setup: a folder's
    classes are its folder names (no image opened: a corrupt one fails only at setup), arrays' their labels."""
    root = write_folder(tmp_path / "imgs", classes=("cat", "dog", "emu"))
    (root / "cat" / "broken.png").write_bytes(b"not a png")
    folder = ImageClassificationData(root=str(root), mode="RGB", image_size=32)
    assert (folder.classes, folder.n_classes, folder.in_chans, folder.image_size) == (["cat", "dog", "emu"], 3, 3, 32)
    assert folder.datasets == {}
    with pytest.raises(DataError, match="1 corrupt or non-image"):
        folder.setup("fit")
    np.savez(tmp_path / "a.npz", images=np.zeros((6, 8, 8), np.uint8), labels=np.repeat([4, 2, 9], 2))
    arrays = ImageClassificationData(arrays=str(tmp_path / "a.npz"))
    assert (arrays.classes, arrays.n_classes, arrays.in_chans) == (["2", "4", "9"], 3, 1)
    assert ImageClassificationData().n_classes == 10  # digits


def test_a_test_folder_is_the_test_split_and_serves_predict(tmp_path, write_folder):
    root = write_folder(tmp_path / "train", per_class=5)
    test_root = write_folder(tmp_path / "test", per_class=2)
    data = ImageClassificationData(root=str(root), test_root=str(test_root), image_size=28, batch_size=4)
    data.setup("fit")
    data.setup("test")
    assert len(data.datasets["train"]) + len(data.datasets["val"]) == 10 and len(data.datasets["test"]) == 4
    images, labels = next(iter(data.test_dataloader()))
    assert images.shape == (4, 1, 28, 28) and labels.tolist() == [0, 0, 1, 1]
    data.setup("predict")  # no predict_root: the test set
    assert data.item_names("predict") == [str(test_root / c / f"{i}.png") for c in ("cat", "dog") for i in range(2)]


def test_test_arrays_are_the_test_split(tmp_path):
    rng = np.random.default_rng(0)
    for name, n in (("train", 20), ("test", 6)):
        labels = np.arange(n) % 2 + 3
        np.savez(tmp_path / f"{name}.npz", images=rng.integers(0, 256, (n, 8, 8), dtype=np.uint8), labels=labels)
    data = ImageClassificationData(arrays=str(tmp_path / "train.npz"), test_arrays=str(tmp_path / "test.npz"))
    data.setup("test")
    assert sorted(data.datasets) == ["test"] and len(data.datasets["test"]) == 6
    assert data.datasets["test"].labels.tolist() == [0, 1] * 3 and data.classes == ["3", "4"]
    assert data.item_names("test") == [f"#{i}" for i in range(6)]


def test_a_test_set_with_other_classes_is_a_data_error_naming_it(tmp_path, write_folder):
    root = write_folder(tmp_path / "train")
    other = write_folder(tmp_path / "test", classes=("cat", "cow"))
    data = ImageClassificationData(root=str(root), test_root=str(other))
    with pytest.raises(DataError, match=rf"{other}: classes \['cat', 'cow'\] differ from the training classes"):
        data.setup("test")
    np.savez(tmp_path / "t.npz", images=np.zeros((4, 8, 8), np.uint8), labels=np.arange(4))
    data = ImageClassificationData(test_arrays=str(tmp_path / "t.npz"))  # digits: 10 classes
    with pytest.raises(DataError, match=r"t\.npz: classes \['0', '1', '2', '3'\] differ"):
        data.setup("test")
    with pytest.raises(ValueError, match="give test_root .* or test_arrays .*, not both"):
        ImageClassificationData(test_root=str(other), test_arrays=str(tmp_path / "t.npz"))


def test_without_a_test_set_the_validation_split_serves_test_and_says_so(caplog):
    data = ImageClassificationData(image_size=16, batch_size=500)
    data.setup("test")
    with caplog.at_level(logging.INFO):
        images, labels = next(iter(data.test_dataloader()))
    assert "no test split; using the val split for test" in caplog.text
    assert "test" not in data.datasets and len(images) == len(data.datasets["val"]) == 359
