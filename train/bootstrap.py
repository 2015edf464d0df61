"""Confidence intervals by bootstrap over test examples (and seeds), and a paired test.

Metrics are recomputed from confusion counts for every resample in one matrix product,
so 1,000 resamples of a 2,000-example test set over 5 seeds take milliseconds.
"""

from __future__ import annotations

import dataclasses
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
CONFIDENCE = 0.95


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


def resampled_scores(
    y_true: np.ndarray, y_pred: np.ndarray, k: int, weights: np.ndarray, metric: str
) -> np.ndarray:
    """The metric for each row of `weights` (B, n): example multiplicities of a resample."""
    _check_metric(metric)
    if y_true.ndim == 1:
        cell = y_true * k + y_pred
        onehot = np.zeros((len(cell), k * k))
        onehot[np.arange(len(cell)), cell] = 1.0
        conf = (weights @ onehot).reshape(-1, k, k)
        return scores_from_confusion(conf)[metric]
    counts = multilabel_counts(y_true, y_pred).reshape(len(y_true), -1).astype(np.float64)
    summed = (weights @ counts).reshape(weights.shape[0], k, 3)
    exact = (y_true == y_pred).all(axis=1).astype(np.float64)
    subset = (weights @ exact) / np.maximum(weights.sum(axis=1), 1)
    return scores_from_multilabel(summed, subset)[metric]


def _example_weights(rng: np.random.Generator, n: int, b: int) -> np.ndarray:
    return rng.multinomial(n, np.full(n, 1.0 / n), size=b).astype(np.float64)


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
) -> Interval:
    """Percentile bootstrap CI of one model's metric over test examples."""
    n = len(y_true)
    full = resampled_scores(y_true, y_pred, k, np.ones((1, n)), metric)[0]
    scores = resampled_scores(y_true, y_pred, k, _example_weights(rng, n, n_resamples), metric)
    return Interval(float(full), *_percentiles(scores, confidence))


@dataclasses.dataclass(frozen=True)
class PairedComparison:
    metric: str
    variant: Interval  # mean over seeds, CI over examples and seeds
    baseline: Interval
    delta: Interval
    p_value: float  # paired permutation test on per-example correctness
    n_seeds: int
    n_examples: int

    def to_dict(self) -> dict[str, object]:
        return {
            "metric": self.metric,
            "variant": self.variant.to_dict(),
            "baseline": self.baseline.to_dict(),
            "delta": self.delta.to_dict(),
            "p_value": self.p_value,
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
    n_permutations: int = 10_000,
) -> PairedComparison:
    """Delta of a variant against the baseline, paired by seed and by test example.

    `variant_preds[s]` and `baseline_preds[s]` are the predictions of seed s (same seeds in
    both arms). Each resample draws test examples and seeds with replacement and applies the
    same draw to both arms, so the shared example difficulty and seed luck cancel out.
    """
    if len(variant_preds) != len(baseline_preds) or not variant_preds:
        raise InputError(
            f"paired comparison needs the same seeds in both arms; got {len(variant_preds)} "
            f"variant and {len(baseline_preds)} baseline runs"
        )
    n, s = len(y_true), len(variant_preds)
    ex_w = np.vstack([np.ones((1, n)), _example_weights(rng, n, n_resamples)])
    seed_w = np.vstack(
        [np.ones((1, s)), rng.multinomial(s, np.full(s, 1.0 / s), size=n_resamples)]
    ).astype(np.float64)
    arms = []
    for preds in (variant_preds, baseline_preds):
        per_seed = np.stack(
            [resampled_scores(y_true, p, k, ex_w, metric) for p in preds], axis=1
        )  # (B+1, S)
        arms.append((per_seed * seed_w).sum(axis=1) / s)
    var_scores, base_scores = arms
    deltas = var_scores - base_scores
    return PairedComparison(
        metric=metric,
        variant=Interval(float(var_scores[0]), *_percentiles(var_scores[1:], confidence)),
        baseline=Interval(float(base_scores[0]), *_percentiles(base_scores[1:], confidence)),
        delta=Interval(float(deltas[0]), *_percentiles(deltas[1:], confidence)),
        p_value=permutation_test(
            y_true, variant_preds, baseline_preds, rng=rng, n_permutations=n_permutations
        ),
        n_seeds=s,
        n_examples=n,
    )


def correctness(y_true: np.ndarray, preds: Sequence[np.ndarray]) -> np.ndarray:
    """Per-example share of seeds that got the example (its whole label set) right."""
    hits = [(p == y_true) if y_true.ndim == 1 else (p == y_true).all(axis=1) for p in preds]
    return np.mean(hits, axis=0)


def permutation_test(
    y_true: np.ndarray,
    variant_preds: Sequence[np.ndarray],
    baseline_preds: Sequence[np.ndarray],
    *,
    rng: np.random.Generator,
    n_permutations: int = 10_000,
) -> float:
    """Two-sided paired permutation test of equal per-example correctness.

    Under the null the two arms are exchangeable on each example, so the sign of each
    example's difference is flipped at random.
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
