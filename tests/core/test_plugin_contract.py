"""The plugin contract over every installed plugin and every task of each (ids like `vision.classify`), so a
new plugin is tested without anyone writing a test for it. See `ssmkit.testing.plugin_contract`."""

from dataclasses import replace

import pytest

from ssmkit.plugins import PluginInfo, discover
from ssmkit.testing import ContractError, PluginContract, check_plugin, task_ids
from ssmkit.testing.plugin_contract import (
    STAGE_BUDGET_S,
    Stage,
    TaskRun,
    check_checkpoints,
    check_config,
    check_metrics,
    check_plots,
    check_predicted,
    check_quick,
)

# (task id, check) -> why it fails today. Strict: a check that starts passing must be taken off this list.
KNOWN_FAILURES: dict[tuple[str, str], str] = {}


@pytest.mark.parametrize("info", discover(), ids=lambda info: info.name)
def test_plugin_metadata(info):
    check_plugin(info)


@pytest.fixture(scope="class", params=task_ids())
def task_id(request):
    return request.param


@pytest.mark.slow
class TestInstalledPlugins(PluginContract):
    known_failures = KNOWN_FAILURES


# ---- the contract catches what it promises to (no training) -------------------------------------------------


def test_broken_or_insane_plugins_break_the_contract():
    info = next(i for i in discover() if i.name == "synthetic")
    broken = PluginInfo("gone", "1.0", "gone.plugin:plugin", error="import failed: ImportError: no module")
    with pytest.raises(ContractError, match="is broken: import failed"):
        check_plugin(broken)
    for change, message in (
        ({"description": "two\nlines"}, "one non-empty line"),
        ({"requires_ssmkit": ">=9.0"}, "excludes the installed ssmkit"),
        ({"requires_ssmkit": ""}, "requires_ssmkit is empty"),
        ({"tasks": {}}, "declares no tasks"),
    ):
        with pytest.raises(ContractError, match=message):
            check_plugin(replace(info, plugin=replace(info.plugin, **change)))


def test_a_run_folder_missing_its_files_breaks_the_contract(tmp_path):
    run = TaskRun("toy.task", tmp_path, {"fit": Stage("fit", 1.0)}, fit_dir=tmp_path / "version_0")
    for check, message in (
        (check_config, "no resolved config"),
        (check_checkpoints, "no best-"),
        (check_metrics, "no metrics file"),
        (check_plots, "no loss.png"),
    ):
        with pytest.raises(ContractError, match=message):
            check(run)
    run.fit_dir.mkdir()
    (run.fit_dir / "metrics.csv").write_text("epoch,step,train/acc,val/loss\n0,3,,0.5\n0,3,0.9,\n")
    with pytest.raises(ContractError, match="no row with a finite train/ loss"):
        check_metrics(run)


def test_a_failed_or_slow_stage_breaks_the_contract(tmp_path):
    failed = Stage("predict", 1.0, error=ValueError("needs --data.prompts"))
    run = TaskRun("toy.task", tmp_path, {"predict": failed, "fit": Stage("fit", 2 * STAGE_BUDGET_S)})
    with pytest.raises(ContractError, match="`predict` failed: ValueError: needs --data.prompts"):
        check_predicted(run)
    with pytest.raises(ContractError, match="quick-config stages over"):
        check_quick(run)
