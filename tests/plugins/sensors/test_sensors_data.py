"""Reading sensor data: every bad input in the issue gets an error (or a handling) that names the problem."""

import logging

import numpy as np
import pandas as pd
import pytest
import torch

from ssmkit.data import DataError, window_starts
from ssmkit_sensors.datamodules import ClassificationData, ForecastData, Seq2SeqData
from ssmkit_sensors.readers import handle_missing, read_table, read_ts


def write_csv(path, n=60, seed=0, **overrides):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "date": pd.date_range("2020-01-01", periods=n, freq="h").astype(str),
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
        }
    )
    frame["y"] = frame["a"].cumsum()
    for column, values in overrides.items():
        frame[column] = values
    frame.to_csv(path, index=False)
    return path


def seq2seq(path, **kw):
    args = {"input_columns": ["a", "b"], "target_columns": ["y"], "date_column": "date", "window": 10, "stride": 5}
    return Seq2SeqData(str(path), **{**args, **kw})


def with_holes(n=60):
    a = np.arange(n, dtype=float)
    a[7], a[31] = np.nan, np.inf
    return a


def test_nan_and_inf_are_reported_with_column_and_row_then_fail(tmp_path):
    data = seq2seq(write_csv(tmp_path / "x.csv", a=with_holes()), missing="fail")
    with pytest.raises(DataError, match=r"column 'a': 2 NaN/inf.*row 7 \(2020-01-01 07:00:00\), row 31"):
        data.setup("fit")


def test_interpolate_fills_linearly_and_warns(tmp_path, caplog):
    data = seq2seq(
        write_csv(tmp_path / "x.csv", a=with_holes()), missing="interpolate", val_fraction=0.2, test_fraction=0.2
    )
    with caplog.at_level(logging.WARNING):
        data.setup("fit")
    assert "column 'a'" in caplog.text and "row 7" in caplog.text and "interpolate" in caplog.text
    holes = np.arange(10.0)
    holes[[0, 3, 6]] = [np.nan, np.inf, np.nan]
    frame, _ = handle_missing(pd.DataFrame({"a": holes}), ["a"], "interpolate", "t")
    assert frame["a"].tolist() == [1.0, *range(1, 10)]  # inner holes linear, the first held


def test_drop_removes_exactly_the_windows_touching_a_bad_row():
    valid = np.ones(30, bool)
    valid[12] = False
    assert window_starts(valid, 5, 1, "t").tolist() == [s for s in range(26) if not s <= 12 < s + 5]


def test_drop_policy_in_a_data_module(tmp_path):
    data = seq2seq(write_csv(tmp_path / "x.csv", a=with_holes()), missing="drop", val_fraction=0.2, test_fraction=0.2)
    data.setup("fit")
    x, _ = data.datasets["train"][0]
    assert len(data.datasets["train"]) == 3  # train rows 0..35, starts 0, 5, ... 25 minus those touching 7 or 31
    assert all(torch.isfinite(data.datasets["train"][i][0]).all() for i in range(3)) and x.shape == (10, 2)


def test_masked_targets_stay_missing_while_inputs_are_interpolated(tmp_path, caplog):
    y = np.arange(60.0)
    y[[3, 12]] = np.nan
    path = write_csv(tmp_path / "x.csv", a=with_holes(), y=y)
    data = seq2seq(path, missing="interpolate", mask_missing_targets=True, val_fraction=0.2, test_fraction=0.2)
    with caplog.at_level(logging.INFO):
        data.setup("fit")
    assert "column 'y': 2 NaN" in caplog.text and "mask_missing_targets" in caplog.text
    x0, y0 = data.datasets["train"][0]
    _, y1 = data.datasets["train"][2]  # rows 10..19
    assert torch.isfinite(x0).all() and torch.isnan(y0[3, 0]) and torch.isnan(y1[2, 0])
    assert torch.isfinite(y0).sum() == 9  # only the missing row is missing


def test_missing_value_code_is_missing(tmp_path):
    path = write_csv(tmp_path / "x.csv", b=np.where(np.arange(60) == 4, -200.0, 1.0))
    frame = read_table(path, ["b"], missing_value=-200)
    assert frame["b"].isna().tolist() == [i == 4 for i in range(60)]


def test_a_typo_in_a_cell_and_a_text_column_are_named_not_interpolated(tmp_path):
    """`0.6960x` is not a missing value: the reader names row, column and text; an empty cell stays missing."""
    path = tmp_path / "x.csv"
    path.write_text("a,b,c\n0.1,1,x\n0.6960x,2,y\n,3,z\n")
    with pytest.raises(DataError, match=r"x.csv: row 1, column 'a': '0.6960x' is not a number"):
        read_table(path, ["a", "b"])
    with pytest.raises(DataError, match=r"x.csv: column 'c' is not numeric \(row 0 holds 'x'\)"):
        read_table(path, ["b", "c"])
    path.write_text("a,b\n0.1,1\n,2\n")
    assert read_table(path, ["a", "b"])["a"].isna().tolist() == [False, True]


def test_unknown_columns_are_named(tmp_path):
    with pytest.raises(DataError, match=r"column\(s\) \['nope'\] not in the file"):
        seq2seq(write_csv(tmp_path / "x.csv"), input_columns=["a", "nope"]).setup("fit")


def test_non_monotonic_and_duplicated_dates_are_named(tmp_path):
    dates = list(pd.date_range("2020-01-01", periods=60, freq="h").astype(str))
    swapped = dates[:10] + [dates[11], dates[10]] + dates[12:]
    with pytest.raises(DataError, match="not monotonic: row 11"):
        seq2seq(write_csv(tmp_path / "x.csv", date=swapped)).setup("fit")
    with pytest.raises(DataError, match="duplicated date 2020-01-01 04:00:00 at rows 4 and 5"):
        seq2seq(write_csv(tmp_path / "y.csv", date=dates[:5] + dates[4:59])).setup("fit")


