from __future__ import annotations

import numpy as np
import pytest

from assay.curate import label_evidence
from assay.train.bootstrap import Interval

cleanlab_count = pytest.importorskip("cleanlab.count")


@pytest.mark.parametrize("k", [2, 3, 6])
def test_the_vectorised_mass_is_cleanlabs_on_the_rows_and_on_a_resample(k):
    def cleanlab_mass(y, p):
        return cleanlab_count.num_label_issues(y, p, estimation_method="off_diagonal_calibrated")

    # cleanlab rounds the calibrated joint's cells and the count; the mass is not rounded.
    tolerance = k / 2 + 0.5
    rng = np.random.default_rng(k)
    for n in (40, 300):
        p = rng.dirichlet(np.full(k, 0.5), size=n)
        y = rng.integers(0, k, n)
        ours = label_evidence.off_diagonal_mass(y, p, np.ones((1, n)))[0]
        assert abs(ours - cleanlab_mass(y, p)) <= tolerance
        pick = rng.integers(0, n, n)
        if len(set(y[pick])) == k:  # cleanlab needs every class in the resample
            w = np.bincount(pick, minlength=n)[None, :].astype(float)
            resampled = label_evidence.off_diagonal_mass(y, p, w)[0]
            assert abs(resampled - cleanlab_mass(y[pick], p[pick])) <= tolerance


def _planted(seed: int, n: int = 1000, k: int = 2, rate: float = 0.15):
    """A model right on 96-99% of the true labels; `rate` of the given labels flipped."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), truth] += 3.0
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    given = truth.copy()
    flips = rng.choice(n, round(rate * n), replace=False)
    given[flips] = (truth[flips] + rng.integers(1, k, len(flips))) % k
    return given, p, len(flips)


@pytest.mark.slow
@pytest.mark.parametrize("k", [2, 4])
def test_the_estimates_interval_covers_the_planted_count(k):
    # Measured: 20/20 for both k (and at 10% and 20% flipped), estimate within 3% of planted.
    covered = []
    for seed in range(20):
        given, p, planted = _planted(seed, k=k)
        interval, drawn = label_evidence.estimate_errors(
            given, p, False, rng=np.random.default_rng(seed), n_resamples=400
        )
        assert drawn == 400 and interval.low <= interval.estimate <= interval.high
        covered.append(interval.low <= planted <= interval.high)
    assert np.mean(covered) >= 0.8, covered


def _evidence(acc_low: float, errors_high: float) -> label_evidence.Evidence:
    return label_evidence.Evidence(
        100,
        Interval(0.9, acc_low, 0.95),
        Interval(0.9, 0.8, 0.95),
        Interval(10, 5, errors_high),
        1000,
    )


def test_the_gate_refuses_caps_forces_and_passes():
    gate = label_evidence.gate
    strong, weak = _evidence(0.85, 12.7), _evidence(0.6, 12.7)
    assert gate("drop", strong, 10, min_oof_accuracy=0.75, force=False).decision == "acted"
    capped = gate("relabel", strong, 20, min_oof_accuracy=0.75, force=False)
    assert capped.decision == "capped" and capped.n_allowed == 12
    refused = gate("drop", weak, 20, min_oof_accuracy=0.75, force=False)
    assert refused.refused and refused.n_allowed == 0
    forced = gate("drop", weak, 20, min_oof_accuracy=0.75, force=True)
    assert forced.decision == "forced" and forced.n_allowed == 20
    flag = gate("flag", weak, 20, min_oof_accuracy=0.75, force=False)
    assert flag.decision == "not_destructive"


def test_the_multilabel_estimate_skips_resamples_cleanlab_cannot_score():
    y = np.array([[1, 0], [1, 1], [0, 1], [1, 0], [0, 1], [1, 0]])
    p = np.array([[0.9, 0.1], [0.8, 0.9], [0.1, 0.9], [0.2, 0.8], [0.1, 0.95], [0.9, 0.2]])
    interval, drawn = label_evidence.estimate_errors(y, p, True, rng=np.random.default_rng(0))
    assert 0 < drawn <= label_evidence.N_RESAMPLES_MULTILABEL
    assert interval.low <= interval.estimate <= interval.high
