"""README's "Writing a plugin", measured: the toy plugin in tests/plugins/toy (six files) installs with pip, is found
through its entry point, and passes the plugin contract without a test of its own."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ssmkit.plugins import discover
from ssmkit.testing import plugin_contract as contract

TOY = Path(__file__).parents[1] / "plugins" / "toy"


def test_the_toy_plugin_is_six_files():
    files = sorted(str(p.relative_to(TOY)) for p in TOY.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    assert len(files) <= 6, files


@pytest.fixture(scope="module")
def installed_toy(tmp_path_factory):
    """pip-installs (a copy of) the toy plugin into a folder of its own and puts that folder on sys.path."""
    source, site = tmp_path_factory.mktemp("toy"), tmp_path_factory.mktemp("site")
    shutil.copytree(TOY, source, dirs_exist_ok=True)  # pip builds in the source folder; keep the tree clean
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target"]
    subprocess.run([*command, str(site), str(source)], check=True, capture_output=True)
    sys.path.insert(0, str(site))
    yield site
    sys.path.remove(str(site))
    for name in [m for m in sys.modules if m.startswith("ssmkit_toy")]:
        del sys.modules[name]


@pytest.mark.slow
def test_the_toy_plugin_passes_the_plugin_contract(installed_toy, tmp_path):
    (toy,) = [info for info in discover() if info.name == "toy"]
    contract.check_plugin(toy)
    contract.check_task_loads("toy.majority")
    contract.check_help("toy.majority")
    run = contract.run_stages("toy.majority", tmp_path)
    for check in (contract.check_config, contract.check_checkpoints, contract.check_metrics, contract.check_plots):
        check(run)
    contract.check_evaluated(run, "validate", "val")
    contract.check_evaluated(run, "test", "test")
    contract.check_predicted(run)
    contract.check_resumed(run)
    assert (run.run_dir / "plots" / "val_confusion.png").is_file()  # the kit's classification report
