"""On-the-fly perturbation of `audio.classify`'s training clips, and length-bucketed training batches.

- `ClipAugmentation` (the ranges) and `perturb` (one random draw applied to one clip): speed, gain, a random time
  shift and noise, in that order, so a clip is heard as another speaker might say it:
  - speed and pitch together by resampling (the clip is read as if recorded at `rate * f`, f uniform in
    `1 +- speed` in steps of 1%: formants and pitch move by f, the length by 1 / f; `torchaudio`'s band-limited
    `resample`), the vocal-tract-length and speaking-rate change that separates speakers;
  - gain uniform in `+- gain_db`;
  - a time shift: up to `shift_seconds` of silence in front (inside the padded window: the model masks what lies
    beyond each length, so only the onset moves);
  - white noise at an SNR uniform in `snr_db` (dB, against the clip's RMS).
  The result is cut at `max_length` samples. The label never changes.
- `AugmentedClips`: a list of `(waveform (L,), label)` whose items are perturbed afresh at every draw, by a
  generator seeded once (its state is saved with the loader's, so a resumed run draws on). Only the train split
  is wrapped: val and test clips are never perturbed.
- `LengthBatches`: training batches of clips of similar length (a batch is padded to its longest clip, and an SSM
  reading raw samples pays for every padded one): each epoch shuffles the clips, sorts pools of `pool` batches by
  length, cuts them into batches and shuffles the batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torchaudio.functional as AF
from torch.utils.data import Dataset, Sampler

Tensor = torch.Tensor
SPEED_STEPS = 100  # speed factors are multiples of 1 / SPEED_STEPS (a short resampling filter)


@dataclass(frozen=True)
class ClipAugmentation:
    """The ranges of `perturb`'s random draws (0 turns a perturbation off).

    Attributes:
        speed: speed (and pitch) factor f uniform in [1 - speed, 1 + speed].
        shift_seconds: up to this much silence put in front of the clip.
        gain_db: gain uniform in [-gain_db, gain_db] dB.
        snr_db: white noise at an SNR uniform in this range (dB); None: no noise.
    """

    speed: float = 0.15
    shift_seconds: float = 0.1
    gain_db: float = 6.0
    snr_db: tuple[float, float] | None = (20.0, 40.0)

    def __post_init__(self) -> None:
        if not 0 <= self.speed < 1 or self.shift_seconds < 0 or self.gain_db < 0:
            raise ValueError(f"need 0 <= speed < 1, shift_seconds >= 0 and gain_db >= 0, got {self}")


def change_speed(waveform: Tensor, factor: float) -> Tensor:
    """waveform (L,) played `factor` times as fast -> (round(L / factor),): pitch and formants times `factor`."""
    orig = round(factor * SPEED_STEPS)
    return waveform if orig == SPEED_STEPS else AF.resample(waveform, orig, SPEED_STEPS)


def perturb(
    waveform: Tensor, rng: np.random.Generator, augmentation: ClipAugmentation, sample_rate: int, max_length: int
) -> Tensor:
    """One random draw of `augmentation` applied to waveform (L,) -> (L',) float32, L' <= max_length."""
    a = augmentation
    x = change_speed(waveform, float(rng.uniform(1 - a.speed, 1 + a.speed)))
    x = x * 10 ** (float(rng.uniform(-a.gain_db, a.gain_db)) / 20)
    rms = x.square().mean().sqrt() if len(x) else x.new_zeros(())
    shift = int(rng.integers(int(a.shift_seconds * sample_rate) + 1))
    x = torch.cat([x.new_zeros(shift), x])[:max_length]
    if a.snr_db is not None:
        noise_rms = rms * 10 ** (-float(rng.uniform(*a.snr_db)) / 20)
        x = x + noise_rms * torch.from_numpy(rng.standard_normal(len(x)).astype(np.float32))
    return x.float()


class AugmentedClips(Dataset):
    """`(waveform (L,), label)` samples, each perturbed afresh (`perturb`) at every draw; see the module doc."""

    def __init__(
        self,
        samples: list[tuple[Tensor, int]],
        augmentation: ClipAugmentation,
        sample_rate: int,
        max_length: int,
        seed: int,
    ) -> None:
        self.samples, self.augmentation = samples, augmentation
        self.sample_rate, self.max_length = sample_rate, max_length
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.samples)

    def state_dict(self) -> dict[str, Any]:
        """The draws' generator state: `StatefulDataLoader` saves it in checkpoints, so a resumed run draws on."""
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        waveform, label = self.samples[index]
        return perturb(waveform, self.rng, self.augmentation, self.sample_rate, self.max_length), label


class LengthBatches(Sampler[list[int]]):
    """Batches of indices of clips of similar length (see the module doc); partial batches are dropped.

    Stateful like torchdata's `RandomSampler`: `state_dict` holds the generator's state at the epoch's start and
    the batches yielded since, so a run resumed mid-epoch gets the rest of the same epoch."""

    def __init__(self, lengths: list[int], batch_size: int, generator: torch.Generator, pool: int = 16) -> None:
        self.lengths, self.batch_size, self.generator, self.pool = lengths, batch_size, generator, pool
        self.epoch_state: Tensor | None = None
        self.yielded, self.next_yielded = 0, 0

    def pools(self) -> list[int]:
        """The sizes of the pools an epoch is cut into."""
        n, size = len(self.lengths), self.pool * self.batch_size
        return [min(size, n - start) for start in range(0, n, size)]

    def __len__(self) -> int:
        return sum(p // self.batch_size for p in self.pools())

    def batches(self) -> list[list[int]]:
        """One epoch's batches, drawn from the generator."""
        order = torch.randperm(len(self.lengths), generator=self.generator).tolist()
        batches, start, b = [], 0, self.batch_size
        for size in self.pools():
            chunk = sorted(order[start : start + size], key=self.lengths.__getitem__)
            batches += [chunk[i : i + b] for i in range(0, size - b + 1, b)]
            start += size
        return [batches[i] for i in torch.randperm(len(batches), generator=self.generator).tolist()]

    def __iter__(self) -> Iterator[list[int]]:
        self.epoch_state = self.generator.get_state()
        self.yielded, self.next_yielded = self.next_yielded, 0
        for batch in self.batches()[self.yielded :]:
            self.yielded += 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.epoch_state, "yielded": self.yielded}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["generator"] is not None:
            self.generator.set_state(state["generator"])
        self.next_yielded = state["yielded"]
