"""The three tasks end to end on their quick configs (the bundled simulators), predict, and model/data checks."""

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.preprocessing import StandardScaler
from torchmetrics import R2Score

from ssmkit.models.backbone import BackboneConfig
from ssmkit.plugins import find_task
from ssmkit.train.cli import run_task
from ssmkit_sensors import simulator
from ssmkit_sensors.tasks import Forecaster, NormalisedMSE, Seq2SeqRegressor, original_units, step_table

TASKS = ("seq2seq", "forecast", "classify")
PLOTS = {"seq2seq": "test_prediction.png", "forecast": "test_forecast.png", "classify": "test_confusion.png"}
PREDICTED = {"seq2seq": "predictions.csv", "forecast": "forecast.csv", "classify": "predictions.csv"}
TINY = BackboneConfig(d_model=8, n_layers=1)


@pytest.fixture(scope="module", params=TASKS)
def quick_run(request, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    cli = run_task("fit", f"sensors.{request.param}", [], runs_dir=runs, quick=True)
    cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)
    return request.param, Path(cli.trainer.logger.log_dir), cli


def test_quick_fit_and_test_write_metrics_plots_and_checkpoints(quick_run):
    task, run_dir, _ = quick_run
    val_plot = PLOTS[task].replace("test", "val")  # the val figure at fit end, the test one at test end
    for name in ("plots/loss.png", f"plots/{PLOTS[task]}", f"plots/{val_plot}", "checkpoints/last.ckpt"):
        assert (run_dir / name).is_file(), name
    header = (run_dir / "metrics.csv").read_text().splitlines()[0]
    wanted = {
        "seq2seq": ("val/mse", "val/nmse", "test/mae"),
        "forecast": ("val/mse", "test/mae"),
        "classify": ("val/acc", "test/acc"),
    }
    assert all(key in header for key in wanted[task]), header


def test_quick_metrics_are_finite(quick_run):
    _, run_dir, _ = quick_run
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    values = [float(v) for row in rows for k, v in row.items() if v and k.startswith(("val/", "test/"))]
    assert values and all(torch.isfinite(torch.tensor(values)))


@pytest.fixture(scope="module")
def predicted(quick_run, tmp_path_factory):
    """`predict` from the quick run's last checkpoint, at most two batches: (task, table, predict CLI)."""
    task, run_dir, _ = quick_run
    ckpt = str(run_dir / "checkpoints" / "last.ckpt")
    args = ["--ckpt_path", ckpt, "--trainer.limit_predict_batches", "2"]
    cli = run_task("predict", f"sensors.{task}", args, runs_dir=tmp_path_factory.mktemp("runs"), quick=True)
    table = pd.read_csv(Path(cli.trainer.logger.log_dir) / PREDICTED[task])
    return task, table, cli


def predicted_windows(cli) -> int:
    return min(len(cli.datamodule.datasets["test"]), 2 * cli.datamodule.batch_size)


def test_predict_writes_a_row_per_window_and_step(predicted):
    task, table, cli = predicted
    data, windows = cli.datamodule, predicted_windows(cli)
    if task == "seq2seq":  # window, step, then a prediction and a truth per target / channel
        per_window, width = data.window // cli.model.target_stride, 2 + 2 * data.d_target
    elif task == "forecast":
        per_window, width = data.horizon, 2 + 2 * data.n_channels
    else:  # item, predicted, label (the test windows carry theirs), p_<class> per class (ClassificationTask's layout)
        per_window, width = 1, data.n_classes + 3
        labels = data.datasets["test"].tensors[1][:windows].tolist()
        assert table["label"].tolist() == [data.classes[k] for k in labels]
    assert table.shape == (windows * per_window, width)
    index = "item" if task == "classify" else "window"
    assert table[index].tolist() == np.repeat(np.arange(windows), per_window).tolist()


def check_seq2seq_in_original_units(table, cli):
    data, model, k = cli.datamodule, cli.model.eval(), cli.model.target_stride
    first = table[table["window"] == 0]
    assert first["step"].tolist() == list(range(k - 1, data.window, k))
    with torch.no_grad():
        dense = model(data.datasets["test"][0][0][None])[0, :, 0].numpy()
    mean, scale = data.target_scaler.mean_[0], data.target_scaler.scale_[0]
    np.testing.assert_allclose((first["force"] - mean) / scale, dense[k - 1 :: k], rtol=1e-4, atol=1e-4)
    _, targets = simulator.drifting_sensor(**data.simulator_kwargs)  # the last recording is the test split
    np.testing.assert_allclose(first["force_true"], targets[-1, k - 1 : data.window : k, 0], rtol=1e-5, atol=1e-5)


def check_forecast_in_original_units(table, cli):
    data = cli.datamodule
    rows = simulator.ett_like(data.synthetic_rows)[data.channels].to_numpy()
    test_start = 16 * 30 * 24  # split 'ett': 12 + 4 months of 30 days, hourly rows
    first = table[table["window"] == 0]
    assert first["step"].tolist() == list(range(1, data.horizon + 1))
    truth = first[[f"{c}_true" for c in data.channels]].to_numpy()
    np.testing.assert_allclose(truth, rows[test_start : test_start + data.horizon], rtol=1e-5, atol=1e-4)
    with torch.no_grad():
        forecast = cli.model.eval()(data.datasets["test"][0][0][None])[0].numpy()
    standardised = (first[data.channels].to_numpy() - data.scaler.mean_) / data.scaler.scale_
    np.testing.assert_allclose(standardised, forecast, rtol=1e-4, atol=1e-4)


