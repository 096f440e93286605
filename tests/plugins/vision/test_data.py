"""Image sources and bad input: mixed modes, corrupt files, sizes off the patch grid, empty class folders."""

import numpy as np
import pytest
from PIL import Image

from ssmkit_vision.data import fit_image, read_arrays, read_image_folder
from ssmkit_vision.datamodules import ImageClassificationData, stratified_split


def write_folder(root, sizes=((28, 28),), modes=("L",), per_class=3, classes=("cat", "dog")):
    """root/<class>/<i>.png with cycling sizes and modes; returns root."""
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            w, h = sizes[i % len(sizes)]
            mode = modes[i % len(modes)]
            channels = {"L": 1, "RGB": 3, "RGBA": 4, "P": 1}[mode]
            pixels = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
            pixels = pixels[..., 0] if channels == 1 else pixels
            img = Image.fromarray(pixels, "L" if mode == "P" else None)
            (img.convert("P") if mode == "P" else img).save(root / c / f"{i}.png")
    return root


def first_batch(data, stage="fit"):
    data.setup(stage)
    return next(iter(data.train_dataloader()))


@pytest.mark.parametrize(("mode", "channels"), [("L", 1), ("RGB", 3)])
def test_mixed_image_modes_are_converted_to_the_configured_one(tmp_path, mode, channels):
    root = write_folder(tmp_path / "imgs", modes=("L", "RGB", "RGBA", "P"), per_class=4)
    data = ImageClassificationData(root=str(root), mode=mode, image_size=28, val_fraction=0.25, batch_size=8)
    images, labels = first_batch(data)
    assert images.shape == (6, channels, 28, 28) and data.classes == ["cat", "dog"]
    assert data.in_chans == channels and set(labels.tolist()) <= {0, 1}


def test_corrupt_and_non_image_files_are_reported_with_their_paths(tmp_path):
    root = write_folder(tmp_path / "imgs")
    (root / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / "dog" / ".DS_Store").write_bytes(b"\0\0")  # hidden files are ignored
    with pytest.raises(ValueError, match="2 corrupt or non-image") as err:
        read_image_folder(root)
    assert str(root / "cat" / "broken.png") in str(err.value) and str(root / "dog" / "notes.txt") in str(err.value)
    with pytest.warns(UserWarning, match="broken.png"):
        samples = read_image_folder(root, on_bad_file="skip")
    assert len(samples) == 6


def test_an_empty_class_folder_is_an_error_naming_it(tmp_path):
    root = write_folder(tmp_path / "imgs")
    (root / "zebra").mkdir()
    with pytest.raises(ValueError, match=r"class folder .*zebra is empty"):
        read_image_folder(root)
    (root / "zebra" / "junk.jpg").write_bytes(b"junk")
    with pytest.raises(ValueError, match=r"zebra holds no readable image"):
        read_image_folder(root, on_bad_file="skip")


@pytest.mark.parametrize("fit", ["resize", "pad"])
def test_sizes_off_the_patch_grid_are_resized_or_padded_as_configured(tmp_path, fit):
    root = write_folder(tmp_path / "imgs", sizes=((30, 30), (26, 19), (41, 28)))
    data = ImageClassificationData(root=str(root), image_size=28, fit=fit, val_fraction=0.34, batch_size=8)
    images, _ = first_batch(data)
    assert images.shape[1:] == (1, 28, 28)


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
    with pytest.raises(ValueError, match=r"rows have 37 values, expected 25 pixels"):
        read_arrays(tmp_path / "a.csv", image_shape=[5, 5])
    with pytest.raises(ValueError, match="needs image_shape"):
        read_arrays(tmp_path / "a.csv")
    np.savez(tmp_path / "nan.npz", images=np.full((2, 4, 4), np.nan), labels=np.zeros(2))
    with pytest.raises(ValueError, match="sample 0 contains NaN"):
        read_arrays(tmp_path / "nan.npz")


def test_digits_are_the_bundled_default_with_a_stratified_split():
    data = ImageClassificationData(image_size=16, val_fraction=0.2)
    data.setup("fit")
    assert len(data.train_set) + len(data.val_set) == 1797 and data.num_classes == 10
    image, label = data.val_set[0]
    assert image.shape == (1, 16, 16) and 0 <= label < 10
    train, val = stratified_split(np.repeat(np.arange(10), 500), 0.1, seed=0)
    assert len(val) == 500 and np.bincount(np.repeat(np.arange(10), 500)[val]).tolist() == [50] * 10
    assert not set(train) & set(val)
