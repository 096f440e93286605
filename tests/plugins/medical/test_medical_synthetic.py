"""The synthetic organs: deterministic, and the labels say which organs the masks hold."""

import numpy as np

from ssmkit_medical.synthetic import synthetic_organs


def test_the_same_arguments_give_the_same_images_and_labels_match_masks():
    images, masks, labels = synthetic_organs(9, size=32, seed=3)
    again = synthetic_organs(9, size=32, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((images, masks, labels), again, strict=True))
    assert images.shape == (9, 32, 32) and images.dtype == np.float32 and 0 <= images.min() <= images.max() <= 1
    assert labels.tolist() == [0, 1, 2] * 3 and set(np.unique(masks)) == {0, 1, 2}
    for mask, label in zip(masks, labels, strict=True):
        assert ((mask == 1).any(), (mask == 2).any()) == {0: (True, False), 1: (False, True), 2: (True, True)}[label]
