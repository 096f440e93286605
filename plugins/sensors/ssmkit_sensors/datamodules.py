"""Data modules of the sensors tasks. With `root=None` each uses the bundled simulators
(`ssmkit_sensors.simulator`), so every task runs on a fresh machine; nothing is downloaded.

- `Seq2SeqData`: input and target columns of a CSV / NPZ recording, split in time (train, val, test by
  fraction), standardised with the training rows' statistics, cut into windows. Default: simulated
  drifting-sensor recordings, split by recording.
- `ForecastData`: the ETT layout (a date column, then channels); the standard 12/4/4-month split
  (`split: ett`) or fractions; windows of `seq_len` past rows and `horizon` future rows, standardised
  with the training split's statistics (MSE / MAE are then the literature's standardised numbers);
  `scaler` keeps the fitted scaler, to write forecasts in the data's units.
- `ClassificationData`: UEA `.ts` files (`*_TRAIN.ts`, `*_TEST.ts`), per-step labelled IMU recordings
  (`sXX/*_<device>.csv`, windows labelled by their majority label, split by subject), or simulated
  activity windows.

Missing / NaN / inf values are named (column and row) and handled as `missing` says: interpolate, drop
the windows that touch them, or fail.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from sklearn.preprocessing import StandardScaler
from torch.utils.data import DataLoader, Dataset, TensorDataset

from ssmkit_sensors import readers, simulator
from ssmkit_sensors.readers import DataError

log = logging.getLogger(__name__)
Tensor = torch.Tensor
STAGES = ("train", "val", "test")


@dataclass
class Recording:
    """One continuous stream: inputs (L, C), targets (L, T), valid (L,) rows usable inside a window."""

    inputs: np.ndarray
    targets: np.ndarray
    valid: np.ndarray


class Windows(Dataset):
    """Windows of recordings: items (inputs (W, C), targets (W_target, T)) float32 tensors. With
    `horizon`, targets are the `horizon` rows after the window (forecasting); else the window's rows."""

    def __init__(self, recordings: list[Recording], window: int, stride: int, source: str, horizon: int = 0) -> None:
        self.recordings, self.window, self.horizon = recordings, window, horizon
        self.index = [
            (r, int(s))
            for r, rec in enumerate(recordings)
            for s in readers.window_starts(rec.valid, window + horizon, stride, f"{source} recording {r}")
        ]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        r, s = self.index[i]
        rec, w = self.recordings[r], self.window
        if self.horizon:
            return torch.from_numpy(rec.inputs[s : s + w]), torch.from_numpy(rec.targets[s + w : s + w + self.horizon])
        return torch.from_numpy(rec.inputs[s : s + w]), torch.from_numpy(rec.targets[s : s + w])


def _standardise(splits: dict[str, list[Recording]]) -> tuple[StandardScaler, StandardScaler]:
    """Fit input and target scalers on the valid training rows; apply them to every split in place."""
    train = splits["train"]
    scalers = []
    for field in ("inputs", "targets"):
        rows = np.concatenate([getattr(r, field)[r.valid] for r in train])
        scaler = StandardScaler().fit(rows)
        scaler.scale_ = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
        for recs in splits.values():
            for r in recs:
                setattr(r, field, scaler.transform(getattr(r, field)).astype(np.float32))
        scalers.append(scaler)
    return scalers[0], scalers[1]


def _time_split(n: int, fractions: tuple[float, float], source: str) -> dict[str, slice]:
    """Chronological train / val / test ranges of n rows (or recordings); val and test take the given
    fractions of the end."""
    n_val, n_test = int(n * fractions[0]), int(n * fractions[1])
    if min(n_val, n_test, n - n_val - n_test) < 1:
        raise DataError(f"{source}: {n} rows / recordings cannot be split into train / val / test by {fractions}")
    return {
        "train": slice(0, n - n_val - n_test),
        "val": slice(n - n_val - n_test, n - n_test),
        "test": slice(n - n_test, n),
    }


