"""The audio plugin's bundled defaults, so every task runs on a fresh machine: synthetic digit-like utterances
(`synthetic_digits`, for `classify` and `generate`) and synthetic music (`synthetic_music`, for `restore`).

Music: each clip has 2-4 voices in one key. A voice plays a melody of notes (scale degrees of a major or minor
scale in its own register, each half, one or two beats long at a clip tempo of 80-160 bpm); a note is a harmonic
series up to the Nyquist frequency, `a_k = k^(-tilt) * (odd/even colour)` with a little inharmonicity and vibrato,
under an attack-decay-sustain-release envelope. With probability 0.7 a clip adds hi-hat-like ticks (high-passed
noise bursts with 20-60 ms decay) on every half beat, so the top octave holds both harmonic and noise content, as
music does.

Digits:

Each of the ten classes is a fixed "word" (drawn once from `PATTERN_SEED`): two voiced segments whose first two
formants glide between class-specific targets (F1 250-900 Hz, F2 800-2400 Hz, like vowels and diphthongs), and,
for some classes, a fricative burst (high-passed noise, like the /s/ of "six" and "seven") before or after them.
A voiced segment is a harmonic source at the speaker's pitch shaped by Gaussian formant resonances:

    x(t) = sum_k a_k(t) sin(k phi(t)),   phi' = 2 pi f0(t),   a_k(t) = sum_i g_i exp(-(k f0(t) - F_i(t))^2 / 2 b_i^2)

Speakers differ as people do: pitch f0 85-230 Hz (with a falling declination over the word), vocal-tract length
(all formants scaled by 0.85-1.15) and speaking rate (0.8-1.25x); each clip adds its own pitch, duration and
timing jitter, leading / trailing silence and a noise floor. Speakers are named `spk0`, `spk1`, ..., so the task
is split by speaker as on real recordings: a held-out speaker has a pitch and tract length never heard in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PATTERN_SEED = 1234
N_DIGITS = 10
FORMANT_GAIN = np.array([1.0, 0.6])
FORMANT_WIDTH_HZ = np.array([90.0, 130.0])


@dataclass(frozen=True)
class Word:
    """A class's pattern: formant targets (3 points, 2 formants) in Hz for the glide through its two voiced
    segments, where the voiced part splits, and its fricative ("none", "start", "end")."""

    formants: np.ndarray  # (3, 2)
    split: float
    fricative: str


@dataclass(frozen=True)
class Voice:
    f0: float  # Hz
    tract: float  # formant scale
    rate: float  # speaking-rate factor (>1: faster, shorter words)


def words(n_classes: int = N_DIGITS) -> list[Word]:
    """The classes' fixed patterns (the same on every call)."""
    rng = np.random.default_rng(PATTERN_SEED)
    fricatives = ("none", "start", "end")
    return [
        Word(
            formants=np.stack([rng.uniform(250, 900, 3), rng.uniform(800, 2400, 3)], 1),
            split=float(rng.uniform(0.35, 0.65)),
            fricative=fricatives[c % 3],
        )
        for c in range(n_classes)
    ]


def voices(n_speakers: int, seed: int) -> list[Voice]:
    rng = np.random.default_rng(seed)
    return [Voice(rng.uniform(85, 230), rng.uniform(0.85, 1.15), rng.uniform(0.8, 1.25)) for _ in range(n_speakers)]