def check_classify_probabilities_of_the_test_windows(table, cli):
    classes = cli.datamodule.classes
    probs = table[[f"p_{c}" for c in classes]].to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert (table["predicted"] == [classes[k] for k in probs.argmax(1)]).all()
    with torch.no_grad():  # the rows are the test windows, in order
        expected = cli.model.eval()(cli.datamodule.datasets["test"].tensors[0][: len(table)]).softmax(-1).numpy()
    np.testing.assert_allclose(probs, expected, rtol=1e-4, atol=1e-5)


def test_predict_table_holds_the_tasks_values(predicted):
    task, table, cli = predicted
    {
        "seq2seq": check_seq2seq_in_original_units,
        "forecast": check_forecast_in_original_units,
        "classify": check_classify_probabilities_of_the_test_windows,
    }[task](table, cli)


def test_missing_truth_stays_empty_in_the_predictions():
    scaler = StandardScaler().fit([[0.0], [2.0]])  # mean 1, scale 1
    pred, true = original_units(np.zeros((1, 2, 1)), scaler), original_units(np.array([[[np.nan], [1.0]]]), scaler)
    table = step_table(pred, true, ["y"], np.array([4, 9]))
    assert table.to_csv(index=False).splitlines() == ["window,step,y,y_true", "0,4,1.0,", "0,9,1.0,2.0"]


def test_seq2seq_scores_only_the_chunk_closing_steps():
    task = Seq2SeqRegressor(d_input=3, d_target=2, encoder="flat", target_stride=4, backbone=TINY)
    y = torch.arange(24.0).reshape(1, 12, 2)
    assert task.scored(y)[0, :, 0].tolist() == [6.0, 14.0, 22.0]
    x, y = torch.randn(2, 12, 3), torch.randn(2, 12, 2)
    loss = task.shared_step((x, y), "val")
    torch.testing.assert_close(loss, torch.nn.functional.mse_loss(task(x)[:, 3::4], y[:, 3::4]))


def test_missing_targets_are_left_out_of_loss_and_metrics():
    torch.manual_seed(0)
    task = Seq2SeqRegressor(d_input=3, d_target=2, encoder="flat", backbone=TINY)
    x, y = torch.randn(2, 12, 3), torch.randn(2, 12, 2)
    holes = y.clone()
    holes[0, 5, 1] = holes[1, 0, 0] = float("nan")
    seen = torch.isfinite(holes)
    loss = task.shared_step((x, holes), "val")
    torch.testing.assert_close(loss, torch.nn.functional.mse_loss(task(x)[seen], y[seen]))
    pred = task(x).detach()
    task.nmse["val_nmse"].update(pred, y)  # on top of the holed batch: counts add per target
    expected = [
        (((pred[..., j] - y[..., j]) ** 2)[seen[..., j]].sum() + ((pred[..., j] - y[..., j]) ** 2).sum())
        / (torch.cat([y[..., j][seen[..., j]], y[..., j].flatten()]).var(unbiased=False) * (seen[..., j].sum() + 24))
        for j in range(2)
    ]
    torch.testing.assert_close(task.nmse["val_nmse"].compute(), torch.stack(expected).mean(), rtol=1e-5, atol=1e-6)


def test_normalised_mse_is_one_minus_r2_without_missing_values():
    """The former R2Score(d_target) was an adjusted R^2 (torchmetrics 1.9's first argument is `adjusted`)."""
    pred, true = torch.randn(50, 3), torch.randn(50, 3)
    metric = NormalisedMSE(3)
    metric.update(pred[:20], true[:20])
    metric.update(pred[20:], true[20:])
    torch.testing.assert_close(metric.compute(), 1 - R2Score()(pred, true), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("task", "model_args", "data_args", "linked"),
    [
        ("seq2seq", ["--model.d_input", "4"], [], {"d_input": 3, "d_target": 1}),
        ("forecast", ["--model.horizon", "12"], ["--data.horizon", "12"], {"horizon": 12, "seq_len": 48}),
        ("classify", ["--model.n_classes", "5"], [], {"n_classes": 4, "d_input": 6}),
    ],
)
def test_model_takes_its_sizes_from_the_data_and_cannot_be_told_others(tmp_path, task, model_args, data_args, linked):
    """data_links: d_input, d_target, n_channels, seq_len, horizon, n_classes are given once, in the data."""
    with pytest.raises(SystemExit):
        run_task("fit", f"sensors.{task}", model_args, runs_dir=tmp_path, quick=True)
    args = [*data_args, "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "1"]
    cli = run_task("fit", f"sensors.{task}", args, runs_dir=tmp_path, quick=True)
    assert {k: getattr(cli.model, k) for k in linked} == {k: getattr(cli.datamodule, k) for k in linked} == linked


@pytest.mark.parametrize("task", TASKS)
def test_task_is_registered_with_both_configs(task):
    spec = find_task(f"sensors.{task}")[2]
    assert spec.config_path().is_file() and spec.config_path(quick=True).is_file()
    spec.load()


def test_forecaster_fourier_head_trains_and_gives_a_point_forecast():
    fourier = {"n_bins": 32, "n_freqs": 4, "low": -5.0, "high": 5.0, "d_head": 4}
    task = Forecaster(seq_len=32, horizon=8, n_channels=2, patch_len=8, patch_stride=8, fourier=fourier, backbone=TINY)
    x = torch.randn(4, 32, 2)
    y = x[:, -8:] * 0.5
    opt = torch.optim.Adam(task.parameters(), lr=2e-2)
    first = task.model.loss(x, y).item()
    for _ in range(15):
        opt.zero_grad()
        loss = task.model.loss(x, y)
        loss.backward()
        opt.step()
    assert loss.item() < first - 0.3
    assert task(x).shape == (4, 8, 2)
