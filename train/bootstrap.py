"""Confidence intervals by bootstrap over test examples (and seeds), and a paired test.

Metrics are recomputed from confusion counts for every resample, so 1,000 resamples of a
2,000-example test set over 5 seeds take milliseconds. Resamples are drawn in chunks of at
most `CHUNK_ELEMENTS` example weights, so memory stays flat however large the test set.

Seeds are a sample too: when each seed also draws its own training rows, the seed-to-seed
spread is the variance users meet when they label another sample. A resampled delta is
the observed one plus two parts:

- a seed part: the seeds' spread as a t distribution with S - 1 degrees of freedom (the
  standard error of the mean of S per-seed deltas times a Student-t draw). Resampling a
  handful of seeds with replacement under-states that spread (a mean of S values with
  divisor S, and bounded, lighter-than-normal tails); the t part is exact for normal
  per-seed deltas;
- an example part: the test examples resampled (the same draw for every seed), shrunk to
  the share of its variance that the seeds have in common (the mean covariance between
  seeds over the variance of the seed mean). The rest, each seed's own example noise, is
  already in the spread of the seeds' deltas; counting it twice made intervals too wide.

With one seed, or seeds that all predict alike, this is the plain example bootstrap.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from assay.errors import InputError
from assay.train.metrics import (
    multilabel_counts,
    scores_from_confusion,
    scores_from_multilabel,
)

METRICS = ("accuracy", "macro_f1")
N_RESAMPLES = 1000
N_PERMUTATIONS = 10_000
CONFIDENCE = 0.95
# Example weights held at once (float64): 4M = 32 MB, whatever the test set size.
CHUNK_ELEMENTS = 4_000_000
P_TESTS = ("permutation", "bootstrap")


@dataclasses.dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise InputError(f"unknown metric {metric!r}; expected one of {list(METRICS)}")


def _confusions(weights: np.ndarray, cell: np.ndarray, cells: int) -> np.ndarray:
    """Summed weights per confusion cell (B, cells), without an (n, cells) one-hot."""
    out = np.zeros((weights.shape[0], cells))
    order = np.argsort(cell, kind="stable")
    sorted_cells = cell[order]
    present, starts = np.unique(sorted_cells, return_index=True)
    if len(present):
        out[:, present] = np.add.reduceat(weights[:, order], starts, axis=1)
    return out


def resampled_scores(
    y_true: np.ndarray, y_pred: np.ndarray, k: int, weights: np.ndarray, metric: str
) -> np.ndarray:
    """The metric for each row of `weights` (B, n): example multiplicities of a resample."""
    _check_metric(metric)
    if y_true.ndim == 1:
        cell = y_true * k + y_pred
        if len(cell) * k * k <= CHUNK_ELEMENTS:  # small one-hot: one matrix product
            onehot = np.zeros((len(cell), k * k))
            onehot[np.arange(len(cell)), cell] = 1.0
            conf = weights @ onehot
        else:
            conf = _confusions(weights, cell, k * k)
        return scores_from_confusion(conf.reshape(-1, k, k))[metric]
    counts = multilabel_counts(y_true, y_pred).reshape(len(y_true), -1).astype(np.float64)
    summed = (weights @ counts).reshape(weights.shape[0], k, 3)
    exact = (y_true == y_pred).all(axis=1).astype(np.float64)
    subset = (weights @ exact) / np.maximum(weights.sum(axis=1), 1)
    return scores_from_multilabel(summed, subset)[metric]


def example_weights(rng: np.random.Generator, n: int, b: int) -> np.ndarray:
    """Multiplicities (b, n) of b resamples of n examples drawn with replacement."""
    picks = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
    return np.bincount(picks.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)


def _chunk_rows(n: int, chunk_elements: int) -> int:
    return max(1, chunk_elements // max(n, 1))


def _percentiles(values: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_ci(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    k: int,
    metric: str = "macro_f1",
    *,
    rng: np.random.Generator,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    chunk_elements: int = CHUNK_ELEMENTS,
) -> Interval:
    """Percentile bootstrap CI of one model's metric over test examples."""
    n = len(y_true)
    full = resampled_scores(y_true, y_pred, k, np.ones((1, n)), metric)[0]
    rows = _chunk_rows(n, chunk_elements)
    scores = np.concatenate(
        [
            resampled_scores(
                y_true, y_pred, k, example_weights(rng, n, min(rows, n_resamples - s)), metric
            )
            for s in range(0, n_resamples, rows)
        ]
    )
    return Interval(float(full), *_percentiles(scores, confidence))