def utterance(word: Word, voice: Voice, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """One clip (L,) float32, peak 0.5."""
    seconds = 0.4 / voice.rate * rng.uniform(0.85, 1.15)
    n = int(seconds * sample_rate)
    t = np.arange(n) / n  # 0..1 over the word
    fricative = 0.25 if word.fricative != "none" else 0.0
    start = fricative if word.fricative == "start" else 0.0
    voiced = (t >= start) & (t < start + 1 - fricative)
    u = np.clip((t - start) / (1 - fricative), 0, 1)  # 0..1 over the voiced part
    split = word.split + rng.uniform(-0.05, 0.05)
    points = np.array([0.0, split, 1.0])
    formants = np.stack([np.interp(u, points, word.formants[:, i]) for i in range(2)], 1) * voice.tract  # (n, 2)
    f0 = voice.f0 * rng.uniform(0.95, 1.05) * (1 - 0.15 * t)
    signal = harmonics(f0, formants, sample_rate) * voiced * ramp(voiced, sample_rate)
    if fricative:
        noise = np.diff(rng.normal(size=n + 1))  # high-passed white noise
        region = ~voiced
        signal += 0.3 * noise * region * ramp(region, sample_rate)
    silence = [np.zeros(int(rng.uniform(0.01, 0.06) * sample_rate)) for _ in range(2)]
    clip = np.concatenate([silence[0], signal, silence[1]])
    clip = clip / max(np.abs(clip).max(), 1e-9) * 0.5 + rng.normal(scale=0.003, size=len(clip))
    return clip.astype(np.float32)


def harmonics(f0: np.ndarray, formants: np.ndarray, sample_rate: int) -> np.ndarray:
    """f0 (n,) Hz, formants (n, 2) Hz -> the formant-shaped harmonic series (n,) below the Nyquist frequency."""
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    k = np.arange(1, int(sample_rate / 2 / f0.max()) + 1)[:, None]  # (K, 1)
    distance = (k * f0[None] - formants.T[:, None]) / FORMANT_WIDTH_HZ[:, None, None]  # (2, K, n)
    amplitude = (FORMANT_GAIN[:, None, None] * np.exp(-0.5 * distance**2)).sum(0)  # (K, n)
    return (amplitude * np.sin(k * phase[None])).sum(0)


def ramp(region: np.ndarray, sample_rate: int, seconds: float = 0.02) -> np.ndarray:
    """A 0-1 envelope rising and falling over `seconds` at the edges of the True run in `region` (n,)."""
    inside = np.flatnonzero(region)
    envelope = np.zeros(len(region))
    if not len(inside):
        return envelope
    a, b = inside[0], inside[-1] + 1
    width = max(1, min(int(seconds * sample_rate), (b - a) // 2))
    envelope[a:b] = 1.0
    edge = np.linspace(0, 1, width, endpoint=False)
    envelope[a : a + width] = edge
    envelope[b - width : b] = edge[::-1]
    return envelope


def synthetic_digits(
    n_clips: int, n_speakers: int = 6, sample_rate: int = 8000, seed: int = 0
) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
    """`n_clips` clips cycling through speakers x classes: (clips [(L_i,) float32], labels (n,), speakers [str])."""
    patterns, people = words(), voices(n_speakers, seed)
    rng = np.random.default_rng(seed + 1)
    labels = np.arange(n_clips) % N_DIGITS
    speakers = (np.arange(n_clips) // N_DIGITS) % n_speakers
    clips = [utterance(patterns[c], people[s], rng, sample_rate) for c, s in zip(labels, speakers, strict=True)]
    return clips, labels, [f"spk{s}" for s in speakers]


MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
MINOR = np.array([0, 2, 3, 5, 7, 8, 10])


def synthetic_music(n_clips: int, seconds: float = 2.0, sample_rate: int = 22050, seed: int = 0) -> list[np.ndarray]:
    """`n_clips` clips of synthetic music (see the module doc), each (seconds * sample_rate,) float32, peak 0.5."""
    rng = np.random.default_rng(seed)
    return [music_clip(rng, int(seconds * sample_rate), sample_rate) for _ in range(n_clips)]


def music_clip(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """One clip (n,) float32 of 2-4 voices and optional ticks, peak 0.5."""
    key, scale = int(rng.integers(12)), MAJOR if rng.random() < 0.5 else MINOR
    beat = 60 / rng.uniform(80, 160)  # seconds per beat
    mix = np.zeros(n)
    for _ in range(int(rng.integers(2, 5))):
        mix += rng.uniform(0.4, 1.0) * voice(rng, n, sample_rate, key, scale, beat)
    if rng.random() < 0.7:
        mix += ticks(rng, n, sample_rate, beat) * rng.uniform(0.05, 0.3) * np.abs(mix).max()
    return (mix / max(np.abs(mix).max(), 1e-9) * 0.5).astype(np.float32)


def voice(rng: np.random.Generator, n: int, sample_rate: int, key: int, scale: np.ndarray, beat: float) -> np.ndarray:
    """A melody (n,) of one timbre in one register."""
    low = int(rng.integers(36, 72))  # MIDI note of the register's bottom
    tilt, odd = rng.uniform(0.6, 1.6), rng.uniform(0.3, 1.0)  # spectral slope; <1: the even partials softer
    out, start = np.zeros(n), 0
    while start < n:
        length = min(int(beat * rng.choice([0.5, 1.0, 2.0]) * sample_rate), n - start)
        degree = int(rng.integers(len(scale) * 2))
        midi = low + key % 12 + scale[degree % len(scale)] + 12 * (degree // len(scale))
        f0 = 440.0 * 2 ** ((midi - 69) / 12)
        out[start : start + length] = note(rng, f0, length, sample_rate, tilt, odd)
        start += length
    return out


def note(rng: np.random.Generator, f0: float, n: int, sample_rate: int, tilt: float, odd: float) -> np.ndarray:
    """A harmonic note (n,): partials k f0 sqrt(1 + B k^2) below Nyquist, amplitudes k^-tilt (even ones x odd),
    5-6 Hz vibrato, and an ADSR envelope."""
    t = np.arange(n) / sample_rate
    inharmonic = rng.uniform(0, 2e-4)
    vibrato = 1 + rng.uniform(0, 0.004) * np.sin(2 * np.pi * rng.uniform(5, 6) * t)
    k = np.arange(1, max(2, int(sample_rate / 2 / f0)))
    k = k[k * f0 * np.sqrt(1 + inharmonic * k**2) < sample_rate / 2 * 0.98]
    amplitude = k ** (-tilt) * np.where(k % 2 == 0, odd, 1.0)
    phase = 2 * np.pi * np.cumsum(f0 * vibrato) / sample_rate  # (n,)
    stretch = k * np.sqrt(1 + inharmonic * k**2)
    partials = np.sin(stretch[:, None] * phase[None] + rng.uniform(0, 2 * np.pi, (len(k), 1)))
    return (amplitude[:, None] * partials).sum(0) * adsr(rng, n, sample_rate)


def adsr(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Attack 5-40 ms, decay 50-200 ms to a sustain of 0.3-0.8, release 30-150 ms; (n,)."""
    attack, decay, release = (int(rng.uniform(*r) * sample_rate) for r in ((0.005, 0.04), (0.05, 0.2), (0.03, 0.15)))
    sustain = rng.uniform(0.3, 0.8)
    points = [0, min(attack, n), min(attack + decay, n), max(n - release, min(attack + decay, n)), n]
    return np.interp(np.arange(n), points, [0, 1, sustain, sustain, 0])


def ticks(rng: np.random.Generator, n: int, sample_rate: int, beat: float) -> np.ndarray:
    """Hi-hat-like ticks on every half beat: high-passed noise with a 20-60 ms exponential decay; (n,), peak ~1."""
    out = np.zeros(n)
    decay = rng.uniform(0.02, 0.06)
    size = min(n, int(5 * decay * sample_rate))
    burst = np.diff(rng.normal(size=size + 1)) * np.exp(-np.arange(size) / (decay * sample_rate)) / 2
    for start in range(0, n, max(1, int(beat / 2 * sample_rate))):
        stop = min(n, start + size)
        out[start:stop] += burst[: stop - start]
    return out
