"""The comparison script builds one run per model (and horizon), all under the same settings."""

import pytest

from ssmkit_sensors.compare import main, markdown, rows, select_on_validation, summary


def test_every_model_gets_the_same_overlay_and_data():
    runs = rows("air_quality", "/data/aq.csv", ["hiss", "flat_s4d", "transformer"], [])
    assert [label for label, _ in runs] == ["hiss", "flat_s4d", "transformer"]
    for _, args in runs:
        assert args[1].endswith("configs/air_quality.yaml") and args[2:4] == ["--data.root", "/data/aq.csv"]
    assert runs[2][1][-4:] == ["--model.encoder", "flat", "--model.backbone.mixer", "attention"]


def test_forecast_rows_set_the_horizon_once_in_the_data():
    runs = rows("etth1", "ETTh1.csv", ["ssm", "dlinear"], [96, 720])
    assert [label for label, _ in runs] == ["ssm H=96", "dlinear H=96", "ssm H=720", "dlinear H=720"]
    assert runs[3][1][-2:] == ["--data.horizon", "720"]  # the model takes it from the data (data_links)
    assert not any(arg.startswith("--model.horizon") for _, args in runs for arg in args)


def test_activity_picks_the_overlay_that_fits_the_folder(tmp_path):
    (tmp_path / "X_TRAIN.ts").write_text("")
    assert rows("activity", str(tmp_path), ["hiss"], [])[0][1][1].endswith("basicmotions.yaml")
    assert rows("activity", str(tmp_path / "imu"), ["hiss"], [])[0][1][1].endswith("sp_sw_har.yaml")


def test_markdown_table_and_unknown_models():
    run = {"model": "hiss", "seed": 0, "test/mse": 0.12345, "val_best": 0.1, "params": 1234, "seconds": 9.6}
    table = markdown([summary("hiss", [run], ("test/mse",))], ("test/mse",))
    assert table.splitlines()[:3] == [
        "| model | test/mse | best validation | parameters | train + test seconds |",
        "| --- | ---: | ---: | ---: | ---: |",
        "| hiss | 0.1235 | 0.1000 | 1,234 | 10 |",
    ]
    runs = [run, {**run, "seed": 1, "test/mse": 0.2, "val_best": 0.3, "seconds": 20.4}]
    table = markdown([summary("hiss", runs, ("test/mse",))], ("test/mse",))
    assert table.splitlines()[2] == "| hiss | 0.1617 ± 0.0383 | 0.2000 ± 0.1000 | 1,234 | 15 |"
    assert "seeds [0, 1]" in table
    with pytest.raises(SystemExit):
        main(["simulator", "--models", "gru"])


@pytest.mark.parametrize(("mode", "chosen"), [("min", "0.3"), ("max", "0")])
def test_select_on_validation_picks_by_mean_validation_then_runs_the_other_seeds(mode, chosen):
    val = {"0": [0.5, 0.5], "0.3": [0.2, 0.6], "0.5": [0.45, 0.45]}  # means 0.5, 0.4, 0.45
    calls = []

    def train(flags, seeds, **tags):
        calls.append((flags, seeds))
        return [{"seed": s, "val_best": val[flags[1]][i], "val_mode": mode, **tags} for i, s in enumerate(seeds)]

    runs = select_on_validation(train, "--model.backbone.dropout", list(val), [0, 1, 2, 3], 2)
    assert calls[:3] == [(["--model.backbone.dropout", v], [0, 1]) for v in val]
    assert calls[3] == (["--model.backbone.dropout", chosen], [2, 3])
    selected = f"model.backbone.dropout={chosen}"
    assert [r["seed"] for r in runs] == [0, 1, 2, 3] and {r["selected"] for r in runs} == {selected}
    assert summary("hiss", [{**r, "params": 1, "seconds": 1.0, "m": 0.0} for r in runs], ("m",))["model"] == (
        f"hiss ({selected})"
    )


def test_select_sets_every_flag_of_a_comma_list_to_the_value():
    calls = []

    def train(flags, seeds, **tags):
        calls.append(flags)
        return [{"seed": s, "val_best": float(flags[1]), "val_mode": "min", **tags} for s in seeds]

    runs = select_on_validation(train, "model.backbone.dropout,model.low.dropout", ["0.3", "0.1"], [0, 1], 1)
    assert calls[0] == ["--model.backbone.dropout", "0.3", "--model.low.dropout", "0.3"]
    assert calls[-1] == ["--model.backbone.dropout", "0.1", "--model.low.dropout", "0.1"]
    assert {r["selected"] for r in runs} == {"model.backbone.dropout,model.low.dropout=0.1"}


def test_select_needs_values_and_enough_seeds():
    with pytest.raises(SystemExit):
        main(["simulator", "--select", "model.dropout", "0.1"])
    with pytest.raises(SystemExit):
        main(["simulator", "--select", "model.dropout", "0", "0.1", "--seeds", "0", "--select_seeds", "3"])
