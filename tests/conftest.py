import matplotlib
import pytest
import torch

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _own_parser_cache(tmp_path_factory, monkeypatch):
    """Each test starts with an empty parser cache, never the user's (see ssmkit.parser_cache)."""
    monkeypatch.setenv("SSMKIT_CACHE_DIR", str(tmp_path_factory.mktemp("parser-cache")))


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield
