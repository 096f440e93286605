"""Image sources (ssmkit_vision.data) and bad input: corrupt files, empty class folders, arrays, padding."""

import numpy as np
import pytest
from PIL import Image

from ssmkit.data import DataError
from ssmkit_vision.data import class_folders, fit_image, read_arrays, read_image_folder


def test_corrupt_and_non_image_files_are_reported_with_their_paths(tmp_path, write_folder):
    root = write_folder(tmp_path / "imgs")
    (root / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / "dog" / ".DS_Store").write_bytes(b"\0\0")  # hidden files are ignored
    with pytest.raises(DataError, match="2 corrupt or non-image") as err:
        read_image_folder(root)
    assert str(root / "cat" / "broken.png") in str(err.value) and str(root / "dog" / "notes.txt") in str(err.value)
    with pytest.warns(UserWarning, match="broken.png"):
        samples = read_image_folder(root, on_bad_file="skip")
    assert len(samples) == 6


def test_an_empty_class_folder_is_an_error_naming_it(tmp_path, write_folder):
    root = write_folder(tmp_path / "imgs")
    (root / "zebra").mkdir()
    with pytest.raises(DataError, match=r"class folder .*zebra is empty"):
        read_image_folder(root)
    (root / "zebra" / "junk.jpg").write_bytes(b"junk")
    with pytest.raises(DataError, match=r"zebra holds no readable image"):
        read_image_folder(root, on_bad_file="skip")


def test_class_folders_are_listed_without_opening_an_image(tmp_path, write_folder):
    root = write_folder(tmp_path / "imgs", classes=("b", "a"))
    (root / "a" / "junk.png").write_bytes(b"junk")  # not opened here
    (root / ".cache").mkdir()
    assert [d.name for d in class_folders(root)] == ["a", "b"]
    with pytest.raises(DataError, match="no class folders"):
        class_folders(root / "a")
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        class_folders(tmp_path / "nowhere")


def test_padding_centres_the_image_and_shrinks_larger_ones():
    small = fit_image(Image.new("L", (20, 10), 255), (28, 28), "pad")
    pixels = np.asarray(small)
    assert small.size == (28, 28) and pixels[9:19, 4:24].min() == 255 and pixels[:9].max() == 0
    large = fit_image(Image.new("L", (56, 28), 255), (28, 28), "pad")
    assert large.size == (28, 28) and np.asarray(large)[7:21].min() == 255 and np.asarray(large)[:7].max() == 0


def test_arrays_from_npz_and_csv(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (12, 6, 6)).astype(np.uint8)
    labels = np.repeat([3, 7, 9], 4)
    np.savez(tmp_path / "a.npz", images=images, labels=labels)
    samples = read_arrays(tmp_path / "a.npz")
    assert samples.classes == ["3", "7", "9"] and samples.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    np.savetxt(tmp_path / "a.csv", np.c_[images.reshape(12, -1), labels], delimiter=",", fmt="%d")
    from_csv = read_arrays(tmp_path / "a.csv", image_shape=[6, 6])
    np.testing.assert_array_equal(np.stack(from_csv.items), images)
    with pytest.raises(DataError, match=r"rows have 37 values, expected 25 pixels"):
        read_arrays(tmp_path / "a.csv", image_shape=[5, 5])
    with pytest.raises(DataError, match="needs image_shape"):
        read_arrays(tmp_path / "a.csv")
    np.savez(tmp_path / "nan.npz", images=np.full((2, 4, 4), np.nan), labels=np.zeros(2))
    with pytest.raises(DataError, match="sample 0 contains NaN"):
        read_arrays(tmp_path / "nan.npz")
