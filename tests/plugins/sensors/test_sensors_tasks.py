"""The three tasks end to end on their quick configs (the bundled simulators), and model/data checks."""

import csv
from pathlib import Path

import pytest
import torch
from torchmetrics import R2Score

from ssmkit.plugins import find_task
from ssmkit.train.cli import run_task
from ssmkit_sensors.tasks import Forecaster, NormalisedMSE, Seq2SeqRegressor

TASKS = ("seq2seq", "forecast", "classify")
PLOTS = {"seq2seq": "test_prediction.png", "forecast": "test_forecast.png", "classify": "test_confusion.png"}


@pytest.fixture(scope="module", params=TASKS)
def quick_run(request, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    cli = run_task("fit", f"sensors.{request.param}", [], runs_dir=runs, quick=True)
    cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)
    return request.param, Path(cli.trainer.logger.log_dir), cli


def test_quick_fit_and_test_write_metrics_plots_and_checkpoints(quick_run):
    task, run_dir, _ = quick_run
    for name in ("plots/loss.png", f"plots/{PLOTS[task]}", "checkpoints/last.ckpt"):
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


def test_seq2seq_scores_only_the_chunk_closing_steps():
    task = Seq2SeqRegressor(d_input=3, d_target=2, encoder="flat", target_stride=4, d_model=8, n_layers=1)
    y = torch.arange(24.0).reshape(1, 12, 2)
    assert task.scored(y)[0, :, 0].tolist() == [6.0, 14.0, 22.0]
    x, y = torch.randn(2, 12, 3), torch.randn(2, 12, 2)
    loss = task.shared_step((x, y), "val")
    torch.testing.assert_close(loss, torch.nn.functional.mse_loss(task(x)[:, 3::4], y[:, 3::4]))


def test_missing_targets_are_left_out_of_loss_and_metrics():
    torch.manual_seed(0)
    task = Seq2SeqRegressor(d_input=3, d_target=2, encoder="flat", d_model=8, n_layers=1)
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
    ("spec", "args", "message"),
    [
        ("sensors.seq2seq", ["--model.d_input", "4"], "d_input: model 4, data 3"),
        ("sensors.forecast", ["--model.horizon", "12"], "horizon: model 12, data 24"),
        ("sensors.classify", ["--model.n_classes", "5"], "n_classes: model 5, data 4"),
    ],
)
def test_model_and_data_that_disagree_are_a_clear_error(tmp_path, spec, args, message):
    with pytest.raises(ValueError, match=message):
        run_task("fit", spec, args, runs_dir=tmp_path, quick=True)


@pytest.mark.parametrize("task", TASKS)
def test_task_is_registered_with_both_configs(task):
    spec = find_task(f"sensors.{task}")[2]
    assert spec.config_path().is_file() and spec.config_path(quick=True).is_file()
    spec.load()


def test_forecaster_fourier_head_trains_and_gives_a_point_forecast():
    fourier = {"n_bins": 32, "n_freqs": 4, "low": -5.0, "high": 5.0, "d_head": 4}
    task = Forecaster(
        seq_len=32, horizon=8, n_channels=2, patch_len=8, patch_stride=8, fourier=fourier, d_model=8, n_layers=1
    )
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