class _WindowData(L.LightningDataModule):
    """Shared loaders over `self.datasets[stage]` (a `Windows` or `TensorDataset`)."""

    def __init__(self, batch_size: int, num_workers: int) -> None:
        super().__init__()
        self.batch_size, self.num_workers = batch_size, num_workers
        self.datasets: dict[str, Dataset] = {}

    def _loader(self, stage: str, shuffle: bool = False) -> DataLoader:
        return DataLoader(
            self.datasets[stage], batch_size=self.batch_size, shuffle=shuffle, num_workers=self.num_workers
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test")


class Seq2SeqData(_WindowData):
    def __init__(
        self,
        root: str | None = None,
        input_columns: list[str] | None = None,
        target_columns: list[str] | None = None,
        date_column: str | list[str] | None = None,
        date_format: str | None = None,
        missing_value: float | None = None,
        missing: str = "interpolate",
        mask_missing_targets: bool = False,
        window: int = 200,
        stride: int = 50,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        simulator_kwargs: dict | None = None,
        batch_size: int = 16,
        num_workers: int = 0,
    ) -> None:
        """root: a CSV / NPZ recording (input_columns -> target_columns), split in time; None: the drifting-
        sensor simulator (`simulator_kwargs` for `simulator.drifting_sensor`), split by recording. Training
        windows start every `stride` rows; validation and test windows tile their split. `missing` handles
        missing values of every column; with `mask_missing_targets` only those of the inputs, and a missing
        target stays NaN, left out of the loss and the metrics (a soft sensor is scored only where the
        reference instrument measured, never against interpolated values)."""
        super().__init__(batch_size, num_workers)
        if root is not None and not (input_columns and target_columns):
            raise ValueError("a CSV / NPZ root needs input_columns and target_columns")
        self.root, self.input_columns, self.target_columns = root, input_columns, target_columns
        self.date_column, self.date_format, self.missing_value = date_column, date_format, missing_value
        self.missing, self.window, self.stride = missing, window, stride
        self.mask_missing_targets = mask_missing_targets
        self.fractions = (val_fraction, test_fraction)
        self.simulator_kwargs = simulator_kwargs or {}
        self.target_scaler: StandardScaler | None = None

    @property
    def d_input(self) -> int:
        return len(self.input_columns) if self.root else 3

    @property
    def d_target(self) -> int:
        return len(self.target_columns) if self.root else 1

    @property
    def target_names(self) -> list[str]:
        return list(self.target_columns) if self.root else ["force"]

    def recordings(self) -> dict[str, list[Recording]]:
        if self.root is None:
            inputs, targets = simulator.drifting_sensor(**self.simulator_kwargs)
            bounds = _time_split(len(inputs), self.fractions, "simulated sensor recordings")
            valid = np.ones(inputs.shape[1], bool)
            return {
                k: [Recording(x, y, valid) for x, y in zip(inputs[s], targets[s], strict=True)]
                for k, s in bounds.items()
            }
        columns = [*self.input_columns, *self.target_columns]
        frame = readers.read_table(self.root, columns, self.date_column, self.date_format, self.missing_value)
        handled = self.input_columns if self.mask_missing_targets else columns
        frame, valid = readers.handle_missing(frame, handled, self.missing, str(self.root))
        if self.mask_missing_targets:
            frame[self.target_columns] = frame[self.target_columns].replace([np.inf, -np.inf], np.nan)
            report = readers.nonfinite_report(frame, self.target_columns, str(self.root))
            if report is not None:
                log.info("%s; left out of the loss and metrics (mask_missing_targets)", report)
        parts = _time_split(len(frame), self.fractions, str(self.root))
        x, y = frame[self.input_columns].to_numpy(), frame[self.target_columns].to_numpy()
        return {k: [Recording(x[s], y[s], valid[s])] for k, s in parts.items()}

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        splits = self.recordings()
        _, self.target_scaler = _standardise(splits)
        source = str(self.root or "simulated sensor")
        for name, recs in splits.items():
            stride = self.stride if name == "train" else self.window
            self.datasets[name] = Windows(recs, self.window, stride, f"{source} {name} split")


class ForecastData(_WindowData):
    def __init__(
        self,
        root: str | None = None,
        columns: list[str] | None = None,
        date_column: str | None = "date",
        seq_len: int = 96,
        horizon: int = 96,
        split: str | list[float] = "ett",
        missing: str = "interpolate",
        synthetic_rows: int = 14_400,
        train_stride: int = 1,
        batch_size: int = 32,
        num_workers: int = 0,
    ) -> None:
        """root: a CSV / NPZ in the ETT layout; columns: the channels (default: every column but the date);
        None: `simulator.ett_like(synthetic_rows)`. split: 'ett' (12 / 4 / 4 months of 30 days from the
        start, as Informer / DLinear / PatchTST) or [val_fraction, test_fraction] chronologically."""
        super().__init__(batch_size, num_workers)
        self.root, self.columns, self.date_column = root, columns, date_column
        self.seq_len, self.horizon, self.split, self.missing = seq_len, horizon, split, missing
        self.synthetic_rows, self.train_stride = synthetic_rows, train_stride
        self.channels: list[str] = []
        self.scaler: StandardScaler | None = None

    @property
    def n_channels(self) -> int:
        """Channels of the table (after setup)."""
        return len(self.channels)

    def table(self) -> pd.DataFrame:
        if self.root is None:
            return simulator.ett_like(self.synthetic_rows)
        if self.columns is None:
            head = (
                pd.read_csv(self.root, nrows=0).columns if str(self.root).endswith(".csv") else list(np.load(self.root))
            )
            columns = [c for c in head if c != self.date_column]
        else:
            columns = list(self.columns)
        return readers.read_table(self.root, columns, self.date_column)

    def borders(self, frame: pd.DataFrame, source: str) -> dict[str, slice]:
        """Row ranges of the splits (their own rows; a window's past may reach into the split before)."""
        if self.split != "ett":
            return _time_split(len(frame), tuple(self.split), source)
        if "date" not in frame.columns:
            raise DataError(f"{source}: split 'ett' needs a date column (set date_column, or give split fractions)")
        step = frame["date"].diff().median()
        month = int(pd.Timedelta(days=30) / step)
        ends = [12 * month, 16 * month, 20 * month]
        if len(frame) < ends[1] + 1:
            raise DataError(
                f"{source}: {len(frame)} rows do not cover the 12 + 4 months of split 'ett' ({ends[1]} rows)"
            )
        ends[2] = min(ends[2], len(frame))
        return {"train": slice(0, ends[0]), "val": slice(ends[0], ends[1]), "test": slice(ends[1], ends[2])}

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        source = str(self.root or "simulated ETT-like table")
        frame = self.table()
        self.channels = [c for c in frame.columns if c != "date"]
        frame, valid = readers.handle_missing(frame, self.channels, self.missing, source)
        parts = self.borders(frame, source)
        self._check_lengths(parts, source)
        values = frame[self.channels].to_numpy()
        self.scaler = StandardScaler().fit(values[parts["train"]][valid[parts["train"]]])
        values = self.scaler.transform(values).astype(np.float32)
        for name, part in parts.items():
            start = part.start if name == "train" else part.start - self.seq_len
            rec = Recording(values[start : part.stop], values[start : part.stop], valid[start : part.stop])
            stride = self.train_stride if name == "train" else 1
            self.datasets[name] = Windows([rec], self.seq_len, stride, f"{source} {name} split", horizon=self.horizon)

    def _check_lengths(self, parts: dict[str, slice], source: str) -> None:
        sizes = {k: s.stop - s.start for k, s in parts.items()}
        if sizes["train"] < self.seq_len + self.horizon:
            raise DataError(
                f"{source}: the train split has {sizes['train']} rows, too few for one window of "
                f"seq_len {self.seq_len} + horizon {self.horizon}"
            )
        for name in ("val", "test"):
            if self.horizon > sizes[name]:
                raise DataError(
                    f"{source}: horizon {self.horizon} is longer than the {name} split ({sizes[name]} rows)"
                )
        if parts["val"].start < self.seq_len:
            raise DataError(f"{source}: seq_len {self.seq_len} reaches before the first row of the file")


class ClassificationData(_WindowData):
    def __init__(
        self,
        root: str | None = None,
        device: str = "sw",
        channels: list[str] | None = None,
        window: int = 100,
        stride: int = 50,
        val_subjects: list[str] | None = None,
        test_subjects: list[str] | None = None,
        val_fraction: float = 0.2,
        missing: str = "interpolate",
        n_synthetic: int = 400,
        synthetic_length: int = 100,
        batch_size: int = 32,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        """root: a folder with `*_TRAIN.ts` / `*_TEST.ts` (UEA; validation is a stratified `val_fraction` of
        train), or subject folders `sXX/*_<device>.csv` with per-step labels (windows of `window` rows every
        `stride`, labelled by majority; split by subject); None: simulated activity windows."""
        super().__init__(batch_size, num_workers)
        self.root, self.device, self.window, self.stride = root, device, window, stride
        self.channels = channels or ["x_acc", "y_acc", "z_acc", "x_gyro", "y_gyro", "z_gyro"]
        self.val_subjects, self.test_subjects = val_subjects or ["s03"], test_subjects or ["s04"]
        self.val_fraction, self.missing, self.seed = val_fraction, missing, seed
        self.n_synthetic, self.synthetic_length = n_synthetic, synthetic_length
        self.classes: list[str] = []

    @property
    def d_input(self) -> int:
        """Channels per step (after setup)."""
        return int(self.datasets["train"].tensors[0].shape[-1])

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def _ts_files(self) -> tuple[Path, Path] | None:
        root = Path(self.root)
        train, test = sorted(root.glob("*_TRAIN.ts")), sorted(root.glob("*_TEST.ts"))
        return (train[0], test[0]) if train and test else None

    def arrays(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """{stage: (windows (N, L, C) float32, labels (N,) int64)}; sets `classes`."""
        if self.root is None:
            self.classes = list(simulator.ACTIVITIES)
            sizes = {"train": self.n_synthetic, "val": self.n_synthetic // 4, "test": self.n_synthetic // 4}
            return {
                k: simulator.activity_windows(n, self.synthetic_length, seed=self.seed + i)
                for i, (k, n) in enumerate(sizes.items())
            }
        if not Path(self.root).is_dir():
            raise FileNotFoundError(f"{self.root}: not a folder (expected *_TRAIN.ts / *_TEST.ts or sXX/ folders)")
        ts = self._ts_files()
        return self._ts_arrays(*ts) if ts else self._stream_arrays()

    def _ts_arrays(self, train_path: Path, test_path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        x, y, self.classes = readers.read_ts(train_path)
        x_test, y_test, _ = readers.read_ts(test_path)
        rng = np.random.default_rng(self.seed)
        val = np.concatenate(
            [
                rng.permutation(np.flatnonzero(y == c))[: max(1, int(self.val_fraction * (y == c).sum()))]
                for c in np.unique(y)
            ]
        )
        train = np.setdiff1d(np.arange(len(y)), val)
        return {"train": (x[train], y[train]), "val": (x[val], y[val]), "test": (x_test, y_test)}

    def _stream_arrays(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        root = Path(self.root)
        files = sorted(root.glob(f"s*/*_{self.device}.csv"))
        if not files:
            raise DataError(f"{root}: no *_TRAIN.ts / *_TEST.ts and no subject folders with *_{self.device}.csv")
        streams = readers.read_labelled_streams(files, self.channels, self.missing)
        self.classes = sorted({label for _, labels in streams for label in labels})
        groups: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {k: [] for k in STAGES}
        for path, (values, labels) in zip(files, streams, strict=True):
            subject = path.parent.name
            stage = "test" if subject in self.test_subjects else "val" if subject in self.val_subjects else "train"
            groups[stage] += self._label_windows(values, labels, str(path))
        empty = [k for k, v in groups.items() if not v]
        if empty:
            raise DataError(f"{root}: no windows for split(s) {empty} (check val_subjects / test_subjects)")
        return {k: (np.stack([w for w, _ in v]), np.array([c for _, c in v])) for k, v in groups.items()}

    def _label_windows(self, values: np.ndarray, labels: np.ndarray, source: str) -> list[tuple[np.ndarray, int]]:
        ids = np.array([self.classes.index(label) for label in labels])
        starts = readers.window_starts(np.ones(len(values), bool), self.window, self.stride, source)
        return [(values[s : s + self.window], int(np.bincount(ids[s : s + self.window]).argmax())) for s in starts]

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        arrays = self.arrays()
        channels = arrays["train"][0].shape[-1]
        scaler = StandardScaler().fit(arrays["train"][0].reshape(-1, channels))
        for name, (x, y) in arrays.items():
            x = scaler.transform(x.reshape(-1, channels)).reshape(x.shape).astype(np.float32)
            self.datasets[name] = TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
