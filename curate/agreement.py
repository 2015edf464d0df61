"""Annotator agreement and consensus over an annotations table keyed by example id.

The annotations table has one row per (example, annotator): columns `id`, `annotator`,
`label` (str, or list[str] for multi-label) and optionally `skipped` (skipped or cancelled
annotations are not labels and are left out here) and `updated_at` (the latest annotation
of an annotator on an example wins).

Statistics:
- Cohen's kappa for every pair of annotators over the examples both labelled; the overall
  value is the mean over pairs.
- Fleiss' kappa (generalised to a varying number of raters per example) and Krippendorff's
  alpha (nominal; missing ratings allowed) over examples with at least two labels.
- Per label: the same statistics on the one-vs-rest decision "this label or not".
- Multi-label corpora: every (example, label) pair is one binary decision; overall values
  are computed over all pairs together.

Consensus is a majority vote (ties stay unresolved unless model probabilities break them)
or cleanlab's CROWDLAB when model probabilities are given.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from itertools import combinations
from typing import Any

import numpy as np
import polars as pl

from assay.errors import InputError, require

MAJORITY = "majority"
CROWDLAB = "crowdlab"
METHODS = (MAJORITY, CROWDLAB)


# -- the statistics on an items x raters matrix of category codes (-1 = missing) -----------


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's kappa of two raters over the items both rated (codes >= 0)."""
    both = (a >= 0) & (b >= 0)
    a, b = a[both], b[both]
    if a.size == 0:
        return math.nan
    k = int(max(a.max(), b.max())) + 1
    observed = float(np.mean(a == b))
    pa = np.bincount(a, minlength=k) / a.size
    pb = np.bincount(b, minlength=k) / b.size
    expected = float(pa @ pb)
    if expected >= 1.0:
        # Both raters used one category throughout: agreement is perfect but uninformative.
        return 1.0 if observed == 1.0 else math.nan
    return (observed - expected) / (1.0 - expected)


def category_counts(matrix: np.ndarray, n_categories: int) -> np.ndarray:
    """items x categories: how many raters chose each category for each item."""
    counts = np.zeros((matrix.shape[0], n_categories), dtype=np.int64)
    rows, cols = np.nonzero(matrix >= 0)
    np.add.at(counts, (rows, matrix[rows, cols]), 1)
    return counts


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' kappa from an items x categories count table; items with < 2 raters are ignored."""
    n_i = counts.sum(axis=1)
    counts = counts[n_i >= 2]
    n_i = n_i[n_i >= 2]
    if counts.shape[0] == 0:
        return math.nan
    p_i = ((counts**2).sum(axis=1) - n_i) / (n_i * (n_i - 1))
    p_bar = float(p_i.mean())
    p_j = counts.sum(axis=0) / n_i.sum()
    p_e = float((p_j**2).sum())
    if p_e >= 1.0:
        return 1.0 if p_bar == 1.0 else math.nan
    return (p_bar - p_e) / (1.0 - p_e)


def krippendorff_alpha(counts: np.ndarray) -> float:
    """Krippendorff's alpha (nominal) from an items x categories count table."""
    m_u = counts.sum(axis=1)
    counts = counts[m_u >= 2].astype(np.float64)
    m_u = m_u[m_u >= 2]
    if counts.shape[0] == 0:
        return math.nan
    # Coincidences: every ordered pair of values within an item, weighted 1 / (m_u - 1).
    weights = 1.0 / (m_u - 1)
    coincidence = (counts * weights[:, None]).T @ counts
    coincidence[np.diag_indices_from(coincidence)] -= (counts * weights[:, None]).sum(axis=0)
    n_c = coincidence.sum(axis=1)
    n = n_c.sum()
    observed = coincidence.sum() - np.trace(coincidence)
    expected = (n_c.sum() ** 2 - (n_c**2).sum()) / (n - 1)
    if expected <= 0:
        return 1.0 if observed == 0 else math.nan
    return float(1.0 - observed / expected)


def _stats(matrix: np.ndarray, n_categories: int) -> dict[str, float | None]:
    counts = category_counts(matrix, n_categories)
    pairs = [
        cohen_kappa(matrix[:, i], matrix[:, j]) for i, j in combinations(range(matrix.shape[1]), 2)
    ]
    pairs = [p for p in pairs if not math.isnan(p)]
    return {
        "cohen_kappa": _clean(float(np.mean(pairs))) if pairs else None,
        "fleiss_kappa": _clean(fleiss_kappa(counts)),
        "krippendorff_alpha": _clean(krippendorff_alpha(counts)),
        "n_items": int((counts.sum(axis=1) >= 2).sum()),
    }


def _clean(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 6)


# -- from the annotations table --------------------------------------------------------------


