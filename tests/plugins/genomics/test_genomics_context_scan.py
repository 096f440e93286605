"""`python -m ssmkit_genomics.context_scan` at a tiny size: one run per context, the same budget and held-out
bases for each, bits per base split by repeats, and the CSV / table / plot."""

import csv

import numpy as np
import pytest
import torch

from ssmkit_genomics.context_scan import main, window_bits
from ssmkit_genomics.tasks import GenomicsLM

TINY = ["--genome_length", "40000", "--repeat_gap", "100", "1000", "--repeat_len", "32", "--eval_tokens", "2048"]
TINY += ["--contexts", "64", "256", "--steps", "3", "--tokens_per_step", "512", "--d_model", "8", "--n_layers", "1"]


def test_tiny_scan_writes_csv_table_and_plot(tmp_path, capsys):
    assert main([*TINY, "--out", str(tmp_path)]) == 0
    rows = list(csv.DictReader(open(tmp_path / "context_scan.csv")))
    assert [int(r["context"]) for r in rows] == [64, 256] and [int(r["batch"]) for r in rows] == [8, 2]
    assert {int(r["train_tokens"]) for r in rows} == {3 * 512} and {int(r["eval_tokens"]) for r in rows} == {2048}
    for r in rows:
        assert 0 < float(r["repeat_fraction"]) < 1 and 1.0 < float(r["bpb"]) < 4.0
        parts = float(r["repeat_fraction"]) * float(r["bpb_repeats"])
        parts += (1 - float(r["repeat_fraction"])) * float(r["bpb_background"])
        assert parts == pytest.approx(float(r["bpb"]), rel=1e-4)  # the split adds up to the whole
    assert (tmp_path / "context_scan.png").stat().st_size > 10_000
    assert len(list((tmp_path / "genomics" / "pretrain").iterdir())) == 2
    assert "| 256 | 2 | 3 |" in capsys.readouterr().out


def test_window_bits_scores_every_held_out_base_once():
    model = GenomicsLM(max_length=16, d_model=8, n_layers=1, mixer="hyena", mixer_kwargs={"filter_order": 4})
    tokens = torch.randint(2, 6, (50,))
    bits = window_bits(model, tokens, 16)
    assert bits.shape == (48,)  # three windows of 16 predictions
    logits = model(tokens[None, 16:32])[0]
    expected = torch.nn.functional.cross_entropy(logits, tokens[17:33], reduction="none") / np.log(2)
    np.testing.assert_allclose(bits[16:32], expected.detach().numpy(), rtol=1e-5)


def test_a_budget_that_does_not_divide_into_the_contexts_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="must be a multiple of every context"):
        main([*TINY, "--tokens_per_step", "300", "--out", str(tmp_path)])