def test_too_few_rows_for_one_window(tmp_path):
    with pytest.raises(DataError, match="rows is too few for one window of 10 rows"):
        seq2seq(write_csv(tmp_path / "x.csv", n=30), val_fraction=0.2, test_fraction=0.2).setup("fit")
    with pytest.raises(DataError, match="too few for one window of seq_len 40 \\+ horizon 8"):
        ForecastData(str(write_csv(tmp_path / "y.csv", n=60)), seq_len=40, horizon=8, split=[0.3, 0.3]).setup("fit")


def test_horizon_longer_than_the_test_split(tmp_path):
    with pytest.raises(DataError, match="horizon 20 is longer than the test split \\(12 rows\\)"):
        ForecastData(str(write_csv(tmp_path / "x.csv", n=120)), seq_len=8, horizon=20, split=[0.3, 0.1]).setup("fit")


def test_forecast_windows_follow_the_ett_split_and_train_statistics():
    data = ForecastData(seq_len=24, horizon=12, synthetic_rows=14_400)
    data.setup("fit")
    month = 30 * 24
    assert [len(data.datasets[k]) for k in ("train", "val", "test")] == [
        12 * month - 36 + 1,
        4 * month - 12 + 1,
        4 * month - 12 + 1,
    ]
    x, y = data.datasets["val"][0]
    train_x = torch.stack([data.datasets["train"][i][0] for i in range(0, len(data.datasets["train"]), 24)])
    assert x.shape == (24, 7) and y.shape == (12, 7) and data.channels[-1] == "OT"
    assert train_x.mean().abs() < 0.1  # standardised with the train split's statistics


def test_ett_split_needs_enough_rows():
    with pytest.raises(DataError, match="do not cover the 12 \\+ 4 months"):
        ForecastData(synthetic_rows=5000).setup("fit")


def test_what_the_model_takes_from_the_data_is_readable_right_after_init(tmp_path):
    assert (Seq2SeqData().d_input, Seq2SeqData().d_target) == (3, 1)
    assert ForecastData(seq_len=24, horizon=12, synthetic_rows=14_400).n_channels == 7
    data = ClassificationData(n_synthetic=8, synthetic_length=40)
    assert (data.d_input, data.n_classes, data.classes) == (6, 4, ["standing", "walking", "running", "badminton"])
    path = write_csv(tmp_path / "x.csv")
    assert seq2seq(path).d_input == 2 and seq2seq(path).d_target == 1


def test_ts_reader_and_classification_windows(tmp_path):
    lines = ["@problemName T", "@classLabel true up down", "@data"]
    lines += ["1,2,3,4:5,6,7,8:up", "0,0,0,1:1,1,1,0:down", "2,2,2,2:3,3,3,3:up", "9,9,9,9:8,8,8,8:down"]
    (tmp_path / "T_TRAIN.ts").write_text("\n".join(lines))
    (tmp_path / "T_TEST.ts").write_text("\n".join(lines[:4]))
    x, y, classes = read_ts(tmp_path / "T_TRAIN.ts")
    assert x.shape == (4, 4, 2) and x[0, :, 1].tolist() == [5, 6, 7, 8] and y.tolist() == [0, 1, 0, 1]
    assert classes == ["up", "down"]
    data = ClassificationData(str(tmp_path), val_fraction=0.5)
    data.setup("fit")
    assert (len(data.datasets["train"]), len(data.datasets["val"]), len(data.datasets["test"])) == (2, 2, 1)
    assert data.d_input == 2 and data.n_classes == 2
    (tmp_path / "T_TEST.ts").write_text("\n".join([*lines[:3], "1,2:3,4:sideways"]))
    with pytest.raises(DataError, match=r"T_TEST.ts, record 0 \(line 4\): label 'sideways' is not in @classLabel"):
        read_ts(tmp_path / "T_TEST.ts")


def test_labelled_streams_window_by_majority_and_split_by_subject(tmp_path):
    for subject in ("s01", "s02", "s03"):
        (tmp_path / subject).mkdir()
        labels = ["SEATED"] * 30 + ["WALKING"] * 30
        frame = pd.DataFrame({c: np.random.default_rng(0).normal(size=60) for c in ("ax", "ay")})
        frame["label"] = labels
        frame.to_csv(tmp_path / subject / f"{subject}_01_sw.csv", index=False)
    data = ClassificationData(
        str(tmp_path), channels=["ax", "ay"], window=20, stride=10, val_subjects=["s02"], test_subjects=["s03"]
    )
    data.setup("fit")
    assert data.classes == ["SEATED", "WALKING"]
    assert data.datasets["train"].tensors[1].tolist() == [
        0,
        0,
        0,
        1,
        1,
    ]  # windows 0-19, 10-29, 20-39 (tie), 30-49, 40-59
    with pytest.raises(DataError, match=r"groups \['s08', 's09'\] do not occur"):
        ClassificationData(
            str(tmp_path), channels=["ax", "ay"], window=20, test_subjects=["s09"], val_subjects=["s08"]
        ).setup("fit")
    with pytest.raises(DataError, match=r"no samples for split\(s\) \['train'\]"):
        ClassificationData(
            str(tmp_path), channels=["ax", "ay"], window=20, test_subjects=["s03"], val_subjects=["s01", "s02"]
        ).setup("fit")