@dataclasses.dataclass(frozen=True)
class PairedComparison:
    metric: str
    variant: Interval  # mean over seeds, CI over examples and seeds
    baseline: Interval
    delta: Interval
    p_value: float  # two-sided, on the headline metric (see `p_test`)
    n_seeds: int
    n_examples: int
    p_test: str = "permutation"
    p_value_permutation: float | None = None
    p_value_bootstrap: float | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "metric": self.metric,
            "variant": self.variant.to_dict(),
            "baseline": self.baseline.to_dict(),
            "delta": self.delta.to_dict(),
            "p_value": self.p_value,
            "p_test": self.p_test,
            "p_value_permutation": self.p_value_permutation,
            "p_value_bootstrap": self.p_value_bootstrap,
            "n_seeds": self.n_seeds,
            "n_examples": self.n_examples,
        }


def paired_bootstrap(
    y_true: np.ndarray,
    variant_preds: Sequence[np.ndarray],
    baseline_preds: Sequence[np.ndarray],
    k: int,
    metric: str = "macro_f1",
    *,
    rng: np.random.Generator,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    n_permutations: int = N_PERMUTATIONS,
    p_test: str = "permutation",
    seed_t: bool = True,
    chunk_elements: int = CHUNK_ELEMENTS,
) -> PairedComparison:
    """Delta of a variant against the baseline, paired by seed and by test example.

    `variant_preds[s]` and `baseline_preds[s]` are the predictions of seed s (same seeds in
    both arms). Each resample draws test examples and seeds with replacement and applies the
    same draw to both arms, so the shared example difficulty and seed luck cancel out. With
    `seed_t` (default) the seed part is a t draw scaled by the seeds' spread and only the
    shared example noise is added (module docstring); without it, seeds are resampled with
    replacement together with the examples (the plain two-level bootstrap).

    `p_test`: "permutation" (swap the arms' predictions per example and seed and recompute
    the metric) or "bootstrap" (the share of resampled deltas on the far side of zero,
    doubled: significant exactly when the CI excludes zero). Both are computed and kept.
    """
    if len(variant_preds) != len(baseline_preds) or not variant_preds:
        raise InputError(
            f"paired comparison needs the same seeds in both arms; got {len(variant_preds)} "
            f"variant and {len(baseline_preds)} baseline runs"
        )
    if p_test not in P_TESTS:
        raise InputError(f"unknown p-value test {p_test!r}; expected one of {list(P_TESTS)}")
    n, s = len(y_true), len(variant_preds)
    seed_w = rng.multinomial(s, np.full(s, 1.0 / s), size=n_resamples).astype(np.float64)
    t_draws = rng.standard_t(s - 1, size=n_resamples) if s > 1 else np.zeros(n_resamples)

    def per_seed(preds: Sequence[np.ndarray], weights: np.ndarray) -> np.ndarray:
        return np.stack([resampled_scores(y_true, p, k, weights, metric) for p in preds], 1)

    ones = np.ones((1, n))
    var_seeds, base_seeds = per_seed(variant_preds, ones)[0], per_seed(baseline_preds, ones)[0]
    var_res, base_res = np.empty((n_resamples, s)), np.empty((n_resamples, s))
    rows = _chunk_rows(n, chunk_elements)
    for start in range(0, n_resamples, rows):
        stop = min(start + rows, n_resamples)
        ex_w = example_weights(rng, n, stop - start)
        var_res[start:stop] = per_seed(variant_preds, ex_w)
        base_res[start:stop] = per_seed(baseline_preds, ex_w)

    def combine(full: np.ndarray, resampled: np.ndarray) -> np.ndarray:
        if not seed_t:
            return (resampled * seed_w).sum(axis=1) / s
        return _two_part(full, resampled, t_draws)

    var_scores = combine(var_seeds, var_res)
    base_scores = combine(base_seeds, base_res)
    deltas = combine(var_seeds - base_seeds, var_res - base_res)
    var_full, base_full = float(var_seeds.mean()), float(base_seeds.mean())
    observed = float((var_seeds - base_seeds).mean())
    p_boot = bootstrap_p_value(deltas, observed)
    p_perm = permutation_test(
        y_true,
        variant_preds,
        baseline_preds,
        rng=rng,
        n_permutations=n_permutations,
        k=k,
        metric=metric,
    )
    return PairedComparison(
        metric=metric,
        variant=Interval(var_full, *_percentiles(var_scores, confidence)),
        baseline=Interval(base_full, *_percentiles(base_scores, confidence)),
        delta=Interval(observed, *_percentiles(deltas, confidence)),
        p_value=p_perm if p_test == "permutation" else p_boot,
        n_seeds=s,
        n_examples=n,
        p_test=p_test,
        p_value_permutation=p_perm,
        p_value_bootstrap=p_boot,
    )


