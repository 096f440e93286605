"""The plugin contract over every installed plugin and every task of each (ids like `vision.classify`), so a
new plugin is tested without anyone writing a test for it. See `ssmkit.testing.plugin_contract`."""

import pytest

from ssmkit.plugins import discover
from ssmkit.testing import PluginContract, check_plugin, task_ids

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
