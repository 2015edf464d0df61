"""The evidence behind a label-noise verdict, and the gate that asks for it before rows go.

Confident learning is only as good as the model that produced the out-of-fold
probabilities: cleanlab's maintainers put the floor at a reasonably accurate model (about
80%) and say that below about 60% it does not work; cleanlab gives no uncertainty on its
estimate of how many labels are wrong. So every label_noise run measures:

- the out-of-fold model's accuracy and macro-F1 against the given labels, with a bootstrap
  95% interval over rows (`assay.train.bootstrap`). The given labels hold the noise too: a
  perfect model on 20% flipped labels scores 0.80;
- the estimated number of label errors with a bootstrap 95% interval over rows: the
  calibrated confident joint's off-diagonal mass (`cleanlab.count.num_label_issues` with
  `estimation_method="off_diagonal_calibrated"`), recomputed on every resample, per-class
  thresholds included, so the interval carries the thresholds' uncertainty as well. The
  uncalibrated count the `cleanlab_count` flag rule uses ran 9-27% under the planted count
  with a model right on 96-99% of the true labels (cleanlab's docs warn it may
  underestimate with few classes); the calibrated mass was within 3% of it
  (docs/label-noise.md).

`gate` turns that evidence into what a destructive action may do: nothing when the
accuracy interval's lower bound is under the floor (the rows are flagged instead), nothing
when the change did not help a model on rows that played no part in choosing it
(`assay.curate.label_check`), and otherwise at most the estimate's upper bound of rows
(lowest label quality first).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import numpy as np

from assay.train.bootstrap import CONFIDENCE, Interval, bootstrap_ci

N_RESAMPLES = 1000
# Resamples of the multi-label estimate, which calls cleanlab once per resample.
N_RESAMPLES_MULTILABEL = 200
SCORE_BINS = 20
# (resamples x rows x classes) booleans held at once by the vectorised estimate.
_CHUNK_ELEMENTS = 8_000_000

Decision = Literal["not_destructive", "acted", "capped", "refused", "forced"]


@dataclasses.dataclass(frozen=True)
class Evidence:
    n_scored: int
    accuracy: Interval
    macro_f1: Interval
    errors: Interval  # estimated count of label errors
    n_resamples: int

    def to_summary(self) -> dict[str, Any]:
        n = max(self.n_scored, 1)
        return {
            "oof_accuracy": _rounded(self.accuracy),
            "oof_macro_f1": _rounded(self.macro_f1),
            "estimated_errors": _rounded(self.errors, 1),
            "estimated_error_rate": {
                "estimate": round(self.errors.estimate / n, 4),
                "low": round(self.errors.low / n, 4),
                "high": round(self.errors.high / n, 4),
            },
            "bootstrap_resamples": self.n_resamples,
        }


def _rounded(interval: Interval, digits: int = 4) -> dict[str, float]:
    return {k: round(v, digits) for k, v in interval.to_dict().items()}


# -- the estimate ---------------------------------------------------------------------------


def _percentiles(values: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def _multiplicities(rng: np.random.Generator, n: int, b: int) -> np.ndarray:
    picks = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
    return np.bincount(picks.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)


def off_diagonal_mass(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    """cleanlab's `num_label_issues(..., estimation_method="off_diagonal_calibrated")`,
    before its rounding, for each row of `w` (B, n), the multiplicities of a resample.

    The confident joint counts rows by given label and the label they are confidently
    predicted as (thresholds: each class's mean predicted probability over its given rows);
    calibrated so that each given label's row holds that label's row count, its off-
    diagonal mass is the estimated count of wrong labels."""
    from cleanlab.internal.constants import CONFIDENT_THRESHOLDS_LOWER_BOUND

    n, k = p.shape
    onehot = np.zeros((n, k))
    onehot[np.arange(n), y] = 1.0
    per_class = w @ onehot  # (B, k) rows of each given label in the resample
    sums = w @ (onehot * p)
    # A class absent from a resample gets an unreachable threshold, as in cleanlab.
    thresholds = np.where(per_class > 0, sums / np.maximum(per_class, 1e-300), 2.0)
    thresholds = np.maximum(thresholds, CONFIDENT_THRESHOLDS_LOWER_BOUND)
    confident = p[None, :, :] >= thresholds[:, None, :] - 1e-6  # (B, n, k)
    n_conf = confident.sum(axis=2)
    guess = np.where(n_conf > 1, p.argmax(axis=1)[None, :], confident.argmax(axis=2))
    counted = w * (n_conf > 0)
    joint = np.stack([(counted * (guess == j)) @ onehot for j in range(k)], axis=2)
    diagonal = np.maximum(np.einsum("bii->bi", joint), 1.0)  # cleanlab keeps at least 1
    row_sums = joint.sum(axis=2) - np.einsum("bii->bi", joint) + diagonal
    kept_share = diagonal / np.maximum(row_sums, 1e-12)
    return per_class.sum(axis=1) - (kept_share * per_class).sum(axis=1)


def estimate_errors(
    y: np.ndarray,
    p: np.ndarray,
    multilabel: bool,
    *,
    rng: np.random.Generator,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
) -> tuple[Interval, int]:
    """The estimated count of label errors and its percentile bootstrap interval over rows
    (and the resamples drawn). `y` is class indices, or a 0/1 matrix when multilabel."""
    n = len(y)
    if multilabel:
        return _estimate_multilabel(y, p, rng, min(n_resamples, N_RESAMPLES_MULTILABEL), confidence)
    full = float(off_diagonal_mass(y, p, np.ones((1, n)))[0])
    rows = max(1, _CHUNK_ELEMENTS // max(n * p.shape[1], 1))
    counts = np.concatenate(
        [
            off_diagonal_mass(y, p, _multiplicities(rng, n, min(rows, n_resamples - s)))
            for s in range(0, n_resamples, rows)
        ]
    )
    return Interval(full, *_percentiles(counts, confidence)), n_resamples


def _estimate_multilabel(
    y: np.ndarray, p: np.ndarray, rng: np.random.Generator, b: int, confidence: float
) -> tuple[Interval, int]:
    from cleanlab.count import num_label_issues

    def count(index: np.ndarray) -> float:
        lists = [np.flatnonzero(row).tolist() for row in y[index]]
        return float(num_label_issues(lists, p[index], multi_label=True))

    n = len(y)
    full = count(np.arange(n))
    counts = []
    for _ in range(b):
        try:
            counts.append(count(rng.integers(0, n, n)))
        except ValueError:
            # cleanlab refuses a resample in which some label is on (or off) for every
            # row; such a resample carries no estimate, so it is left out.
            continue
    if not counts:
        return Interval(full, full, full), 0
    return Interval(full, *_percentiles(np.array(counts), confidence)), len(counts)


# -- the model's accuracy -----------------------------------------------------------------


def measure(
    y: np.ndarray,
    p: np.ndarray,
    multilabel: bool,
    *,
    rng: np.random.Generator,
    n_resamples: int = N_RESAMPLES,
) -> Evidence:
    """The OOF model's accuracy and macro-F1 against the given labels, and the estimated
    count of label errors, each with a bootstrap 95% interval over rows."""
    k = p.shape[1]
    pred = (p >= 0.5).astype(np.int64) if multilabel else p.argmax(axis=1)
    scores = {
        metric: bootstrap_ci(y, pred, k, metric, rng=rng, n_resamples=n_resamples)
        for metric in ("accuracy", "macro_f1")
    }
    errors, drawn = estimate_errors(y, p, multilabel, rng=rng, n_resamples=n_resamples)
    return Evidence(len(y), scores["accuracy"], scores["macro_f1"], errors, drawn)


# -- the gate -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GateDecision:
    decision: Decision
    n_flagged: int
    n_allowed: int  # rows the action may change (lowest label quality first)
    min_oof_accuracy: float
    accuracy_low: float
    errors_high: float
    # The change's held-out effect (the worse of accuracy and macro-F1), where it was
    # measured; a negative estimate refuses the action (`reason` "held_out"), a low
    # accuracy bound refuses it first.
    held_out: Interval | None = None
    reason: str | None = None
    held_out_model: str | None = None  # the model the held-out check trained

    @property
    def refused(self) -> bool:
        return self.decision == "refused"

    def to_summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "decision": self.decision,
            "n_flagged": self.n_flagged,
            "n_acted": self.n_allowed,
            "min_oof_accuracy": self.min_oof_accuracy,
            "oof_accuracy_low": round(self.accuracy_low, 4),
            "estimated_errors_high": round(self.errors_high, 1),
        }
        if self.reason is not None:
            out["refused_on"] = self.reason
        if self.held_out is not None:
            out["held_out_effect"] = _rounded(self.held_out)
            out["held_out_model"] = self.held_out_model
        return out


def gate(
    action: str,
    evidence: Evidence,
    n_flagged: int,
    *,
    min_oof_accuracy: float,
    force: bool,
    held_out: Interval | None = None,
    held_out_model: str | None = None,
) -> GateDecision:
    """What a `drop` or `relabel` may do on this evidence; `flag`/`review` pass untouched.

    Refused when the accuracy interval's lower bound is under `min_oof_accuracy`, or when
    the change's measured `held_out` effect (`assay.curate.label_check`: the worse of
    accuracy and macro-F1) is below zero; otherwise at most floor(upper bound of the
    estimated error count) rows. `force` lets every flagged row through and is recorded
    as such."""
    low, high = evidence.accuracy.low, evidence.errors.high
    cap = min(n_flagged, int(np.floor(high + 1e-9)))
    decision: Decision
    reason = None
    if action not in ("drop", "relabel"):
        decision, allowed = "not_destructive", 0
    elif force:
        decision, allowed = "forced", n_flagged
    elif low < min_oof_accuracy:
        decision, allowed, reason = "refused", 0, "accuracy"
    elif held_out is not None and held_out.estimate < 0:
        decision, allowed, reason = "refused", 0, "held_out"
    elif cap < n_flagged:
        decision, allowed = "capped", cap
    else:
        decision, allowed = "acted", n_flagged
    return GateDecision(decision, n_flagged, allowed, min_oof_accuracy, low, high, held_out,
                        reason, held_out_model)  # fmt: skip


def allowed_rows(evidence: Evidence, n_flagged: int, min_oof_accuracy: float) -> int:
    """The rows a gated action would change before its held-out check: none under the
    accuracy floor, else the flags up to the estimate's upper bound."""
    if evidence.accuracy.low < min_oof_accuracy:
        return 0
    return min(n_flagged, int(np.floor(evidence.errors.high + 1e-9)))


