import json

from ssmkit.cli import main


def test_bench_quick_writes_json_and_markdown(tmp_path):
    assert main(["bench", "--quick", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    backends = {(r["op"], r["backend"]) for r in results}
    assert {("selective_scan", "reference"), ("fft_conv", "fft"), ("fft_conv", "reference")} <= backends
    assert {("selective_scan", "numba"), ("selective_scan", "exp floor")} <= backends
    assert all(r["forward_s"] > 0 and r["forward_backward_s"] > 0 for r in results)
    assert "| fft_conv |" in (tmp_path / "results.md").read_text()
    decoding = json.loads((tmp_path / "results.json").read_text())["generation"]
    assert [r["model"] for r in decoding] == ["mamba_lm_small", "transformer_lm_small"]
    assert all(r["tokens_per_s"] > 0 and r["state_mb"] > 0 for r in decoding)


def test_scoreboard_quick_writes_the_mixer_by_task_table(tmp_path):
    assert main(["bench", "--tasks", "--quick", "--out", str(tmp_path)]) == 0
    cells = json.loads((tmp_path / "scoreboard.json").read_text())["cells"]
    assert {(c["mixer"], c["task"]) for c in cells} == {
        (m, t) for m in ("mamba", "hydra") for t in ("selective_copy", "icl_regression")
    }
    assert not [c for c in cells if "error" in c]
    hydra_icl = next(c for c in cells if c["mixer"] == "hydra" and c["task"] == "icl_regression")
    assert "non-causal" in hydra_icl["skipped"]
    table = (tmp_path / "scoreboard.md").read_text()
    assert "| mamba |" in table and "| hydra |" in table and "n/a" in table
