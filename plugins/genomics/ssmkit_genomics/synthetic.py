"""Synthetic DNA with a known structure: the bundled default data of every genomics task (no download).

Background: an order-k Markov chain with a random transition table (Dirichlet rows), whose entropy rate
H* (bits per base) is computed exactly, so a model's bits per base can be read against it.

`synthetic_genome` plants, over the background,
- motifs: `n_motifs` fixed k-mers, each inserted (forward or reverse-complemented) about `motif_rate`
  times per kilobase;
- long repeats: a `repeat_len` segment copied from `repeat_gap` = (min, max) bases earlier, at a random
  distance each time (dispersed duplications);
- tandem arrays (off by default): a unit of one of `tandem_periods` bases followed by `tandem_copies` - 1
  copies of it end to end, each copy a copy of the one before with a `tandem_mutation` rate of point
  substitutions (macrosatellites such as D4Z4, 3.3 kb units, or the 43 kb rDNA units). The distance to the
  source is always the period, so a convolution with a tap at that lag can learn to copy.
After its first few bases a copy is predictable only by a model that sees back to its source;
`copy_distance` says how far back that is (0 outside copies), `copied` marks the copies.

`synthetic_classification` makes labelled sequences that need order over a long range (Nguyen et al.'s
proposal for a CPU-scale HyenaDNA check): each holds motif A and the reverse complement of motif B;
label 1 iff A comes first. Both classes have the same k-mer content, so a bag-of-k-mers model sits at chance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ssmkit_genomics.readers import Record

BASES = np.array(list("ACGT"))
_RC = np.array([3, 2, 1, 0])  # complement of base indices A C G T


@dataclass
class MarkovChain:
    order: int
    table: np.ndarray  # (4**order, 4): P(next base | previous `order` bases)

    @classmethod
    def random(cls, order: int, rng: np.random.Generator, concentration: float = 0.5) -> MarkovChain:
        return cls(order, rng.dirichlet(np.full(4, concentration), size=4**order))

    def sample(self, n: int, length: int, rng: np.random.Generator) -> np.ndarray:
        """(n, length) base indices 0..3, n chains run side by side."""
        out = np.empty((n, length), dtype=np.int64)
        out[:, : self.order] = rng.integers(0, 4, size=(n, self.order))
        cum = self.table.cumsum(1)
        context = (out[:, : self.order] * 4 ** np.arange(self.order - 1, -1, -1)).sum(1)
        u = rng.random((n, length))
        for t in range(self.order, length):
            nxt = (u[:, t, None] > cum[context]).sum(1).clip(max=3)
            out[:, t] = nxt
            context = (context * 4 + nxt) % 4**self.order
        return out

    def entropy_rate(self) -> float:
        """Bits per base of the stationary chain."""
        n = 4**self.order
        transition = np.zeros((n, n))
        for c in range(n):
            transition[c, (c * 4 + np.arange(4)) % n] = self.table[c]
        pi = np.full(n, 1 / n)
        for _ in range(1000):
            pi = pi @ transition
        row_entropy = -(self.table * np.log2(self.table + 1e-300)).sum(1)
        return float(pi @ row_entropy)


@dataclass
class SyntheticGenome:
    sequence: str
    copy_distance: np.ndarray  # (L,) int: how far back the source of a repeat copy is; 0 outside copies
    entropy_rate: float  # bits per base of the Markov background

    @property
    def copied(self) -> np.ndarray:
        """(L,) bool: positions inside a repeat copy."""
        return self.copy_distance > 0


def synthetic_genome(
    length: int = 1_000_000,
    order: int = 3,
    n_motifs: int = 8,
    motif_len: int = 12,
    motif_rate: float = 1.0,
    repeat_len: int = 64,
    repeat_gap: tuple[int, int] = (300, 3000),
    repeat_rate: float = 1.0,
    tandem_periods: tuple[int, ...] = (),
    tandem_rate: float = 0.0,
    tandem_copies: tuple[int, int] = (2, 4),
    tandem_mutation: float = 0.01,
    seed: int = 0,
) -> SyntheticGenome:
    """A genome of `length` bases; motif, repeat and tandem-array rates are per kilobase."""
    longest = max([repeat_gap[1], *(tandem_copies[1] * p for p in tandem_periods)])
    if length < 4 * longest:
        raise ValueError(f"length={length} is too short for repeats or arrays reaching {longest} bases")
    rng = np.random.default_rng(seed)
    chain = MarkovChain.random(order, rng)
    chunk = 4096
    genome = chain.sample(-(-length // chunk), chunk, rng).reshape(-1)[:length]
    motifs = rng.integers(0, 4, size=(n_motifs, motif_len))
    for pos in _positions(length - motif_len, motif_rate, rng):
        motif = motifs[rng.integers(n_motifs)]
        genome[pos : pos + motif_len] = _RC[motif[::-1]] if rng.random() < 0.5 else motif
    distance = np.zeros(length, dtype=np.int64)
    if tandem_periods:
        _plant_tandem_arrays(genome, distance, tandem_periods, tandem_rate, tandem_copies, tandem_mutation, rng)
    in_array = distance > 0
    end = 0  # copies do not overlap or touch each other or an array, so each stays an exact copy
    for pos in _positions(length - repeat_len, repeat_rate, rng):
        gap = int(rng.integers(repeat_gap[0], repeat_gap[1] + 1))
        if pos >= gap and pos > end and not in_array[max(pos - 1, 0) : pos + repeat_len + 1].any():
            genome[pos : pos + repeat_len] = genome[pos - gap : pos - gap + repeat_len]
            distance[pos : pos + repeat_len] = gap
            end = pos + repeat_len
    return SyntheticGenome("".join(BASES[genome]), distance, chain.entropy_rate())


def _plant_tandem_arrays(
    genome: np.ndarray,
    distance: np.ndarray,
    periods: tuple[int, ...],
    rate_per_kb: float,
    copies: tuple[int, int],
    mutation: float,
    rng: np.random.Generator,
) -> None:
    """In place: arrays of `copies` units of one of `periods` bases, each copy the one before with point
    substitutions at rate `mutation`; arrays do not overlap. A period is drawn with probability inversely
    proportional to its length, so each covers about the same share of the genome. Marks the copies'
    distance (the period)."""
    weights = 1 / np.asarray(periods, dtype=float)
    end = 0
    for pos in _positions(len(genome), rate_per_kb, rng):
        period = int(rng.choice(periods, p=weights / weights.sum()))
        n_copies = int(rng.integers(copies[0], copies[1] + 1))
        stop = pos + n_copies * period
        if pos <= end or stop > len(genome):
            continue
        for start in range(pos + period, stop, period):
            unit = genome[start - period : start].copy()
            hits = rng.random(period) < mutation
            unit[hits] = rng.integers(0, 4, size=int(hits.sum()))
            genome[start : start + period] = unit
            distance[start : start + period] = period
        end = stop


def synthetic_classification(
    n: int, length: int = 256, motif_len: int = 8, min_gap: int = 32, seed: int = 0
) -> list[Record]:
    """`n` labelled records of `length` bases: label 1 iff motif A precedes reverse-complemented motif B.
    The background chain and the motifs are fixed; `seed` draws the samples (one seed per split)."""
    task = np.random.default_rng(1_000)
    chain = MarkovChain.random(3, task)
    motif_a, motif_b = task.integers(0, 4, size=(2, motif_len))
    rng = np.random.default_rng(seed)
    rc_b = _RC[motif_b[::-1]]
    seqs = chain.sample(n, length, rng)
    labels = rng.integers(0, 2, size=n)
    for seq, label in zip(seqs, labels, strict=True):
        first = int(rng.integers(0, length - 2 * motif_len - min_gap))
        second = int(rng.integers(first + motif_len + min_gap, length - motif_len + 1))
        a_pos, b_pos = (first, second) if label == 1 else (second, first)
        seq[a_pos : a_pos + motif_len] = motif_a
        seq[b_pos : b_pos + motif_len] = rc_b
    pairs = enumerate(zip(seqs, labels, strict=True))
    return [Record(f"synthetic_{i}", "".join(BASES[s]), int(y)) for i, (s, y) in pairs]


def _positions(limit: int, rate_per_kb: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted uniform positions in [0, limit), `rate_per_kb` per 1000 bases on average."""
    return np.sort(rng.integers(0, limit, size=rng.poisson(rate_per_kb * limit / 1000)))
