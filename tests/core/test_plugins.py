"""Plugin discovery: a temporary environment with deliberately broken plugins next to the real ones."""

import os
import subprocess
import sys
import textwrap

import pytest

from ssmkit.plugins import Plugin, Task, UnknownTaskError, discover, find_task

SSMKIT = [sys.executable, "-m", "ssmkit.cli"]

FAKE_MODULES = {
    "fake_broken.py": "raise ImportError('this plugin is broken on purpose')\n",
    "fake_wrongtype.py": "plugin = {'name': 'wrongtype'}\n",
    "fake_oldcore.py": "from ssmkit.plugins import Plugin\nplugin = Plugin('oldcore', 'old', '>=9.0')\n",
    "fake_misnamed.py": "from ssmkit.plugins import Plugin\nplugin = Plugin('othername', 'x', '>=0.1')\n",
    "fake_good.py": textwrap.dedent(
        """
        from ssmkit.plugins import Plugin, Task
        plugin = Plugin('good', 'a working third-party plugin', '>=0.1', tasks={
            'copy': Task('ssmkit.synthetic.tasks:TokenSequenceTask', 'ssmkit.synthetic.datamodules:SelectiveCopyData',
                         'ssmkit.synthetic:configs/selective_copy.yaml',
                         'ssmkit.synthetic:configs/selective_copy_quick.yaml', 'selective copy again')})
        """
    ),
}
ENTRY_POINTS = {
    "broken": "fake_broken:plugin",
    "wrongtype": "fake_wrongtype:plugin",
    "oldcore": "fake_oldcore:plugin",
    "misnamed": "fake_misnamed:plugin",
    "good": "fake_good:plugin",
}


@pytest.fixture
def fake_env(tmp_path, monkeypatch):
    """A folder on sys.path holding an installed distribution `fakeplugins` with five entry points."""
    for name, source in FAKE_MODULES.items():
        (tmp_path / name).write_text(source)
    dist = tmp_path / "fakeplugins-0.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeplugins\nVersion: 0.3\n")
    lines = "\n".join(f"{k} = {v}" for k, v in ENTRY_POINTS.items())
    (dist / "entry_points.txt").write_text(f"[ssmkit.plugins]\n{lines}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_broken_plugins_are_listed_with_reasons_and_others_work(fake_env):
    infos = {i.name: i for i in discover()}
    assert infos["synthetic"].ok and set(infos["synthetic"].plugin.tasks) == {
        "selective_copy",
        "associative_recall",
        "induction_heads",
        "icl_regression",
        "sequential_digits",
    }
    assert infos["good"].ok and infos["good"].version == "0.3"
    assert "import failed: ImportError: this plugin is broken on purpose" in infos["broken"].error
    assert "not an ssmkit.plugins.Plugin" in infos["wrongtype"].error
    assert "needs ssmkit>=9.0" in infos["oldcore"].error
    assert "names itself 'othername'" in infos["misnamed"].error
    assert find_task("good.copy")[2].description == "selective copy again"
    with pytest.raises(UnknownTaskError, match="broken"):
        find_task("broken.anything")


def test_name_clash_marks_both_broken(fake_env):
    dist = fake_env / "fakeplugins2-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeplugins2\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[ssmkit.plugins]\ngood = fake_good:plugin\n")
    goods = [i for i in discover() if i.name == "good"]
    assert len(goods) == 2 and all("name clash" in i.error for i in goods)


def test_cli_lists_broken_plugins_and_check_fails(fake_env):
    env = {**os.environ, "PYTHONPATH": str(fake_env)}
    listing = subprocess.run([*SSMKIT, "plugins"], capture_output=True, text=True, env=env, check=True).stdout
    assert "synthetic.selective_copy" in listing and "good.copy" in listing
    assert "broken:" in listing and "this plugin is broken on purpose" in listing
    check = subprocess.run([*SSMKIT, "plugins", "--check"], capture_output=True, text=True, env=env)
    assert check.returncode == 1
    assert "FAIL broken" in check.stderr and "FAIL oldcore" in check.stderr


def test_plugins_check_passes_on_the_installed_plugins():
    result = subprocess.run([*SSMKIT, "plugins", "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "0 failure(s)" in result.stdout


def test_listing_plugins_imports_no_torch():
    code = (
        "import sys, ssmkit.plugins as p; p.discover(); "
        "print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_task_configs_are_package_data():
    task = find_task("synthetic.selective_copy")[2]
    assert task.config_path().is_file() and task.config_path(quick=True).is_file()
    assert isinstance(task, Task) and isinstance(find_task("synthetic.icl_regression")[0].plugin, Plugin)


def test_version_comes_from_the_distribution():
    from importlib.metadata import version

    assert {i.name: i.version for i in discover()}["synthetic"] == version("ssmkit")