def _two_part(full: np.ndarray, resampled: np.ndarray, t_draws: np.ndarray) -> np.ndarray:
    """Resampled seed means: observed + t-distributed seed part + shared example part.

    `full` (S,) is each seed's statistic on the whole test set, `resampled` (B, S) the same
    on example resamples, `t_draws` (B,) Student-t draws with S - 1 degrees of freedom.
    """
    s = len(full)
    mean = full.mean()
    example_part = resampled.mean(axis=1) - mean
    if s == 1:
        return mean + example_part
    seed_part = full.std(ddof=1) / math.sqrt(s) * t_draws
    cov = np.cov(resampled, rowvar=False)
    total = cov.mean()  # variance of the seed mean over example resamples
    shared = (cov.sum() - np.trace(cov)) / (s * (s - 1))
    shrink = math.sqrt(min(max(shared / total, 0.0), 1.0)) if total > 0 else 0.0
    return mean + seed_part + shrink * example_part


def bootstrap_p_value(deltas: np.ndarray, observed: float) -> float:
    """Two-sided p from resampled deltas: twice the share on the far side of zero."""
    if observed == 0 and not np.any(deltas):
        return 1.0
    b = len(deltas)
    below = (np.sum(deltas <= 0) + 1) / (b + 1)
    above = (np.sum(deltas >= 0) + 1) / (b + 1)
    return float(min(1.0, 2 * min(below, above)))


def correctness(y_true: np.ndarray, preds: Sequence[np.ndarray]) -> np.ndarray:
    """Per-example share of seeds that got the example (its whole label set) right."""
    hits = [(p == y_true) if y_true.ndim == 1 else (p == y_true).all(axis=1) for p in preds]
    return np.mean(hits, axis=0)


def correctness_test(
    y_true: np.ndarray,
    variant_preds: Sequence[np.ndarray],
    baseline_preds: Sequence[np.ndarray],
    *,
    rng: np.random.Generator,
    n_permutations: int = N_PERMUTATIONS,
) -> float:
    """Two-sided sign-flip test of equal per-example correctness (accuracy only).

    Kept for comparison: it tests accuracy whatever the headline metric is.
    """
    diff = correctness(y_true, variant_preds) - correctness(y_true, baseline_preds)
    diff = diff[diff != 0]
    if diff.size == 0:
        return 1.0
    observed = abs(diff.mean())
    hits = 0
    chunk = 1000
    for start in range(0, n_permutations, chunk):
        m = min(chunk, n_permutations - start)
        signs = rng.integers(0, 2, size=(m, diff.size), dtype=np.int8) * 2 - 1
        stats = np.abs((signs * diff).mean(axis=1))
        hits += int((stats >= observed - 1e-12).sum())
    return (hits + 1) / (n_permutations + 1)


