"""Bundled data: documented simulators, so every task runs on a fresh machine (nothing is downloaded).

`drifting_sensor` (seq2seq): a piezo-resistive force sensor sampled at `rate` Hz. A latent force F(t)
(smooth random oscillations plus rectified presses) loads an elastomer that creeps: the creep state
c(t) follows F with time constant `creep_tau` (dc/dt = (F - c) / tau). The sensing elements read

    r1 = g(T) * tanh(1.5 (F - 0.6 c)) + drift(t) + noise        (creep-compensated, saturating)
    r2 = g(T) * (F - 0.3 c)^2 / (1 + |F|) + 0.5 drift(t) + noise   (quadratic, different creep share)
    T  = temperature, a slow random walk; g(T) = 1 + 0.15 T      (gain drift)

with drift(t) a slow random walk of the baseline. Inputs are (r1, r2, T); the target is F. Inverting the
sensor needs history: the same reading means different forces depending on the creep state c, which is
an exponential average of the past force, and on the drifted baseline.

`ett_like` (forecast): an hourly 7-channel table in the ETT layout (date, six loads, OT): daily and weekly
cycles, slow trends and AR(1) noise; OT is a lagged, smoothed mix of the loads.

`activity_windows` (classify): IMU-like windows (3 accelerometer + 3 gyroscope channels at 50 Hz) of four
activities - standing (noise around gravity), walking (2 Hz gait), running (3 Hz, larger), badminton
(random swings) - with random phase, amplitude and sensor bias.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ACTIVITIES = ("standing", "walking", "running", "badminton")


def _random_walk(rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    return np.cumsum(rng.normal(0.0, scale, n))


def _force(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """Latent force: sum of slow sinusoids plus rectified presses, (L,)."""
    freqs = rng.uniform(0.05, 1.0, 4)
    waves = sum(rng.uniform(0.2, 0.6) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) for f in freqs)
    presses = np.maximum(0.0, np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t + rng.uniform(0, 2 * np.pi))) ** 2
    return waves + 1.5 * presses


def _creep(force: np.ndarray, dt: float, tau: float) -> np.ndarray:
    """First-order lag of the force: c[t] = c[t-1] + dt / tau * (F[t] - c[t-1]), (L,)."""
    c = np.empty_like(force)
    state, alpha = 0.0, dt / tau
    for i, f in enumerate(force):
        state += alpha * (f - state)
        c[i] = state
    return c


def drifting_sensor(
    n_series: int = 64,
    length: int = 2000,
    rate: float = 100.0,
    creep_tau: float = 2.0,
    noise: float = 0.02,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulated recordings: inputs (n_series, length, 3) = (r1, r2, T), targets (n_series, length, 1) = F."""
    rng = np.random.default_rng(seed)
    t = np.arange(length) / rate
    inputs = np.empty((n_series, length, 3), np.float32)
    targets = np.empty((n_series, length, 1), np.float32)
    for s in range(n_series):
        force = _force(rng, t)
        c = _creep(force, 1.0 / rate, creep_tau)
        temperature = _random_walk(rng, length, 0.01)
        drift = _random_walk(rng, length, 0.003)
        gain = 1.0 + 0.15 * temperature
        r1 = gain * np.tanh(1.5 * (force - 0.6 * c)) + drift
        r2 = gain * (force - 0.3 * c) ** 2 / (1.0 + np.abs(force)) + 0.5 * drift
        readings = np.stack([r1, r2, temperature], -1) + rng.normal(0.0, noise, (length, 3))
        inputs[s], targets[s, :, 0] = readings, force
    return inputs, targets


def ett_like(n_rows: int = 4000, seed: int = 0) -> pd.DataFrame:
    """An ETT-layout table: `date` (hourly from 2016-07-01) and HUFL, HULL, MUFL, MULL, LUFL, LULL, OT."""
    rng = np.random.default_rng(seed)
    hours = np.arange(n_rows)
    loads = {}
    for name in ("HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL"):
        daily = rng.uniform(0.5, 2.0) * np.sin(2 * np.pi * hours / 24 + rng.uniform(0, 2 * np.pi))
        weekly = rng.uniform(0.2, 0.8) * np.sin(2 * np.pi * hours / 168 + rng.uniform(0, 2 * np.pi))
        noise = np.zeros(n_rows)
        for i in range(1, n_rows):
            noise[i] = 0.8 * noise[i - 1] + rng.normal(0, 0.3)
        loads[name] = rng.uniform(2, 8) + daily + weekly + _random_walk(rng, n_rows, 0.02) + noise
    mix = sum(rng.uniform(0.2, 0.8) * v for v in loads.values())
    oil = pd.Series(mix).ewm(halflife=12).mean().shift(3, fill_value=mix[0]).to_numpy()
    frame = pd.DataFrame({"date": pd.date_range("2016-07-01", periods=n_rows, freq="h"), **loads})
    frame["OT"] = oil + rng.normal(0, 0.2, n_rows)
    return frame


def _activity(rng: np.random.Generator, label: int, t: np.ndarray) -> np.ndarray:
    """One (L, 6) IMU window of activity `label`."""
    gravity = np.array([0.0, 0.0, 9.8, 0.0, 0.0, 0.0])
    if ACTIVITIES[label] == "standing":
        motion = np.zeros((len(t), 6))
    elif ACTIVITIES[label] in ("walking", "running"):
        f, amp = (2.0, 1.5) if ACTIVITIES[label] == "walking" else (3.0, 4.0)
        phase = rng.uniform(0, 2 * np.pi, 6)
        motion = amp * rng.uniform(0.5, 1.5, 6) * np.sin(2 * np.pi * f * t[:, None] + phase)
    else:
        swings = np.zeros(len(t))
        swings[rng.integers(0, len(t), 3)] = 1.0
        kernel = np.exp(-0.5 * (np.arange(-15, 16) / 4.0) ** 2)
        motion = 8.0 * np.convolve(swings, kernel, "same")[:, None] * rng.normal(0, 1, 6)
    bias = rng.normal(0, 0.3, 6)
    return gravity + motion + bias + rng.normal(0, 0.3, (len(t), 6))


def activity_windows(
    n: int = 200, length: int = 100, rate: float = 50.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Windows (n, length, 6) float32 and labels (n,) int64, balanced over ACTIVITIES."""
    rng = np.random.default_rng(seed)
    t = np.arange(length) / rate
    labels = np.arange(n) % len(ACTIVITIES)
    rng.shuffle(labels)
    windows = np.stack([_activity(rng, int(y), t) for y in labels]).astype(np.float32)
    return windows, labels.astype(np.int64)
