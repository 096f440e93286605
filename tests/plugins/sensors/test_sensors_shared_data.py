"""The shared real data (../shared/data/{timeseries,sensors}, see their PROVENANCE.md) loads as documented."""

import logging
from pathlib import Path

import pytest
import torch
import yaml

from ssmkit.plugins import find_task
from ssmkit_sensors.datamodules import ClassificationData, ForecastData, Seq2SeqData

SHARED = Path(__file__).parents[3].parent / "shared" / "data"
ETTH1 = SHARED / "timeseries" / "ETTh1.csv"
AIR = SHARED / "sensors" / "air_quality" / "AirQualityUCI_2004.csv"
MOTIONS = SHARED / "sensors" / "basicmotions"
IMU = SHARED / "sensors" / "sp_sw_har"


def needs(path):
    return pytest.mark.skipif(not path.exists(), reason=f"shared data not found at {path} (see its PROVENANCE.md)")


def overlay(task, name):
    return yaml.safe_load(find_task(f"sensors.{task}")[2].config_path().with_name(name).read_text())


@needs(ETTH1)
def test_etth1_standard_split_has_the_literature_window_counts():
    data = ForecastData(str(ETTH1), seq_len=336, horizon=96)
    data.setup("fit")
    assert [len(data.datasets[k]) for k in ("train", "val", "test")] == [8640 - 432 + 1, 2880 - 96 + 1, 2880 - 96 + 1]
    assert data.channels == ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]


@needs(AIR)
def test_air_quality_missing_inputs_are_interpolated_and_missing_references_masked(caplog):
    with caplog.at_level(logging.INFO):
        data = Seq2SeqData(str(AIR), **overlay("seq2seq", "air_quality.yaml")["data"])
        data.setup("fit")
    assert "column 'CO_GT': 1584 NaN/inf/missing" in caplog.text and "column 'NOx_GT': 1564" in caplog.text
    assert "column 'PT08_S1_CO': 228" in caplog.text
    targets = torch.cat([data.datasets["train"][i][1] for i in range(len(data.datasets["train"]))])
    x, y = data.datasets["train"][0]
    assert x.shape == (96, 8) and y.shape == (96, 3) and bool(x.isfinite().all())
    assert 0.05 < targets.isnan().float().mean() < 0.3  # the analysers' gaps stay gaps
    assert [len(data.datasets[k]) for k in ("train", "val", "test")] == [407, 11, 11]


@needs(MOTIONS)
def test_basicmotions_reads_40_train_and_40_test_cases():
    data = ClassificationData(str(MOTIONS))
    data.setup("fit")
    assert data.classes == ["Standing", "Running", "Walking", "Badminton"]
    assert [len(data.datasets[k]) for k in ("train", "val", "test")] == [32, 8, 40]
    assert data.datasets["test"].tensors[0].shape[1:] == (100, 6)


@needs(IMU)
def test_imu_windows_split_by_subject_with_five_activities():
    data = ClassificationData(str(IMU), **overlay("classify", "sp_sw_har.yaml")["data"])
    data.setup("fit")
    assert data.classes == ["SEATED", "SITTING_DOWN", "STANDING_UP", "TURNING", "WALKING"]
    assert [len(data.datasets[k]) for k in ("train", "val", "test")] == [313, 171, 191]
