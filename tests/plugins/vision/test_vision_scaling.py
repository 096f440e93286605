"""apps/bench/vision_scaling.py (the vision plugin's resolution-scaling benchmark) at its quick sizes."""

import json
from importlib import util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[3] / "apps" / "bench" / "vision_scaling.py"


@pytest.fixture(scope="module")
def bench():
    if not SCRIPT.is_file():
        pytest.skip(f"{SCRIPT} not found (the benchmark lives in a source checkout)")
    spec = util.spec_from_file_location("vision_scaling", SCRIPT)
    module = util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_scaling_writes_the_table_json_and_plot(bench, tmp_path):
    assert bench.main(quick=True, out_dir=tmp_path) == 0
    results = json.loads((tmp_path / "vision_scaling.json").read_text())["results"]
    assert [(r["label"], r["size"], r["tokens"]) for r in results] == [
        ("Vim", 28, 50),
        ("ViT", 28, 50),
        ("Vim", 56, 197),
        ("ViT", 56, 197),
    ]
    assert all(r["step_s"] > 0 and r["images_per_s"] == pytest.approx(r["batch"] / r["step_s"]) for r in results)
    assert all(r["peak_mb"] is None or r["peak_mb"] >= 0 for r in results)
    table = (tmp_path / "vision_scaling.md").read_text()
    assert table.count("| Vim |") == 2 and table.count("| ViT |") == 2
    assert (tmp_path / "vision_scaling.png").stat().st_size > 10_000
