import json

from ssmkit.cli import main


def test_bench_quick_writes_json_and_markdown(tmp_path):
    assert main(["bench", "--quick", "--out", str(tmp_path)]) == 0
    out = json.loads((tmp_path / "results.json").read_text())
    assert set(out["meta"]["floors"]) == {"sgemm_gflop_s", "copy_gb_s", "triad_gb_s", "exp_gelem_s"}
    assert all(v > 0 for v in out["meta"]["floors"].values())
    results = out["results"]
    backends = {(r["op"], r["backend"]) for r in results}
    assert {("selective_scan", "reference"), ("selective_scan", "numba"), ("fft_conv", "fft")} <= backends
    assert {("ssd_scan", "chunked"), ("ssd_scan", "minimal SSD (paper listing)"), ("fft_conv", "reference")} <= backends
    assert {("linear_scan", "numba"), ("linear_scan", "reference"), ("linear_scan", "selective_scan, N=1")} <= backends
    floors = {r["op"]: r["bound"] for r in results if r["backend"] == "floor"}
    assert floors == {"selective_scan": "exp", "ssd_scan": "matmul", "fft_conv": "matmul", "linear_scan": "memory"}
    assert all(r["forward_s"] > 0 and r["forward_backward_s"] > 0 for r in results)
    assert set(out["summary"]["ssd_chunked_over_minimal"]) == {"32", "64"}  # JSON keys: the lengths
    table = (tmp_path / "results.md").read_text()
    assert "| fft_conv |" in table and "floor (exp)" in table and "GFLOP/s" in table and "GB/s triad" in table
    assert [(r["mixer"], r["L"]) for r in out["scaling"]] == [
        (m, length) for m in ("mamba", "mamba2", "hyena", "s4d", "attention") for length in (16, 32)
    ]
    assert all(r["forward_backward_s"] > 0 and r["peak_extra_mb"] is not None for r in out["scaling"])
    assert "| attention |" in table and (tmp_path / "scaling.png").stat().st_size > 0
    decoding = out["generation"]
    assert [(r["model"], r["batch"]) for r in decoding] == [
        (m, b) for b in (1, 16) for m in ("mamba_lm_small", "transformer_lm_small")
    ]
    assert all(r["tokens_per_s"] > 0 and r["state_mb"] > 0 for r in decoding)
    packed = out["packing"]
    assert [r["mixer"] for r in packed] == ["s5", "lru", "mamba", "mamba2", "attention"]
    assert all(r["tokens"] < r["padded_tokens"] and r["packed_tokens_per_s"] > 0 for r in packed)
    assert "## Packed batches" in table
    trained = out["training"]
    assert [(r["mixer"], r["L"]) for r in trained] == [
        (m, length) for length in (32, 64) for m in ("mamba", "mamba2", "s5", "lru", "hyena", "s4d", "attention")
    ]
    assert all(r["tokens_per_s"] > 0 and r["batch"] * r["L"] == 128 for r in trained)
    assert "Training throughput" in table
    peer = out["transformers"]
    assert [r["model"] for r in peer] == ["mamba", "mamba2"]
    assert all(r["ssmkit_train_s"] > 0 and r["transformers_decode_s"] > 0 for r in peer)
    assert "## Beside transformers" in table


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
