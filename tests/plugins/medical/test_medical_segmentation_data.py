"""The segment task's data: PNG / NIfTI / DICOM through MONAI's LoadImage, and named errors for bad pairs."""

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from ssmkit.data import DataError
from ssmkit_medical.segmentation_data import SegmentationData, load, read_pairs

REPO = Path(__file__).parents[3]
SHARED = REPO.parent / "shared" / "data" / "medical"


def write_pairs(root, n=3, mask_size=(12, 10), values=(0, 255)):
    """root/image/<i>.png (12 x 10 grey) and root/label/<i>.png holding `values`."""
    (root / "image").mkdir(parents=True)
    (root / "label").mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (12, 10), dtype=np.uint8)).save(root / "image" / f"{i}.png")
        mask = np.zeros(mask_size, np.uint8)
        mask[: len(values), 0] = values
        Image.fromarray(mask).save(root / "label" / f"{i}.png")
    return root


def test_png_pairs_map_raw_mask_values_to_classes_rows_first(tmp_path):
    pairs = read_pairs(write_pairs(tmp_path), "image", "label", [0, 255])
    assert [p.name for p in pairs] == ["0", "1", "2"]
    assert pairs[0].image.shape == (1, 12, 10) and pairs[0].mask.shape == (1, 12, 10)
    assert pairs[0].mask[0, :2, 0].tolist() == [0, 1] and float(pairs[0].image.max()) == 1.0


def test_image_and_mask_of_different_sizes_is_a_data_error(tmp_path):
    data = SegmentationData(root=str(write_pairs(tmp_path, mask_size=(12, 11))), label_values=[0, 255])
    with pytest.raises(DataError, match=r"image 0 is \[12, 10\] but its mask is \[12, 11\]"):
        data.setup("fit")


def test_unexpected_mask_values_are_a_data_error_naming_the_file(tmp_path):
    root = write_pairs(tmp_path, values=(0, 1, 2))
    with pytest.raises(DataError, match=r"label/0.png: unexpected mask values \[2\]; expected label_values \[0, 1\]"):
        SegmentationData(root=str(root)).setup("fit")  # a non-binary mask for a binary task


def test_nifti_volumes_and_a_corrupt_nifti(tmp_path):
    (tmp_path / "image").mkdir()
    (tmp_path / "label").mkdir()
    nib.save(nib.Nifti1Image(np.random.rand(8, 6, 4).astype(np.float32), np.eye(4)), tmp_path / "image" / "a.nii.gz")
    nib.save(nib.Nifti1Image(np.ones((8, 6, 4), np.uint8), np.eye(4)), tmp_path / "label" / "a.nii.gz")
    (pair,) = read_pairs(tmp_path, "image", "label", [0, 1])
    assert pair.name == "a" and pair.image.shape == (1, 8, 6, 4) and int(pair.mask.sum()) == 8 * 6 * 4
    (tmp_path / "image" / "a.nii.gz").write_bytes(b"not a volume")
    with pytest.raises(DataError, match=r"image/a.nii.gz: cannot be read"):
        read_pairs(tmp_path, "image", "label", [0, 1])


def test_a_dicom_slice_reads_through_pydicom_and_a_corrupt_one_is_a_data_error(tmp_path):
    assert load(REPO / "data" / "medical" / "dicom" / "CT_small.dcm").shape == (1, 128, 128)
    (tmp_path / "bad.dcm").write_bytes(b"DICM" + bytes(200))
    with pytest.raises(DataError, match=r"bad.dcm: cannot be read"):
        load(tmp_path / "bad.dcm")


def test_the_long_range_variant_has_two_classes():
    data = SegmentationData(synthetic="long_range", n_synthetic=4, synthetic_size=32)
    assert (data.n_classes, data.classes) == (2, ["background", "target"])
    with pytest.raises(ValueError, match="synthetic must be one of"):
        SegmentationData(synthetic="lungs")


def test_synthetic_patches_and_whole_validation_images():
    data = SegmentationData(n_synthetic=10, synthetic_size=32, patch_size=[16, 16], batch_size=4)
    assert (data.n_classes, data.in_channels, data.classes) == (3, 1, ["background", "liver", "kidney"])
    data.setup("fit")
    images, masks = next(iter(data.train_dataloader()))
    assert images.shape == (4, 1, 16, 16) and masks.shape == (4, 1, 16, 16) and masks.dtype.is_floating_point is False
    assert data.datasets["val"][0][0].shape == (1, 32, 32) and len(data.datasets["val"]) == 2


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/medical is absent")
def test_isbi_2012_trains_on_16_pairs_and_validates_on_4():
    data = SegmentationData(root=str(SHARED / "isbi2012_em"), label_values=[0, 255], patch_size=[64, 64])
    data.setup("fit")
    assert len(data.datasets["train"]) == 16 and len(data.datasets["val"]) == 4


def write_series(folder, n_slices=4):
    """A DICOM series of `n_slices` copies of data/medical/dicom/CT_small.dcm, slice k offset by 100 k, written in
    shuffled file order (InstanceNumber and the z position say the order)."""
    import pydicom

    source = pydicom.dcmread(REPO / "data" / "medical" / "dicom" / "CT_small.dcm")
    folder.mkdir(parents=True)
    for k in (2, 0, 3, 1)[:n_slices]:
        ds = pydicom.dcmread(REPO / "data" / "medical" / "dicom" / "CT_small.dcm")
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [*source.ImagePositionPatient[:2], float(source.ImagePositionPatient[2]) + 5 * k]
        ds.PixelData = (source.pixel_array.astype(np.int16) + 100 * k).tobytes()
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.save_as(folder / f"file_{(3 * k + 1) % n_slices}.dcm")
    return source.pixel_array.astype(np.float64)


def test_a_dicom_series_folder_is_a_volume_in_slice_order(tmp_path):
    first = write_series(tmp_path / "image" / "ct")
    (tmp_path / "label").mkdir()
    nib.save(nib.Nifti1Image(np.zeros((128, 128, 4), np.uint8), np.eye(4)), tmp_path / "label" / "ct.nii.gz")
    (pair,) = read_pairs(tmp_path, "image", "label", [0, 1])
    assert pair.name == "ct" and pair.image.shape == (1, 128, 128, 4)
    raw = load(tmp_path / "image" / "ct")[0].double()  # before intensity scaling: slice k is the first + 100 k
    means = [float(raw[..., k].mean()) for k in range(4)]
    assert np.allclose(np.diff(means), 100.0) and abs(means[0] - (first.mean() - 1024)) < 1e-6  # rescale -1024


def test_volumes_train_on_their_slices_with_a_2d_patch(tmp_path):
    write_series(tmp_path / "image" / "ct")
    write_series(tmp_path / "image" / "ct2")
    (tmp_path / "label").mkdir()
    for name in ("ct", "ct2"):
        nib.save(nib.Nifti1Image(np.ones((128, 128, 4), np.uint8), np.eye(4)), tmp_path / "label" / f"{name}.nii.gz")
    data = SegmentationData(root=str(tmp_path), patch_size=[32, 32], batch_size=2)
    assert [p.name for p in data.pairs][:5] == ["ct_z000", "ct_z001", "ct_z002", "ct_z003", "ct2_z000"]
    assert {tuple(p.image.shape) for p in data.pairs} == {(1, 128, 128)}
    data.setup("fit")
    images, masks = next(iter(data.train_dataloader()))
    assert images.shape == (2, 1, 32, 32) and masks.shape == (2, 1, 32, 32)
