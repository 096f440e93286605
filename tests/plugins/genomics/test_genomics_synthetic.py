import numpy as np
import pytest

from ssmkit_genomics.kmer_baseline import evaluate, kmer_counts
from ssmkit_genomics.synthetic import MarkovChain, synthetic_classification, synthetic_genome
from ssmkit_genomics.tokenizer import encode


def test_genome_has_long_repeats_and_a_known_entropy_rate():
    g = synthetic_genome(40_000, repeat_len=50, repeat_gap=(300, 900), seed=1)
    assert len(g.sequence) == 40_000 and set(g.sequence) <= set("ACGT")
    assert 0.5 < g.entropy_rate < 2.0
    assert 0.01 < g.copied.mean() < 0.2
    # every copied run equals the sequence 300..900 bases before it
    seq = np.frombuffer(g.sequence.encode(), dtype=np.uint8)
    starts = np.flatnonzero(np.diff(g.copied.astype(int)) == 1) + 1
    for s in starts[:20]:
        assert any(np.array_equal(seq[s : s + 50], seq[s - d : s - d + 50]) for d in range(300, 901))
    assert synthetic_genome(40_000, seed=1).sequence == synthetic_genome(40_000, seed=1).sequence


def test_tandem_arrays_copy_the_unit_before_at_the_period():
    g = synthetic_genome(
        60_000, repeat_rate=0.5, tandem_periods=(500, 2000), tandem_rate=0.5, tandem_mutation=0.02, seed=2
    )
    seq = np.frombuffer(g.sequence.encode(), dtype=np.uint8)
    d = g.copy_distance
    for period in (500, 2000):
        copies = np.flatnonzero(d == period)
        assert len(copies) >= 2 * period  # each period covers a share (drawn by inverse length)
        same = seq[copies] == seq[copies - period]
        assert 0.97 < same.mean() < 0.995  # 2% substitutions, a quarter of which redraw the same base
    dispersed = np.flatnonzero((d > 0) & (d != 500) & (d != 2000))
    assert len(dispersed) and (seq[dispersed] == seq[dispersed - d[dispersed]]).all()  # exact, never in arrays
    assert np.array_equal(g.copied, d > 0)


def test_genome_too_short_for_its_repeats():
    with pytest.raises(ValueError, match="too short"):
        synthetic_genome(1000, repeat_gap=(300, 3000))
    with pytest.raises(ValueError, match="reaching 16000 bases"):
        synthetic_genome(50_000, tandem_periods=(4000,), tandem_rate=0.1, tandem_copies=(2, 4))


def test_markov_entropy_rate_matches_a_uniform_chain():
    chain = MarkovChain(2, np.full((16, 4), 0.25))
    assert chain.entropy_rate() == pytest.approx(2.0)


def test_classification_label_is_motif_order():
    records = synthetic_classification(200, length=128, seed=3)
    labels = np.array([r.label for r in records])
    assert 0.3 < labels.mean() < 0.7
    first = synthetic_classification(1, length=128, seed=0)[0]
    assert first.sequence != synthetic_classification(1, length=128, seed=1)[0].sequence


def test_kmer_counts():
    counts = kmer_counts(encode("ACGTNACGT").ids, k=2)
    assert counts.sum() == 6  # two 4-mers with 3 dimers each; none across the N
    assert counts[0 * 4 + 1] == 2  # AC


def test_kmer_baseline_cannot_read_motif_order(tmp_path):
    """Both classes share k-mer content, so the bag-of-k-mers yardstick sits near chance."""
    for split, seed, n in (("train", 0, 600), ("dev", 1, 300)):
        rows = [f"{r.sequence},{r.label}" for r in synthetic_classification(n, length=128, seed=seed)]
        (tmp_path / f"{split}.csv").write_text("sequence,label\n" + "\n".join(rows) + "\n")
    scores = evaluate(tmp_path)
    assert scores["n_train"] == 600 and scores["n_val"] == 300
    assert scores["acc"] < 0.65
