"""Classification metrics: accuracy, macro-F1, per-class P/R/F1, confusion, calibration, slices.

Labels are encoded as integer class indices (single-label) or 0/1 indicator matrices
(multi-label) so the bootstrap can recompute every metric from confusion counts in bulk.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from assay.errors import InputError

if TYPE_CHECKING:  # polars is imported where slices are computed, not on import
    import polars as pl

ECE_BINS = 15
LENGTH_BUCKETS = (10, 25)  # words: short <= 10 < medium <= 25 < long


def encode(labels: Sequence[Any], classes: Sequence[str]) -> np.ndarray:
    """Class indices (n,) for string labels, or an indicator matrix (n, k) for label lists."""
    index = {c: i for i, c in enumerate(classes)}
    labels = list(labels)
    multilabel = bool(labels) and isinstance(labels[0], (list, tuple))
    try:
        if not multilabel:
            return np.array([index[str(x)] for x in labels], dtype=np.int64)
        out = np.zeros((len(labels), len(classes)), dtype=np.int8)
        for row, lab in enumerate(labels):
            for x in lab:
                out[row, index[str(x)]] = 1
        return out
    except KeyError as exc:
        raise InputError(
            f"label {exc.args[0]!r} is not one of the model's classes {list(classes)}; "
            "the evaluation set has a class the training set never saw"
        ) from None


def confusion(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """Confusion counts (k, k), rows = true class, columns = predicted class."""
    return np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)


def scores_from_confusion(conf: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy and macro-F1 from confusion counts; works on stacks of shape (..., k, k).

    Classes with no true and no predicted example are left out of the macro average, as
    scikit-learn does when `labels` lists only the classes present.
    """
    conf = conf.astype(np.float64)
    tp = np.diagonal(conf, axis1=-2, axis2=-1)
    true = conf.sum(axis=-1)
    pred = conf.sum(axis=-2)
    total = true.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(true + pred > 0, 2 * tp / (true + pred), 0.0)
        present = (true + pred) > 0
        macro = (f1 * present).sum(axis=-1) / np.maximum(present.sum(axis=-1), 1)
        acc = np.where(total > 0, tp.sum(axis=-1) / np.maximum(total, 1), 0.0)
    return {"accuracy": acc, "macro_f1": macro}


def multilabel_counts(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Per-example, per-class (tp, fp, fn) as an array (n, k, 3)."""
    t = y_true.astype(bool)
    p = y_pred.astype(bool)
    return np.stack([t & p, ~t & p, t & ~p], axis=-1).astype(np.int32)


def scores_from_multilabel(counts: np.ndarray, exact: np.ndarray) -> dict[str, np.ndarray]:
    """Macro-F1 from summed (k, 3) counts (stacks allowed) and subset accuracy from `exact`
    (the share of examples whose whole label set is right)."""
    counts = counts.astype(np.float64)
    tp, fp, fn = counts[..., 0], counts[..., 1], counts[..., 2]
    denom = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    present = denom > 0
    macro = (f1 * present).sum(axis=-1) / np.maximum(present.sum(axis=-1), 1)
    return {"accuracy": exact, "macro_f1": macro}


def expected_calibration_error(
    proba: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS
) -> float:
    """ECE of the top-class confidence: the weighted gap between confidence and accuracy."""
    if len(correct) == 0:
        return float("nan")
    conf = proba.max(axis=1)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            ece += sel.mean() * abs(conf[sel].mean() - correct[sel].mean())
    return float(ece)


def classification_report(
    y_true: Sequence[Any],
    y_pred: Sequence[Any],
    classes: Sequence[str],
    proba: np.ndarray | None = None,
) -> dict[str, Any]:
    """Every metric for one evaluation split, as plain JSON-ready values."""
    classes = list(classes)
    t = encode(y_true, classes)
    p = encode(y_pred, classes)
    k = len(classes)
    out: dict[str, Any] = {"n": len(t)}
    if t.ndim == 1:
        conf = confusion(t, p, k)
        scores = scores_from_confusion(conf)
        tp = np.diag(conf).astype(float)
        support = conf.sum(axis=1)
        predicted = conf.sum(axis=0)
        correct = (t == p).astype(float)
        out["confusion"] = {"labels": classes, "matrix": conf.tolist()}
    else:
        counts = multilabel_counts(t, p).sum(axis=0)
        exact = (t == p).all(axis=1).astype(float)
        scores = scores_from_multilabel(counts, exact.mean())
        tp = counts[:, 0].astype(float)
        support = counts[:, 0] + counts[:, 2]
        predicted = counts[:, 0] + counts[:, 1]
        correct = exact
        out["micro_f1"] = _f1(tp.sum(), predicted.sum(), support.sum())
    out["accuracy"] = float(scores["accuracy"])
    out["macro_f1"] = float(scores["macro_f1"])
    out["per_class"] = {
        c: {
            "precision": float(tp[i] / predicted[i]) if predicted[i] else 0.0,
            "recall": float(tp[i] / support[i]) if support[i] else 0.0,
            "f1": _f1(tp[i], predicted[i], support[i]),
            "support": int(support[i]),
        }
        for i, c in enumerate(classes)
    }
    if proba is not None and t.ndim == 1:
        out["ece"] = expected_calibration_error(np.asarray(proba), correct)
    return out


def _f1(tp: float, predicted: float, support: float) -> float:
    return float(2 * tp / (predicted + support)) if predicted + support else 0.0


def length_bucket(texts: pl.Series) -> pl.Series:
    """'short' / 'medium' / 'long' by word count (LENGTH_BUCKETS)."""
    import polars as pl

    words = texts.str.split(" ").list.len()
    lo, hi = LENGTH_BUCKETS
    return (
        pl.select(
            pl.when(words <= lo)
            .then(pl.lit(f"short (<= {lo} words)"))
            .when(words <= hi)
            .then(pl.lit(f"medium ({lo + 1}-{hi})"))
            .otherwise(pl.lit(f"long (> {hi})"))
        )
        .to_series()
        .alias("length_bucket")
    )


def slice_metrics(
    frame: pl.DataFrame, by: str, classes: Sequence[str], min_rows: int = 1
) -> pl.DataFrame:
    """Accuracy and macro-F1 per value of column `by` of a predictions frame.

    `frame` has `label` (truth), `pred`, and the slice column; `by="length_bucket"` is
    derived from `text` when absent.
    """
    import polars as pl

    if by == "length_bucket" and by not in frame.columns:
        frame = frame.with_columns(length_bucket(frame["text"]))
    if by not in frame.columns:
        raise InputError(f"cannot slice by {by!r}: the predictions have columns {frame.columns}")
    rows = []
    for (value,), part in frame.group_by(by, maintain_order=True):
        if part.height < min_rows:
            continue
        rep = classification_report(part["label"].to_list(), part["pred"].to_list(), classes)
        rows.append(
            {
                "slice": by,
                "value": None if value is None else str(value),
                "n": part.height,
                "accuracy": rep["accuracy"],
                "macro_f1": rep["macro_f1"],
            }
        )
    schema = {
        "slice": pl.String,
        "value": pl.String,
        "n": pl.Int64,
        "accuracy": pl.Float64,
        "macro_f1": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema).sort("value", nulls_last=True)
