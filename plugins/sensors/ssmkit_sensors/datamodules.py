"""Data modules of the sensors tasks (`ssmkit.data.BaseDataModule`s: each builds its splits, the base serves them;
predict serves the test windows, in order). With `root=None` each uses the bundled simulators
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
the windows that touch them, or fail. What the model must agree on (`d_input`, `d_target`, `n_channels`,
`seq_len`, `horizon`, `n_classes`) is read here and handed to the model by the command line; a property that
needs the data reads it (`setup("fit")`) when first asked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.preprocessing import StandardScaler
from torch.utils.data import Dataset, TensorDataset

from ssmkit.data import BaseDataModule, DataError, group_split, stratified_split, time_split, window_starts
from ssmkit_sensors import readers, simulator

log = logging.getLogger(__name__)
Tensor = torch.Tensor


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
            for s in window_starts(rec.valid, window + horizon, stride, f"{source} recording {r}")
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


class Seq2SeqData(BaseDataModule):
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
        """Windows of a recording's input and target columns, or of simulated drifting-sensor recordings.

        With `mask_missing_targets` a soft sensor is scored only where the reference instrument measured, never
        against interpolated values.

        Args:
            root: a CSV / NPZ recording, split in time; None: the drifting-sensor simulator, split by recording.
            input_columns: the columns the model reads (needed with root).
            target_columns: the columns the model predicts (needed with root).
            date_column: a date column, or columns joined by spaces, parsed and checked to increase (None: none).
            date_format: the dates' format, as pandas' `to_datetime` takes it (None: inferred).
            missing_value: a number in the file that means missing, e.g. -200 (None: only empty cells and NaN).
            missing: missing / NaN / inf values: "interpolate", "drop" (the windows that touch them) or "fail".
            mask_missing_targets: apply `missing` to inputs only; a missing target stays NaN, out of loss and metrics.
            window: rows per window.
            stride: rows between the starts of training windows (validation and test windows tile their split).
            val_fraction: the share of the rows (simulated: of the recordings) that validates, after train in time.
            test_fraction: the share of the rows (simulated: of the recordings) that tests, at the end in time.
            simulator_kwargs: arguments of `simulator.drifting_sensor` (n_series, length, rate, ...; root None).
            batch_size: samples per batch.
            num_workers: loader processes (0: load in the main process).
        """
        super().__init__(batch_size, num_workers)
        if root is not None and not (input_columns and target_columns):
            raise ValueError("a CSV / NPZ root needs input_columns and target_columns")
        self.root, self.input_columns, self.target_columns = root, input_columns, target_columns
        self.date_column, self.date_format, self.missing_value = date_column, date_format, missing_value
        self.missing, self.window, self.stride = missing, window, stride
        self.mask_missing_targets = mask_missing_targets
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
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
        fractions = (self.val_fraction, self.test_fraction)
        if self.root is None:
            inputs, targets = simulator.drifting_sensor(**self.simulator_kwargs)
            bounds = time_split(len(inputs), *fractions, "simulated sensor recordings")
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
            report = readers.nonfinite_report(frame, self.target_columns)
            if report is not None:
                log.info("%s: %s; left out of the loss and metrics (mask_missing_targets)", self.root, report)
        parts = time_split(len(frame), *fractions, str(self.root))
        x, y = frame[self.input_columns].to_numpy(), frame[self.target_columns].to_numpy()
        return {k: [Recording(x[s], y[s], valid[s])] for k, s in parts.items()}

    def build(self, stage: str) -> dict[str, Dataset]:
        splits = self.recordings()
        _, self.target_scaler = _standardise(splits)
        source = str(self.root or "simulated sensor")
        return {
            name: Windows(recs, self.window, self.stride if name == "train" else self.window, f"{source} {name} split")
            for name, recs in splits.items()
        }


class ForecastData(BaseDataModule):
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
        """Past / future windows of a multichannel table in the ETT layout, or of a simulated ETT-like one.

        Args:
            root: a CSV / NPZ in the ETT layout (None: `simulator.ett_like(synthetic_rows)`).
            columns: the channels (None: every column but the date).
            date_column: the date column (None: none; split "ett" then fails).
            seq_len: past rows the model reads.
            horizon: future rows it forecasts.
            split: "ett" (12 / 4 / 4 months of 30 days from the start, as Informer / DLinear / PatchTST) or
                [val_fraction, test_fraction], chronologically.
            missing: missing / NaN / inf values: "interpolate", "drop" (the windows that touch them) or "fail".
            synthetic_rows: rows of the simulated table (root None).
            train_stride: rows between the starts of training windows (validation and test: 1).
            batch_size: samples per batch.
            num_workers: loader processes (0: load in the main process).
        """
        super().__init__(batch_size, num_workers)
        self.root, self.columns, self.date_column = root, columns, date_column
        self.seq_len, self.horizon, self.split, self.missing = seq_len, horizon, split, missing
        self.synthetic_rows, self.train_stride = synthetic_rows, train_stride
        self.channels: list[str] = []
        self.scaler: StandardScaler | None = None

    @property
    def n_channels(self) -> int:
        """Channels of the table (reads the data when first asked)."""
        self.setup("fit")
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
            return time_split(len(frame), *self.split, source)
        if "date" not in frame.columns:
            raise DataError("split 'ett' needs a date column (set date_column, or give split fractions)", source=source)
        step = frame["date"].diff().median()
        month = int(pd.Timedelta(days=30) / step)
        ends = [12 * month, 16 * month, 20 * month]
        if len(frame) < ends[1] + 1:
            raise DataError(
                f"{len(frame)} rows do not cover the 12 + 4 months of split 'ett' ({ends[1]} rows)", source=source
            )
        ends[2] = min(ends[2], len(frame))
        return {"train": slice(0, ends[0]), "val": slice(ends[0], ends[1]), "test": slice(ends[1], ends[2])}

    def build(self, stage: str) -> dict[str, Dataset]:
        source = str(self.root or "simulated ETT-like table")
        frame = self.table()
        self.channels = [c for c in frame.columns if c != "date"]
        frame, valid = readers.handle_missing(frame, self.channels, self.missing, source)
        parts = self.borders(frame, source)
        self._check_lengths(parts, source)
        values = frame[self.channels].to_numpy()
        self.scaler = StandardScaler().fit(values[parts["train"]][valid[parts["train"]]])
        values = self.scaler.transform(values).astype(np.float32)
        datasets = {}
        for name, part in parts.items():
            start = part.start if name == "train" else part.start - self.seq_len
            rec = Recording(values[start : part.stop], values[start : part.stop], valid[start : part.stop])
            stride = self.train_stride if name == "train" else 1
            datasets[name] = Windows([rec], self.seq_len, stride, f"{source} {name} split", horizon=self.horizon)
        return datasets

    def _check_lengths(self, parts: dict[str, slice], source: str) -> None:
        sizes = {k: s.stop - s.start for k, s in parts.items()}
        if sizes["train"] < self.seq_len + self.horizon:
            raise DataError(
                f"the train split has {sizes['train']} rows, too few for one window of "
                f"seq_len {self.seq_len} + horizon {self.horizon}",
                source=source,
            )
        for name in ("val", "test"):
            if self.horizon > sizes[name]:
                message = f"horizon {self.horizon} is longer than the {name} split ({sizes[name]} rows)"
                raise DataError(message, source=source)
        if parts["val"].start < self.seq_len:
            raise DataError(f"seq_len {self.seq_len} reaches before the first row of the file", source=source)


class ClassificationData(BaseDataModule):
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
        """Labelled windows of UEA `.ts` files, of per-step labelled IMU recordings, or simulated activities.

        Recordings are cut into windows of `window` rows every `stride`, each labelled by its majority label.

        Args:
            root: a folder with `*_TRAIN.ts` / `*_TEST.ts` (UEA) or subject folders `sXX/*_<device>.csv` with
                per-step labels (split by subject); None: simulated activity windows.
            device: the device suffix of the recordings' file names, `*_<device>.csv`.
            channels: the recordings' columns read (None: x_acc, y_acc, z_acc, x_gyro, y_gyro, z_gyro).
            window: rows per window of a recording.
            stride: rows between the starts of a recording's windows.
            val_subjects: the validation subjects' folders (None: ["s03"]).
            test_subjects: the test subjects' folders (None: ["s04"]).
            val_fraction: the stratified share of the UEA train file that validates.
            missing: a recording's missing / NaN / inf values: "interpolate", "drop" (their rows) or "fail".
            n_synthetic: simulated training windows; validation and test get a quarter as many each (root None).
            synthetic_length: steps per simulated window (root None).
            batch_size: samples per batch.
            num_workers: loader processes (0: load in the main process).
            seed: the data's own randomness (splits, generated data), apart from the training seed.
        """
        super().__init__(batch_size, num_workers, seed)
        self.root, self.device, self.window, self.stride = root, device, window, stride
        self.channels = channels or ["x_acc", "y_acc", "z_acc", "x_gyro", "y_gyro", "z_gyro"]
        self.val_subjects, self.test_subjects = val_subjects or ["s03"], test_subjects or ["s04"]
        self.val_fraction, self.missing = val_fraction, missing
        self.n_synthetic, self.synthetic_length = n_synthetic, synthetic_length
        self.classes: list[str] = []

    @property
    def d_input(self) -> int:
        """Channels per step (reads the data when first asked)."""
        self.setup("fit")
        return int(self.datasets["train"].tensors[0].shape[-1])

    @property
    def n_classes(self) -> int:
        self.setup("fit")
        return len(self.classes)

    def arrays(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """{split: (windows (N, L, C) float32, labels (N,) int64)}; sets `classes`."""
        if self.root is None:
            self.classes = list(simulator.ACTIVITIES)
            sizes = {"train": self.n_synthetic, "val": self.n_synthetic // 4, "test": self.n_synthetic // 4}
            return {
                k: simulator.activity_windows(n, self.synthetic_length, seed=self.seed + i)
                for i, (k, n) in enumerate(sizes.items())
            }
        root = Path(self.root)
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: not a folder (expected *_TRAIN.ts / *_TEST.ts or sXX/ folders)")
        train, test = sorted(root.glob("*_TRAIN.ts")), sorted(root.glob("*_TEST.ts"))
        return self._ts_arrays(train[0], test[0]) if train and test else self._stream_arrays(root)

    def _ts_arrays(self, train_path: Path, test_path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        x, y, self.classes = readers.read_ts(train_path)
        x_test, y_test, _ = readers.read_ts(test_path)
        train, val = stratified_split(y, self.val_fraction, self.seed)
        return {"train": (x[train], y[train]), "val": (x[val], y[val]), "test": (x_test, y_test)}

    def _stream_arrays(self, root: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        files = sorted(root.glob(f"s*/*_{self.device}.csv"))
        if not files:
            raise DataError(f"no *_TRAIN.ts / *_TEST.ts and no subject folders with *_{self.device}.csv", source=root)
        streams = readers.read_labelled_streams(files, self.channels, self.missing)
        self.classes = sorted({label for _, labels in streams for label in labels})
        windows, labels, subjects = [], [], []
        for path, (values, step_labels) in zip(files, streams, strict=True):
            for window, label in self._label_windows(values, step_labels, str(path)):
                windows.append(window)
                labels.append(label)
                subjects.append(path.parent.name)
        parts = group_split(subjects, self.val_subjects, self.test_subjects, str(root))
        x, y = np.stack(windows), np.array(labels)
        return {k: (x[idx], y[idx]) for k, idx in parts.items()}

    def _label_windows(self, values: np.ndarray, labels: np.ndarray, source: str) -> list[tuple[np.ndarray, int]]:
        ids = np.array([self.classes.index(label) for label in labels])
        starts = window_starts(np.ones(len(values), bool), self.window, self.stride, source)
        return [(values[s : s + self.window], int(np.bincount(ids[s : s + self.window]).argmax())) for s in starts]

    def build(self, stage: str) -> dict[str, Dataset]:
        arrays = self.arrays()
        channels = arrays["train"][0].shape[-1]
        scaler = StandardScaler().fit(arrays["train"][0].reshape(-1, channels))
        datasets = {}
        for name, (x, y) in arrays.items():
            x = scaler.transform(x.reshape(-1, channels)).reshape(x.shape).astype(np.float32)
            datasets[name] = TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
        return datasets