def usable(annotations: pl.DataFrame) -> pl.DataFrame:
    """The labelling annotations: not skipped, with a label, the latest per (id, annotator)."""
    frame = annotations
    if "skipped" in frame.columns:
        frame = frame.filter(~pl.col("skipped").fill_null(False))
    frame = frame.filter(pl.col("label").is_not_null())
    if isinstance(frame.schema["label"], pl.List):
        frame = frame.filter(pl.col("label").list.len() > 0)
    if "updated_at" in frame.columns:
        frame = frame.sort("updated_at", nulls_last=False)
    return frame.unique(["id", "annotator"], keep="last", maintain_order=True).sort(
        ["id", "annotator"]
    )


def _is_multilabel(frame: pl.DataFrame) -> bool:
    return isinstance(frame.schema["label"], pl.List)


@dataclasses.dataclass
class AgreementReport:
    """Agreement numbers over one annotations table."""

    overall: dict[str, Any]
    per_label: pl.DataFrame
    pairwise: pl.DataFrame
    per_annotator: pl.DataFrame
    consensus: pl.DataFrame
    disagreements: pl.DataFrame

    def to_dict(self) -> dict[str, Any]:
        return {
            "overall": self.overall,
            "per_label": self.per_label.to_dicts(),
            "pairwise": self.pairwise.to_dicts(),
            "per_annotator": self.per_annotator.to_dicts(),
            "n_disagreements": self.disagreements.height,
        }


def agreement(
    annotations: pl.DataFrame,
    labels: Sequence[str],
    *,
    method: str = MAJORITY,
    pred_probs: pl.DataFrame | None = None,
) -> AgreementReport:
    """Agreement statistics, consensus labels and the disagreements to review.

    `pred_probs` (for CROWDLAB, and to break majority ties) has an `id` column and one
    float column per label, named by the label.
    """
    frame = usable(annotations)
    labels = list(labels)
    multi = _is_multilabel(frame)
    unknown = _unknown(frame, labels, multi)
    if unknown:
        raise InputError(
            f"annotations use labels {unknown} that are not in the label set {labels}; "
            "drop or remap those annotations first (pull reports them in unknown_labels)"
        )
    ids = frame["id"].unique().sort().to_list()
    annotators = frame["annotator"].unique().sort().to_list()
    cons = consensus(frame, labels, method=method, pred_probs=pred_probs)
    if multi:
        per_label_rows, overall = _multilabel_stats(frame, labels, ids, annotators)
    else:
        matrix = _matrix(frame, labels, ids, annotators)
        overall = _stats(matrix, len(labels))
        per_label_rows = []
        for k, name in enumerate(labels):
            binary = np.where(matrix >= 0, (matrix == k).astype(np.int64), -1)
            per_label_rows.append({"label": name, **_stats(binary, 2)})
    overall = {
        **overall,
        "n_examples": len(ids),
        "n_annotators": len(annotators),
        "n_annotations": frame.height,
        "n_disagreements": int((cons["status"] != "agreed").sum()),
        "method": method,
    }
    return AgreementReport(
        overall=overall,
        per_label=pl.DataFrame(per_label_rows, schema=_PER_LABEL_SCHEMA),
        pairwise=_pairwise(frame, labels, multi),
        per_annotator=_per_annotator(frame, cons),
        consensus=cons,
        disagreements=disagreements(frame, cons),
    )


_PER_LABEL_SCHEMA = {
    "label": pl.String,
    "cohen_kappa": pl.Float64,
    "fleiss_kappa": pl.Float64,
    "krippendorff_alpha": pl.Float64,
    "n_items": pl.Int64,
}


def _unknown(frame: pl.DataFrame, labels: Sequence[str], multi: bool) -> list[str]:
    values = frame["label"].explode() if multi else frame["label"]
    return sorted(set(values.drop_nulls().to_list()) - set(labels))


def _matrix(
    frame: pl.DataFrame, labels: Sequence[str], ids: list[str], annotators: list[str]
) -> np.ndarray:
    """items x annotators of label codes, -1 where an annotator did not label an item."""
    code = {name: k for k, name in enumerate(labels)}
    row = {i: k for k, i in enumerate(ids)}
    col = {a: k for k, a in enumerate(annotators)}
    matrix = np.full((len(ids), len(annotators)), -1, dtype=np.int64)
    for i, a, lab in frame.select("id", "annotator", "label").iter_rows():
        matrix[row[i], col[a]] = code[lab]
    return matrix


def _multilabel_stats(
    frame: pl.DataFrame, labels: Sequence[str], ids: list[str], annotators: list[str]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    row = {i: k for k, i in enumerate(ids)}
    col = {a: k for k, a in enumerate(annotators)}
    # items x annotators x labels: 1 chosen, 0 not chosen, -1 not annotated.
    cube = np.full((len(ids), len(annotators), len(labels)), -1, dtype=np.int64)
    code = {name: k for k, name in enumerate(labels)}
    for i, a, chosen in frame.select("id", "annotator", "label").iter_rows():
        cube[row[i], col[a], :] = 0
        for name in chosen:
            cube[row[i], col[a], code[name]] = 1
    per_label = [{"label": name, **_stats(cube[:, :, k], 2)} for k, name in enumerate(labels)]
    pooled = cube.transpose(0, 2, 1).reshape(-1, len(annotators))
    return per_label, _stats(pooled, 2)


def _pairwise(frame: pl.DataFrame, labels: Sequence[str], multi: bool) -> pl.DataFrame:
    annotators = frame["annotator"].unique().sort().to_list()
    rows = []
    for a, b in combinations(annotators, 2):
        sub = frame.filter(pl.col("annotator").is_in([a, b]))
        ids = sub.group_by("id").len().filter(pl.col("len") == 2)["id"].sort().to_list()
        if not ids:
            continue
        sub = sub.filter(pl.col("id").is_in(ids))
        if multi:
            _, stats = _multilabel_stats(sub, labels, ids, [a, b])
        else:
            stats = _stats(_matrix(sub, labels, ids, [a, b]), len(labels))
        rows.append({"annotator_a": a, "annotator_b": b, "n_common": len(ids), **stats})
    schema = {
        "annotator_a": pl.String,
        "annotator_b": pl.String,
        "n_common": pl.Int64,
        "cohen_kappa": pl.Float64,
        "fleiss_kappa": pl.Float64,
        "krippendorff_alpha": pl.Float64,
        "n_items": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema).drop("fleiss_kappa", "n_items")


def _key(label: Any) -> str:
    # Multi-label sets compare as sorted tuples; a string key keeps polars grouping simple.
    return "\x1f".join(sorted(label)) if isinstance(label, (list, tuple, pl.Series)) else label


def consensus(
    annotations: pl.DataFrame,
    labels: Sequence[str],
    *,
    method: str = MAJORITY,
    pred_probs: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row per annotated example: the resolved label and how it was reached.

    Columns: id, label (null when unresolved), n_annotations, agreement (share of
    annotators who chose the resolved label), status (agreed, majority, tie, single) and,
    for CROWDLAB, quality (cleanlab's consensus quality score).
    """
    if method not in METHODS:
        raise InputError(f"consensus method must be one of {list(METHODS)}, got {method!r}")
    frame = usable(annotations)
    multi = _is_multilabel(frame)
    if method == CROWDLAB:
        if multi:
            raise InputError(
                "CROWDLAB consensus needs single-label annotations; use method 'majority' "
                "for multi-label corpora"
            )
        if pred_probs is None:
            raise InputError(
                "CROWDLAB consensus needs model probabilities (pred_probs with an id column "
                "and one column per label); pass them or use method 'majority'"
            )
        return _crowdlab(frame, labels, pred_probs)
    return _majority(frame, labels, multi, pred_probs)


_CONSENSUS_SCHEMA = {
    "id": pl.String,
    "n_annotations": pl.Int64,
    "agreement": pl.Float64,
    "status": pl.String,
    "quality": pl.Float64,
}


def _majority(
    frame: pl.DataFrame, labels: Sequence[str], multi: bool, pred_probs: pl.DataFrame | None
) -> pl.DataFrame:
    probs = _probs_by_id(pred_probs, labels) if pred_probs is not None else {}
    rows = []
    label_values: list[Any] = []
    for (example,), group in frame.group_by(["id"], maintain_order=True):
        votes = group["label"].to_list()
        n = len(votes)
        if multi:
            # A label is in the consensus when more than half of the annotators chose it.
            tally = {name: sum(name in v for v in votes) for name in labels}
            chosen = [name for name in labels if tally[name] * 2 > n]
            agreeing = sum(sorted(v) == chosen for v in votes)
            unanimous = agreeing == n
            resolved: Any = chosen
            tie = any(tally[name] * 2 == n for name in labels)
            status = "agreed" if unanimous else ("tie" if tie else "majority")
            if status == "tie":
                resolved = None
        else:
            tally = {}
            for v in votes:
                tally[v] = tally.get(v, 0) + 1
            best = max(tally.values())
            top = sorted(k for k, c in tally.items() if c == best)
            if len(top) == 1:
                resolved = top[0]
                status = "agreed" if best == n else "majority"
            elif example in probs:
                p = probs[example]
                resolved = max(top, key=lambda name: p[name])
                status = "tie"
            else:
                resolved, status = None, "tie"
            agreeing = tally.get(resolved, 0) if resolved is not None else best
        if n == 1:
            status = "single"
        rows.append(
            {
                "id": example,
                "n_annotations": n,
                "agreement": round(agreeing / n, 6),
                "status": status,
                "quality": None,
            }
        )
        label_values.append(resolved)
    out = pl.DataFrame(rows, schema=_CONSENSUS_SCHEMA)
    dtype = pl.List(pl.String) if multi else pl.String
    out = out.with_columns(pl.Series("label", label_values, dtype=dtype))
    return out.select("id", "label", "n_annotations", "agreement", "status", "quality").sort("id")


def _probs_by_id(pred_probs: pl.DataFrame, labels: Sequence[str]) -> dict[str, dict[str, float]]:
    missing = [c for c in ("id", *labels) if c not in pred_probs.columns]
    if missing:
        raise InputError(
            f"pred_probs needs an id column and one column per label; missing {missing}, "
            f"found {pred_probs.columns}"
        )
    return {
        row["id"]: {name: float(row[name]) for name in labels}
        for row in pred_probs.select("id", *labels).iter_rows(named=True)
    }


def _crowdlab(frame: pl.DataFrame, labels: Sequence[str], pred_probs: pl.DataFrame) -> pl.DataFrame:
    require("cleanlab", "noise", "CROWDLAB consensus")
    require("pandas", "noise", "CROWDLAB consensus")
    import pandas as pd
    from cleanlab.multiannotator import get_label_quality_multiannotator

    ids = frame["id"].unique().sort().to_list()
    annotators = frame["annotator"].unique().sort().to_list()
    probs = _probs_by_id(pred_probs, labels)
    lacking = [i for i in ids if i not in probs]
    if lacking:
        raise InputError(
            f"pred_probs has no row for {len(lacking)} annotated examples, e.g. {lacking[:3]}"
        )
    matrix = _matrix(frame, labels, ids, annotators).astype(np.float64)
    matrix[matrix < 0] = np.nan
    p = np.array([[probs[i][name] for name in labels] for i in ids], dtype=np.float64)
    p = p / p.sum(axis=1, keepdims=True)
    result = get_label_quality_multiannotator(
        pd.DataFrame(matrix, columns=annotators),
        p,
        consensus_method="best_quality",
        return_annotator_stats=False,
        return_detailed_quality=False,
        verbose=False,
    )
    quality = result["label_quality"]
    n = (~np.isnan(matrix)).sum(axis=1)
    codes = quality["consensus_label"].to_numpy()
    agreement_share = quality["annotator_agreement"].to_numpy(dtype=np.float64)
    unanimous = np.array([np.all(row[~np.isnan(row)] == row[~np.isnan(row)][0]) for row in matrix])
    status = np.where(n == 1, "single", np.where(unanimous, "agreed", "majority"))
    return pl.DataFrame(
        {
            "id": ids,
            "label": [labels[int(c)] for c in codes],
            "n_annotations": n.astype(np.int64),
            "agreement": np.round(agreement_share, 6),
            "status": status.tolist(),
            "quality": np.round(quality["consensus_quality_score"].to_numpy(np.float64), 6),
        }
    )


def disagreements(annotations: pl.DataFrame, cons: pl.DataFrame | None = None) -> pl.DataFrame:
    """Examples whose annotators chose different labels, with every annotator's choice."""
    frame = usable(annotations)
    multi = _is_multilabel(frame)
    keyed = frame.with_columns(
        pl.col("label").list.sort().list.join("|").alias("_key")
        if multi
        else pl.col("label").alias("_key")
    )
    split = keyed.group_by("id").agg(pl.col("_key").n_unique().alias("_n")).filter(pl.col("_n") > 1)
    rows = (
        keyed.join(split.select("id"), on="id", how="semi")
        .sort(["id", "annotator"])
        .group_by("id", maintain_order=True)
        .agg(pl.col("annotator"), pl.col("label").alias("labels"))
    )
    if cons is not None:
        rows = rows.join(
            cons.select("id", pl.col("label").alias("consensus"), "status"), on="id", how="left"
        )
    return rows.sort("id")


def _per_annotator(frame: pl.DataFrame, cons: pl.DataFrame) -> pl.DataFrame:
    """Each annotator's agreement with the consensus, on examples with 2+ annotations."""
    multi = _is_multilabel(frame)
    resolved = cons.filter((pl.col("n_annotations") >= 2) & pl.col("label").is_not_null())
    joined = frame.join(resolved.select("id", pl.col("label").alias("_cons")), on="id")
    if multi:
        same = pl.col("label").list.sort() == pl.col("_cons").list.sort()
    else:
        same = pl.col("label") == pl.col("_cons")
    stats = (
        joined.with_columns(same.alias("_same"))
        .group_by("annotator")
        .agg(pl.len().alias("n_compared"), pl.col("_same").mean().alias("agreement_with_consensus"))
    )
    counts = frame.group_by("annotator").agg(pl.len().alias("n_annotations"))
    return (
        counts.join(stats, on="annotator", how="left")
        .with_columns(pl.col("n_compared").fill_null(0))
        .sort("annotator")
    )
