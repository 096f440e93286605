import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP, as `import ssmkit` does

import matplotlib  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _own_parser_cache(tmp_path_factory, monkeypatch):
    """Each test starts with an empty parser cache, never the user's (see ssmkit.parser_cache)."""
    monkeypatch.setenv("SSMKIT_CACHE_DIR", str(tmp_path_factory.mktemp("parser-cache")))


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield
