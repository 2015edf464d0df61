from __future__ import annotations

import numpy as np
import pytest

from assay.train.bootstrap import bootstrap_ci, paired_bootstrap, permutation_test


def test_bootstrap_ci_covers_true_accuracy_at_nominal_rate():
    """Simulated models with true accuracy 0.8: the 95% CI should cover 0.8 ~95% of the time."""
    rng = np.random.default_rng(0)
    truth, n, trials = 0.8, 400, 300
    covered = 0
    for _ in range(trials):
        y = rng.integers(0, 2, n)
        right = rng.random(n) < truth
        pred = np.where(right, y, 1 - y)
        ci = bootstrap_ci(y, pred, 2, "accuracy", rng=rng, n_resamples=400)
        covered += ci.low <= truth <= ci.high
    rate = covered / trials
    assert 0.91 <= rate <= 0.98, rate


def test_paired_delta_detects_a_worse_arm_and_not_a_copy():
    rng = np.random.default_rng(1)
    n, seeds = 500, 3
    y = rng.integers(0, 2, n)

    def arm(acc: float) -> list[np.ndarray]:
        return [np.where(rng.random(n) < acc, y, 1 - y) for _ in range(seeds)]

    base = arm(0.85)
    worse = arm(0.70)
    worse_cmp = paired_bootstrap(y, worse, base, 2, "macro_f1", rng=rng, n_resamples=500)
    assert worse_cmp.delta.high < 0
    assert worse_cmp.p_value < 0.01
    assert worse_cmp.delta.estimate == pytest.approx(
        np.mean([_f1(y, w) - _f1(y, b) for w, b in zip(worse, base, strict=True)])
    )
    same = paired_bootstrap(y, base, base, 2, "macro_f1", rng=rng, n_resamples=500)
    assert same.delta.estimate == 0 and same.delta.low == 0 and same.delta.high == 0
    assert same.p_value == 1.0


def test_permutation_test_is_uniform_under_the_null():
    rng = np.random.default_rng(2)
    n = 300
    y = rng.integers(0, 2, n)
    ps = []
    for _ in range(60):
        a = [np.where(rng.random(n) < 0.8, y, 1 - y)]
        b = [np.where(rng.random(n) < 0.8, y, 1 - y)]
        ps.append(permutation_test(y, a, b, rng=rng, n_permutations=500))
    # 60 null comparisons: about 3 false alarms expected at alpha 0.05
    assert np.mean(np.array(ps) < 0.05) <= 0.15
    assert np.mean(ps) > 0.35


def _f1(y, p):
    from sklearn.metrics import f1_score

    return f1_score(y, p, average="macro")
