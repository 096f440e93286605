"""Readers for the formats sensor users already have; bad input raises `ssmkit.data.DataError` naming the file,
then the column, row or record.

- CSV (`read_table`): a header row; optional date column(s) (joined with a space, e.g. `[Date, Time]`);
  a `missing_value` code (Air Quality's -200) read as missing.
- NPZ (`read_table`): one 1-D array per column name (`np.savez(path, x=..., y=...)`).
- UEA / sktime `.ts` (`read_ts`): equal-length multivariate cases with a class label.
- Per-step labelled IMU CSVs (`read_labelled_streams`): one CSV per recording, channel columns and a
  `label` column (the sp-sw-har layout).

Missing values: `nonfinite_report` names every column holding NaN/inf with its count and first rows;
`handle_missing` then interpolates (linear in time, ends held), marks rows for dropping the windows that
touch them, or fails, as configured.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ssmkit.data import DataError

log = logging.getLogger(__name__)
MISSING = ("interpolate", "drop", "fail")


def read_table(
    path: str | Path,
    columns: list[str],
    date_column: str | list[str] | None = None,
    date_format: str | None = None,
    missing_value: float | None = None,
) -> pd.DataFrame:
    """The wanted `columns` (float) of a CSV or NPZ file, indexed by row; a `date` column when configured."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    frame = pd.DataFrame(dict(np.load(path))) if path.suffix == ".npz" else pd.read_csv(path)
    dates = [date_column] if isinstance(date_column, str) else list(date_column or [])
    check_columns(frame, [*dates, *columns], path)
    out = numeric_columns(frame, columns, path)
    if missing_value is not None:
        out = out.mask(out == missing_value)
    if dates:
        text = frame[dates].astype(str).agg(" ".join, axis=1)
        out.insert(0, "date", parse_dates(text, path, date_format))
    return out


def numeric_columns(frame: pd.DataFrame, columns: list[str], path: Path | str) -> pd.DataFrame:
    """The columns as float64. Empty cells and NaN tokens stay missing (the `missing` policy handles them); a
    cell of other text (`0.6960x`) is an error naming its row, column and text, never a silent gap."""
    out = frame[columns].apply(pd.to_numeric, errors="coerce").astype(np.float64)
    unparsable = out.isna() & frame[columns].notna()
    for column in columns:
        rows = unparsable[column].to_numpy().nonzero()[0]
        if not len(rows):
            continue
        text = frame[column].iloc[rows[0]]
        if len(rows) == frame[column].notna().sum():
            raise DataError(f"column {column!r} is not numeric (row {rows[0]} holds {text!r})", source=path)
        raise DataError(f"row {rows[0]}, column {column!r}: {text!r} is not a number", source=path)
    return out


def check_columns(frame: pd.DataFrame, wanted: list[str], path: Path | str) -> None:
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise DataError(f"column(s) {missing} not in the file; it has {list(frame.columns)}", source=path)


def parse_dates(text: pd.Series, path: Path | str, date_format: str | None = None) -> pd.Series:
    """Parse and check a date column: every value parses, strictly increasing (no duplicates)."""
    dates = pd.to_datetime(text, format=date_format, errors="coerce")
    if dates.isna().any():
        row = int(dates.isna().to_numpy().nonzero()[0][0])
        raise DataError(f"date {text.iloc[row]!r} at row {row} does not parse (format {date_format!r})", source=path)
    step = dates.diff().to_numpy()[1:]
    if (step == np.timedelta64(0)).any():
        row = int((step == np.timedelta64(0)).nonzero()[0][0]) + 1
        raise DataError(f"duplicated date {dates.iloc[row]} at rows {row - 1} and {row}", source=path)
    if (step < np.timedelta64(0)).any():
        row = int((step < np.timedelta64(0)).nonzero()[0][0]) + 1
        raise DataError(
            f"the date column is not monotonic: row {row} ({dates.iloc[row]}) comes before "
            f"row {row - 1} ({dates.iloc[row - 1]})",
            source=path,
        )
    return dates


def nonfinite_report(frame: pd.DataFrame, columns: list[str]) -> str | None:
    """One line per column holding NaN/inf: the count and the first rows (with dates when known)."""
    lines = []
    for column in columns:
        bad = (~np.isfinite(frame[column].to_numpy())).nonzero()[0]
        if len(bad):
            shown = [_row_name(frame, int(r)) for r in bad[:3]]
            lines.append(f"column {column!r}: {len(bad)} NaN/inf/missing value(s), first at {', '.join(shown)}")
    return "; ".join(lines) if lines else None


def _row_name(frame: pd.DataFrame, row: int) -> str:
    return f"row {row} ({frame['date'].iloc[row]})" if "date" in frame.columns else f"row {row}"


def handle_missing(
    frame: pd.DataFrame, columns: list[str], policy: str, source: str
) -> tuple[pd.DataFrame, np.ndarray]:
    """Apply the missing-value `policy`; returns the frame and a per-row validity mask (False rows must not
    be inside any window: all True unless policy is 'drop')."""
    if policy not in MISSING:
        raise ValueError(f"missing must be one of {MISSING}, got {policy!r}")
    frame = frame.copy()
    frame[columns] = frame[columns].replace([np.inf, -np.inf], np.nan)
    report = nonfinite_report(frame, columns)
    valid = np.ones(len(frame), bool)
    if report is None:
        return frame, valid
    if policy == "fail":
        raise DataError(f"{report} (set missing: interpolate or missing: drop to handle them)", source=source)
    log.warning("%s: %s; handled by %s", source, report, policy)
    if policy == "interpolate":
        frame[columns] = frame[columns].interpolate(limit_direction="both")
        if frame[columns].isna().any().any():
            empty = [c for c in columns if frame[c].isna().all()]
            raise DataError(f"column(s) {empty} hold no finite value to interpolate from", source=source)
    else:
        valid = frame[columns].notna().all(axis=1).to_numpy()
    return frame, valid


def read_ts(path: str | Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """UEA `.ts` file -> cases (N, L, C) float32, labels (N,) int64, class names (from @classLabel)."""
    path = Path(path)
    classes: list[str] = []
    cases, labels = [], []
    in_data = False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.lower().startswith("@classlabel"):
            classes = line.split()[2:]
        elif line.lower() == "@data":
            in_data = True
        elif in_data:
            *dims, label = line.split(":")
            if label not in classes:
                where = f"{len(cases)} (line {number})"
                raise DataError(f"label {label!r} is not in @classLabel {classes}", source=path, record=where)
            cases.append([[float(v) for v in d.split(",")] for d in dims])
            labels.append(classes.index(label))
    lengths = {len(d) for case in cases for d in case}
    if not cases or len(lengths) != 1:
        raise DataError(f"expected equal-length cases after @data, found lengths {sorted(lengths)}", source=path)
    return np.asarray(cases, np.float32).transpose(0, 2, 1), np.asarray(labels, np.int64), classes


def read_labelled_streams(files: list[Path], channels: list[str], missing: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per-step labelled recordings: [(values (L, C) float32, labels (L,) str), ...] in file order."""
    streams = []
    for path in files:
        frame = pd.read_csv(path)
        check_columns(frame, [*channels, "label"], path)
        frame, valid = handle_missing(frame, channels, missing, str(path))
        frame = frame[valid]
        streams.append((frame[channels].to_numpy(np.float32), frame["label"].astype(str).to_numpy()))
    return streams