def _seed_counts(y_true: np.ndarray, pred: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-example additive counts (n, c) from which the metric is computed."""
    if y_true.ndim == 1:
        onehot = np.zeros((len(y_true), k * k))
        onehot[np.arange(len(y_true)), y_true * k + pred] = 1.0
        return onehot, np.zeros(len(y_true))
    counts = multilabel_counts(y_true, pred).reshape(len(y_true), -1).astype(np.float64)
    return counts, (y_true == pred).all(axis=1).astype(np.float64)


def _score_counts(counts: np.ndarray, exact: np.ndarray, k: int, n: int, metric: str):
    if exact is None:
        return scores_from_confusion(counts.reshape(-1, k, k))[metric]
    return scores_from_multilabel(counts.reshape(-1, k, 3), exact / max(n, 1))[metric]


def permutation_test(
    y_true: np.ndarray,
    variant_preds: Sequence[np.ndarray],
    baseline_preds: Sequence[np.ndarray],
    *,
    rng: np.random.Generator,
    n_permutations: int = N_PERMUTATIONS,
    k: int | None = None,
    metric: str = "accuracy",
    chunk_elements: int = CHUNK_ELEMENTS,
) -> float:
    """Two-sided paired permutation test of equal `metric` (accuracy or macro-F1).

    Under the null the two arms are exchangeable on each example of each seed, so every
    permutation swaps the arms' predictions of a random half of (example, seed) pairs and
    recomputes the metric of both arms; the statistic is the seed-mean metric difference.
    Only examples where the arms disagree can change anything, so only they are drawn.
    """
    _check_metric(metric)
    if k is None:
        k = int(y_true.shape[1]) if y_true.ndim == 2 else int(max(y_true.max(), 1)) + 1
    n, s = len(y_true), len(variant_preds)
    multilabel = y_true.ndim == 2
    seeds = []
    for pv, pb in zip(variant_preds, baseline_preds, strict=True):
        cv, ev = _seed_counts(y_true, pv, k)
        cb, eb = _seed_counts(y_true, pb, k)
        differ = np.flatnonzero(np.any(cv != cb, axis=1))
        seeds.append(
            (cv.sum(0), cb.sum(0), ev.sum(), eb.sum(), cb[differ] - cv[differ], (eb - ev)[differ])
        )
    if not any(len(d[5]) for d in seeds):
        return 1.0

    def stat(chunk: int, swaps: list[np.ndarray] | None) -> np.ndarray:
        total = np.zeros(chunk)
        for i, (sv, sb, xv, xb, dc, dx) in enumerate(seeds):
            if swaps is None or not len(dx):
                moved, moved_x = np.zeros((chunk, len(sv))), np.zeros(chunk)
            else:
                moved, moved_x = swaps[i] @ dc, swaps[i] @ dx
            ex_v = (xv + moved_x) if multilabel else None
            ex_b = (xb - moved_x) if multilabel else None
            total += _score_counts(sv + moved, ex_v, k, n, metric)
            total -= _score_counts(sb - moved, ex_b, k, n, metric)
        return total / s

    observed = abs(float(stat(1, None)[0]))
    widest = max(len(d[5]) for d in seeds)
    rows = _chunk_rows(widest * s, chunk_elements)
    hits = 0
    for start in range(0, n_permutations, rows):
        m = min(rows, n_permutations - start)
        swaps = [(rng.random((m, len(d[5])), dtype=np.float32) < 0.5).astype(np.float32)
                 for d in seeds]  # fmt: skip
        hits += int((np.abs(stat(m, swaps)) >= observed - 1e-12).sum())
    return (hits + 1) / (n_permutations + 1)
