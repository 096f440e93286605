import json

from ssmkit.cli import main


def test_bench_quick_writes_json_and_markdown(tmp_path):
    assert main(["bench", "--quick", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    backends = {(r["op"], r["backend"]) for r in results}
    assert {("selective_scan", "reference"), ("fft_conv", "fft"), ("fft_conv", "reference")} <= backends
    assert all(r["forward_s"] > 0 and r["forward_backward_s"] > 0 for r in results)
    assert "| fft_conv |" in (tmp_path / "results.md").read_text()
