"""The comparison script builds one run per model (and horizon), all under the same settings."""

import pytest

from ssmkit_sensors.compare import main, markdown, rows, summary


def test_every_model_gets_the_same_overlay_and_data():
    runs = rows("air_quality", "/data/aq.csv", ["hiss", "flat_s4d", "transformer"], [])
    assert [label for label, _ in runs] == ["hiss", "flat_s4d", "transformer"]
    for _, args in runs:
        assert args[1].endswith("configs/air_quality.yaml") and args[2:4] == ["--data.root", "/data/aq.csv"]
    assert runs[2][1][-4:] == ["--model.encoder", "flat", "--model.mixer", "attention"]


def test_forecast_rows_set_model_and_data_horizons_together():
    runs = rows("etth1", "ETTh1.csv", ["ssm", "dlinear"], [96, 720])
    assert [label for label, _ in runs] == ["ssm H=96", "dlinear H=96", "ssm H=720", "dlinear H=720"]
    assert runs[3][1][-4:] == ["--model.horizon", "720", "--data.horizon", "720"]


def test_activity_picks_the_overlay_that_fits_the_folder(tmp_path):
    (tmp_path / "X_TRAIN.ts").write_text("")
    assert rows("activity", str(tmp_path), ["hiss"], [])[0][1][1].endswith("basicmotions.yaml")
    assert rows("activity", str(tmp_path / "imu"), ["hiss"], [])[0][1][1].endswith("sp_sw_har.yaml")


def test_markdown_table_and_unknown_models():
    run = {"model": "hiss", "seed": 0, "test/mse": 0.12345, "val_best": 0.1, "params": 1234, "seconds": 9.6}
    table = markdown([summary("hiss", [run], ("test/mse",))], ("test/mse",))
    assert table.splitlines()[2] == "| hiss | 0.1235 | 0.1000 | 1,234 | 10 |"
    runs = [run, {**run, "seed": 1, "test/mse": 0.2, "val_best": 0.3, "seconds": 20.4}]
    table = markdown([summary("hiss", runs, ("test/mse",))], ("test/mse",))
    assert table.splitlines()[2] == "| hiss | 0.1617 ± 0.0383 | 0.2000 ± 0.1000 | 1,234 | 15 |"
    assert "seeds [0, 1]" in table
    with pytest.raises(SystemExit):
        main(["simulator", "--models", "gru"])