def refusal_message(step: str, action: str, evidence: Evidence, decision: GateDecision) -> str:
    """The one warning line a refused drop or relabel emits: the numbers and the remedies."""
    acc = evidence.accuracy
    verb = "drop" if action == "drop" else "relabel"
    if decision.reason == "held_out" and decision.held_out is not None:
        effect = decision.held_out
        which = f" ({decision.held_out_model})" if decision.held_out_model else ""
        return (
            f"{step}: did not {verb} any row: with the rows it would {verb} "
            f"{'left out' if action == 'drop' else 'relabelled'}, models{which} scored "
            f"{100 * effect.estimate:+.2f} points of held-out accuracy or macro-F1, the "
            "worse (95% CI "
            f"{100 * effect.low:+.2f} to {100 * effect.high:+.2f}) against models trained "
            f"on the given labels, so its {decision.n_flagged:,} flags were kept as flags "
            "instead; review them (action: review), or force: true to act anyway"
        )
    return (
        f"{step}: did not {verb} any row: the out-of-fold model's accuracy is {acc.estimate:.3f} "
        f"(95% CI {acc.low:.3f}-{acc.high:.3f} over {evidence.n_scored:,} rows), under "
        f"min_oof_accuracy {decision.min_oof_accuracy:.2f}, so its {decision.n_flagged:,} "
        f"flags (estimated errors {evidence.errors.estimate:.0f}, 95% CI "
        f"{evidence.errors.low:.0f}-{evidence.errors.high:.0f}) were kept as flags instead; "
        "use a stronger model (model: probe), label more rows, or action: review "
        "(force: true acts anyway)"
    )


# -- the plot's data ------------------------------------------------------------------------


def score_histogram(
    score: np.ndarray, flagged: np.ndarray, errors: Interval, bins: int = SCORE_BINS
) -> dict[str, Any]:
    """Rows per label-quality bin, flagged and not, and the scores at which the estimated
    error count's interval cuts the ranking (the `low`/`high` worst rows score below)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    at = np.clip(np.digitize(score, edges[1:-1]), 0, bins - 1)
    ordered = np.sort(score)

    def cut(count: float) -> float | None:
        i = round(count)
        return None if i <= 0 or not len(ordered) else float(ordered[min(i, len(ordered)) - 1])

    return {
        "edges": [round(float(e), 4) for e in edges],
        "flagged": np.bincount(at[flagged], minlength=bins).tolist(),
        "kept": np.bincount(at[~flagged], minlength=bins).tolist(),
        "score_at_errors": {
            "estimate": cut(errors.estimate),
            "low": cut(errors.low),
            "high": cut(errors.high),
        },
    }
