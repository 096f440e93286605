import numpy as np
import pytest

from ssmkit.data import DataError, group_split, stratified_split, time_split


def test_stratified_split_takes_the_rounded_fraction_of_every_class():
    labels = np.array([0] * 13 + [1] * 10 + [2] * 1)
    train, val = stratified_split(labels, 0.2, seed=0)
    assert np.bincount(labels[val]).tolist() == [3, 2, 1]  # round(2.6), round(2.0), at least one
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(len(labels)))
    assert (stratified_split(labels, 0.2, seed=0)[1] == val).all()
    assert not (stratified_split(labels, 0.2, seed=1)[1] == val).all()
    with pytest.raises(ValueError, match="val_fraction"):
        stratified_split(labels, 1.0, seed=0)


def test_time_split_keeps_the_order_and_names_the_source():
    parts = time_split(100, 0.15, 0.1, "x.csv")
    assert parts == {"train": slice(0, 75), "val": slice(75, 90), "test": slice(90, 100)}
    with pytest.raises(DataError, match=r"^x.csv: 5 rows"):
        time_split(5, 0.1, 0.1, "x.csv")


def test_group_split_by_subject():
    groups = ["s1", "s2", "s1", "s3", "s2"]
    parts = group_split(groups, ["s2"], ["s3"], "imu")
    assert {k: v.tolist() for k, v in parts.items()} == {"train": [0, 2], "val": [1, 4], "test": [3]}
    with pytest.raises(DataError, match=r"groups \['s9'\] do not occur"):
        group_split(groups, ["s9"], ["s3"], "imu")
    with pytest.raises(DataError, match="in both val and test"):
        group_split(groups, ["s2"], ["s2", "s3"], "imu")
    with pytest.raises(DataError, match=r"no samples for split\(s\) \['train'\]"):
        group_split(["a", "b"], ["a"], ["b"], "imu")
    no_val = group_split(groups, [], ["s3"], "imu")  # no val groups: val is the caller's to fill
    assert {k: v.tolist() for k, v in no_val.items()} == {"train": [0, 1, 2, 4], "val": [], "test": [3]}
