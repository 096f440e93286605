"""The synthetic organs: deterministic, and the labels say which organs the masks hold."""

import numpy as np

from ssmkit_medical.synthetic import synthetic_long_range, synthetic_organs


def test_the_same_arguments_give_the_same_images_and_labels_match_masks():
    images, masks, labels = synthetic_organs(9, size=32, seed=3)
    again = synthetic_organs(9, size=32, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((images, masks, labels), again, strict=True))
    assert images.shape == (9, 32, 32) and images.dtype == np.float32 and 0 <= images.min() <= images.max() <= 1
    assert labels.tolist() == [0, 1, 2] * 3 and set(np.unique(masks)) == {0, 1, 2}
    for mask, label in zip(masks, labels, strict=True):
        assert ((mask == 1).any(), (mask == 2).any()) == {0: (True, False), 1: (False, True), 2: (True, True)}[label]


def test_the_long_range_target_is_the_blob_on_the_markers_side_and_its_twin_is_background():
    images, masks = synthetic_long_range(4, size=32, seed=1)
    assert masks.shape == (4, 32, 32) and set(np.unique(masks)) == {0, 1}
    for i, mask in enumerate(masks):
        columns = np.flatnonzero(mask.any(0))
        assert (columns.min() >= 16) if i % 2 else (columns.max() < 16)  # odd: marker and target on the right
        twin = mask[:, ::-1].astype(bool)  # the other blob: as bright, not foreground
        assert not (twin & mask.astype(bool)).any()
        assert abs(images[i][twin].mean() - images[i][mask == 1].mean()) < 0.05 < images[i][mask == 0].mean() < 0.4
