"""`python -m ssmkit_genomics.context_scan` at a tiny size: one run per context, the same budget and held-out
bases for each, bits per base split by repeats, and the CSV / table / plot."""

import csv

import numpy as np
import pytest
import torch

from ssmkit.models.backbone import BackboneConfig
from ssmkit_genomics.context_scan import bits_by_copy_distance, main, window_bits
from ssmkit_genomics.tasks import GenomicsLM

TINY = ["--genome_length", "40000", "--repeat_gap", "100", "1000", "--repeat_len", "32", "--eval_tokens", "2048"]
TINY += ["--repeat_rate", "2", "--tandem_periods", "150", "400", "--tandem_rate", "1", "--mixer_kwargs", "{}"]
TINY += ["--contexts", "64", "256", "--steps", "3", "--tokens_per_step", "512", "--d_model", "8", "--n_layers", "1"]


def test_tiny_scan_writes_csv_table_and_plot(tmp_path, capsys):
    assert main([*TINY, "--out", str(tmp_path)]) == 0
    rows = list(csv.DictReader(open(tmp_path / "context_scan.csv")))
    assert [(int(r["context"]), int(r["eval_window"])) for r in rows] == [(64, 64), (256, 64), (256, 256)]
    assert [int(r["batch"]) for r in rows] == [8, 2, 2] and {int(r["train_tokens"]) for r in rows} == {3 * 512}
    assert [int(r["eval_tokens"]) for r in rows] == [2048, 2048, 2048]
    groups = ("no_copy", "copies_0_64", "copies_64_256", "copies_over_256")
    for r in rows:
        shares = {g: float(r[f"share_{g}"]) for g in groups}
        assert 1.0 < float(r["bpb"]) < 4.0 and sum(shares.values()) == pytest.approx(1.0)
        assert 0 < shares["no_copy"] < 1 and shares["copies_0_64"] == 0  # no source is 64 or fewer bases back
        assert np.isnan(float(r["bpb_copies_0_64"]))
        parts = sum(shares[g] * float(r[f"bpb_{g}"]) for g in groups if shares[g])
        assert parts == pytest.approx(float(r["bpb"]), rel=1e-4)  # the groups add up to the whole
    assert (tmp_path / "context_scan.png").stat().st_size > 10_000
    assert len(list((tmp_path / "genomics" / "pretrain").iterdir())) == 2
    out = capsys.readouterr().out
    assert "| 256 | 2 | 3 |" in out and "bpb copies > 256 back (" in out and "copies 0-64" not in out
    assert "The 256-context model evaluated on windows of each length" in out and "\n| 64 | **" in out


def test_copies_are_grouped_by_how_far_back_their_source_is():
    bits = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    distance = np.array([0, 10, 64, 65, 900])
    got = bits_by_copy_distance(bits, distance, (64, 256))
    assert got["bpb_no_copy"] == 1.0 and got["bpb_copies_0_64"] == 2.5 and got["bpb_copies_64_256"] == 4.0
    assert got["bpb_copies_over_256"] == 5.0 and got["share_copies_0_64"] == pytest.approx(0.4)


def test_window_bits_scores_every_held_out_base_once():
    model = GenomicsLM(max_length=16, backbone=BackboneConfig(8, 1, "hyena", {"filter_order": 4}))
    tokens = torch.randint(2, 6, (50,))
    bits = window_bits(model, tokens, 16)
    assert bits.shape == (48,)  # three windows of 16 predictions
    logits = model(tokens[None, 16:32])[0]
    expected = torch.nn.functional.cross_entropy(logits, tokens[17:33], reduction="none") / np.log(2)
    np.testing.assert_allclose(bits[16:32], expected.detach().numpy(), rtol=1e-5)


def test_a_budget_that_does_not_divide_into_the_contexts_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="must be a multiple of every context"):
        main([*TINY, "--tokens_per_step", "300", "--out", str(tmp_path)])
