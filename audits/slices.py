"""Slices: a model's accuracy and macro-F1 on each slice of the evaluation rows.

Reads predictions as `train_and_evaluate` gives them (`TrainOutcome.predictions`, or a
`predictions_<split>.parquet` written by `assay train`): `label`, `pred`, and slice
columns. A slice is the rows sharing one value of a column: `length_bucket` (derived from
`text`), `origin`, `lang`, `group`, or any other column. Every slice gets its size, both
metrics with a 95% percentile bootstrap interval over its rows, and its gap to the overall
metric. The worst slices are those with at least `min_size` rows ranked by the metric;
a slice is flagged when its whole interval lies below the overall value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from assay.errors import InputError

METRICS = ("accuracy", "macro_f1")
DEFAULT_COLUMNS = ("length_bucket", "origin", "lang", "group")
# Columns of a predictions frame that describe the prediction, not a slice of rows.
NOT_SLICES = {"id", "split", "text", "label", "pred", "proba", "weight", "parent_id"}
MAX_VALUES = 50  # a column found by default with more values than this is not sliced
SCHEMA = {
    "slice": pl.String,
    "value": pl.String,
    "n": pl.Int64,
    **{f"{m}{suffix}": pl.Float64 for m in METRICS for suffix in ("", "_low", "_high", "_gap")},
    **{f"{m}_below": pl.Boolean for m in METRICS},
}


@dataclasses.dataclass
class SliceReport:
    """Per-slice metrics with intervals, and the overall values they are compared with."""

    split: str | None
    overall: dict[str, dict[str, float]]  # metric -> {estimate, low, high}
    table: pl.DataFrame  # SCHEMA: one row per (slice column, value)
    metric: str = "macro_f1"
    min_size: int = 20

    def worst(self, k: int = 10) -> pl.DataFrame:
        """Slices with at least `min_size` rows, worst `metric` first (ties: larger first)."""
        return (
            self.table.filter(pl.col("n") >= self.min_size)
            .sort([self.metric, "n", "slice", "value"], descending=[False, True, False, False])
            .head(k)
        )

    def flagged(self) -> pl.DataFrame:
        """Slices of at least `min_size` rows whose interval lies entirely below overall."""
        return self.worst(self.table.height).filter(pl.col(f"{self.metric}_below"))

    def to_dict(self, k: int = 10) -> dict[str, Any]:
        return {
            "split": self.split,
            "metric": self.metric,
            "min_size": self.min_size,
            "overall": self.overall,
            "n_slices": self.table.height,
            "worst": self.worst(k).to_dicts(),
            "flagged": self.flagged()["slice", "value"].to_dicts(),
        }


def read_predictions(path: str | Path) -> pl.DataFrame:
    """Predictions from a `predictions_*.parquet` file or a folder holding such files."""
    path = Path(path).expanduser()
    files = sorted(path.glob("predictions_*.parquet")) if path.is_dir() else [path]
    if not files or not all(f.exists() for f in files):
        raise InputError(
            f"no predictions at {str(path)!r}; pass a predictions_<split>.parquet file or the "
            "folder `assay train --out` wrote"
        )
    return pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")


def pick_split(predictions: pl.DataFrame, split: str | None = "test") -> pl.DataFrame:
    """The rows of `split` (test by default; the only split there is when test is absent)."""
    if "split" not in predictions.columns or split is None:
        return predictions
    present = predictions["split"].unique().to_list()
    if split in present:
        return predictions.filter(pl.col("split") == split)
    if len(present) == 1:
        return predictions
    raise InputError(f"no predictions for split {split!r}; the predictions have {sorted(present)}")


def slice_columns(predictions: pl.DataFrame, columns: Sequence[str] | None = None) -> list[str]:
    """The columns to slice by: those named, or the defaults and every extra column with
    at least two and at most MAX_VALUES values."""
    if columns is not None:
        missing = [c for c in columns if c != "length_bucket" and c not in predictions.columns]
        if missing:
            raise InputError(
                f"cannot slice by {missing}: the predictions have columns {predictions.columns}"
            )
        return list(dict.fromkeys(columns))
    found = [c for c in DEFAULT_COLUMNS if c == "length_bucket" or c in predictions.columns]
    found += [c for c in predictions.columns if c not in NOT_SLICES and c not in found]
    out = []
    for c in found:
        if c == "length_bucket" and "text" in predictions.columns and c not in predictions.columns:
            out.append(c)
            continue
        if c not in predictions.columns:
            continue
        dtype = predictions.schema[c]
        if isinstance(dtype, (pl.List, pl.Array, pl.Struct)) or dtype.is_float():
            continue
        if 2 <= predictions[c].n_unique() <= MAX_VALUES:
            out.append(c)
    return out


def classes_of(predictions: pl.DataFrame) -> list[str]:
    values: set[str] = set()
    for col in ("label", "pred"):
        series = predictions[col]
        if isinstance(series.dtype, pl.List):
            series = series.explode()
        values |= {str(v) for v in series.drop_nulls().to_list()}
    return sorted(values)


def slice_report(
    predictions: pl.DataFrame,
    columns: Sequence[str] | None = None,
    *,
    rng: np.random.Generator,
    split: str | None = "test",
    classes: Sequence[str] | None = None,
    metric: str = "macro_f1",
    min_size: int = 20,
    n_resamples: int = 1000,
) -> SliceReport:
    """Accuracy and macro-F1 with 95% bootstrap intervals on every slice of `split`."""
    from assay.train.bootstrap import bootstrap_ci
    from assay.train.metrics import encode, length_bucket

    if metric not in METRICS:
        raise InputError(f"unknown slice metric {metric!r}; expected one of {list(METRICS)}")
    missing = [c for c in ("label", "pred") if c not in predictions.columns]
    if missing:
        raise InputError(
            f"predictions need the columns label and pred; {missing} missing from "
            f"{predictions.columns}"
        )
    frame = pick_split(predictions, split).filter(pl.col("label").is_not_null())
    chosen = split if "split" not in frame.columns else _only(frame["split"])
    classes = list(classes) if classes is not None else classes_of(frame)
    by = slice_columns(frame, columns)
    if "length_bucket" in by and "length_bucket" not in frame.columns:
        frame = frame.with_columns(length_bucket(frame["text"]))
        if columns is None and frame["length_bucket"].n_unique() < 2:
            by.remove("length_bucket")  # one bucket: the same as overall
    y_true = encode(frame["label"].to_list(), classes)
    y_pred = encode(frame["pred"].to_list(), classes)
    k = len(classes)

    def interval(rows: np.ndarray, m: str) -> dict[str, float]:
        if len(rows) == 0:
            return {"estimate": float("nan"), "low": float("nan"), "high": float("nan")}
        found = bootstrap_ci(y_true[rows], y_pred[rows], k, m, rng=rng, n_resamples=n_resamples)
        return found.to_dict()

    everything = np.arange(frame.height)
    overall = {m: interval(everything, m) for m in METRICS}
    records = []
    for column in by:
        values = frame[column].cast(pl.String)
        for value in sorted(values.unique().to_list(), key=lambda v: (v is None, v)):
            mask = (values.is_null() if value is None else values == value).fill_null(False)
            rows = np.flatnonzero(mask.to_numpy())
            record: dict[str, Any] = {"slice": column, "value": value, "n": len(rows)}
            for m in METRICS:
                ci = interval(rows, m)
                record[m] = ci["estimate"]
                record[f"{m}_low"] = ci["low"]
                record[f"{m}_high"] = ci["high"]
                record[f"{m}_gap"] = ci["estimate"] - overall[m]["estimate"]
                record[f"{m}_below"] = bool(ci["high"] < overall[m]["estimate"])
            records.append(record)
    table = pl.DataFrame(records, schema=SCHEMA) if records else pl.DataFrame(schema=SCHEMA)
    return SliceReport(chosen, overall, table, metric=metric, min_size=min_size)


def _only(splits: pl.Series) -> str | None:
    values = splits.unique().to_list()
    return values[0] if len(values) == 1 else None
