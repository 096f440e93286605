"""The `sensors` plugin (imports no torch, pandas or lightning):

ssmkit fit sensors.seq2seq     sensor streams -> target streams (HiSS or a flat model), MSE / MAE / NMSE
ssmkit fit sensors.forecast    ETT-layout long-horizon forecasting (RevIN SSM or DLinear), MSE / MAE
ssmkit fit sensors.classify    time-series classification (HiSS or a flat model), accuracy + confusion
python -m ssmkit_sensors.compare {simulator,etth1,air_quality,activity}   the README's tables
"""

from ssmkit.plugins import Plugin, Task

_PKG = "ssmkit_sensors"

plugin = Plugin(
    name="sensors",
    description="HiSS hierarchical SSMs, long-horizon forecasting and classification of sensor time series",
    requires_ssmkit=">=0.1,<0.2",
    tasks={
        "seq2seq": Task.in_package(
            _PKG,
            "Seq2SeqRegressor",
            "Seq2SeqData",
            "seq2seq",
            "continuous sequence-to-sequence regression from sensor streams (CSV / NPZ); MSE, MAE, NMSE",
        ),
        "forecast": Task.in_package(
            _PKG,
            "Forecaster",
            "ForecastData",
            "forecast",
            "multivariate long-horizon forecasting, ETT layout and 12/4/4-month split; MSE / MAE standardised",
        ),
        "classify": Task.in_package(
            _PKG,
            "SensorClassifier",
            "ClassificationData",
            "classify",
            "time-series classification (UEA .ts, per-step labelled IMU CSVs, NPZ); accuracy, confusion",
        ),
    },
)
