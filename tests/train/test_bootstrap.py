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


def _arms(rng, y, accuracies, seeds=3):
    """Per-seed predictions of arms with the given accuracies (single- or multi-label)."""
    out = []
    for acc in accuracies:
        preds = []
        for _ in range(seeds):
            wrong = rng.random(y.shape) >= acc
            preds.append(np.where(wrong, 1 - y, y))
        out.append(preds)
    return out


@pytest.mark.parametrize("metric", ["accuracy", "macro_f1"])
@pytest.mark.parametrize("multilabel", [False, True])
def test_metric_permutation_p_is_large_for_a_copy_and_small_for_a_worse_arm(metric, multilabel):
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, (400, 3) if multilabel else 400)
    base, other, worse = _arms(rng, y, [0.85, 0.85, 0.7])
    k = 3 if multilabel else 2
    p_same = permutation_test(y, base, base, rng=rng, n_permutations=500, k=k, metric=metric)
    p_null = permutation_test(y, other, base, rng=rng, n_permutations=500, k=k, metric=metric)
    p_worse = permutation_test(y, worse, base, rng=rng, n_permutations=500, k=k, metric=metric)
    assert p_same == 1.0
    assert p_null > 0.05
    assert p_worse < 0.01
    cmp = paired_bootstrap(y, worse, base, k, metric, rng=rng, n_resamples=300,
                           n_permutations=300)  # fmt: skip
    assert cmp.p_value_bootstrap < 0.05 and cmp.p_value_permutation < 0.05
    assert cmp.delta.high < 0


def test_permutation_test_tests_macro_f1_not_accuracy():
    """Two arms with the same accuracy but different macro-F1: only the F1 test sees it."""
    rng = np.random.default_rng(9)
    y = np.array([0] * 900 + [1] * 100)
    rare_right = y.copy()  # gets the rare class right, misses 100 of the common class
    rare_right[:100] = 1
    rare_wrong = y.copy()  # never predicts the rare class: same 100 errors
    rare_wrong[900:] = 0
    assert (rare_right == y).mean() == (rare_wrong == y).mean()
    p_acc = permutation_test(y, [rare_wrong], [rare_right], rng=rng, n_permutations=500)
    p_f1 = permutation_test(
        y, [rare_wrong], [rare_right], rng=rng, n_permutations=500, metric="macro_f1"
    )
    assert p_acc > 0.5
    assert p_f1 < 0.01


def test_bootstrap_p_agrees_with_the_interval():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 600)
    for acc in (0.84, 0.8, 0.76):
        base, variant = _arms(rng, y, [0.82, acc])
        cmp = paired_bootstrap(y, variant, base, 2, "accuracy", rng=rng, n_resamples=500,
                               p_test="bootstrap", n_permutations=100)  # fmt: skip
        excludes_zero = cmp.delta.low > 0 or cmp.delta.high < 0
        assert (cmp.p_value < 0.05) == excludes_zero


@pytest.mark.parametrize("multilabel", [False, True])
def test_chunked_bootstrap_equals_unchunked(multilabel):
    y = np.random.default_rng(0).integers(0, 2, (150, 3) if multilabel else 150)
    base, variant = _arms(np.random.default_rng(1), y, [0.8, 0.75], seeds=4)
    k = 3 if multilabel else 2
    results = [
        paired_bootstrap(y, variant, base, k, "macro_f1", rng=np.random.default_rng(7),
                         n_resamples=200, n_permutations=300, chunk_elements=chunk)
        for chunk in (10**9, 150 * 7, 1)
    ]  # fmt: skip
    assert results[0] == results[1] == results[2]
    ci = [bootstrap_ci(y, base[0], k, rng=np.random.default_rng(2), n_resamples=100,
                       chunk_elements=c) for c in (10**9, 300)]  # fmt: skip
    assert ci[0] == ci[1]


def test_seed_part_is_a_t_interval_when_seeds_disagree_and_examples_do_not():
    """Each seed's arms differ on a fixed block of examples; the per-seed deltas vary, the
    example noise is all per seed: the CI is about the t interval of the seed deltas."""
    n, seeds = 1000, 5
    y = np.zeros(n, dtype=np.int64)
    base = [y.copy() for _ in range(seeds)]
    shifts = [10, 30, 20, 40, 25]
    var = []
    for s, k in enumerate(shifts):
        p = y.copy()
        p[s * 100 : s * 100 + k] = 1  # wrong on k examples, a block of its own per seed
        var.append(p)
    cmp = paired_bootstrap(y, var, base, 2, "accuracy", rng=np.random.default_rng(0),
                           n_resamples=4000, n_permutations=100)  # fmt: skip
    deltas = -np.array(shifts) / n
    half = 2.776 * deltas.std(ddof=1) / np.sqrt(seeds)  # t(4) quantile 0.975
    assert cmp.delta.estimate == pytest.approx(deltas.mean())
    assert cmp.delta.high - cmp.delta.low == pytest.approx(2 * half, rel=0.15)
    plain = paired_bootstrap(y, var, base, 2, "accuracy", rng=np.random.default_rng(0),
                             n_resamples=4000, n_permutations=100, seed_t=False)  # fmt: skip
    assert plain.delta.high - plain.delta.low < 0.8 * (cmp.delta.high - cmp.delta.low)


def test_interval_covers_seed_variance_with_each_seed_its_own_draw():
    """Per-seed deltas vary (a seed's draw moves it): the CI must cover the mean delta over
    seeds, not only the test-example noise of the seeds at hand."""
    rng = np.random.default_rng(11)
    n, seeds, trials, truth = 800, 5, 80, -0.02
    covered = 0
    for _ in range(trials):
        y = rng.integers(0, 2, n)
        own = rng.normal(0, 0.02, seeds)
        base = [np.where(rng.random(n) < 0.8, y, 1 - y) for _ in range(seeds)]
        var = [np.where(rng.random(n) < 0.8 + truth + own[s], y, 1 - y) for s in range(seeds)]
        cmp = paired_bootstrap(y, var, base, 2, "accuracy", rng=rng, n_resamples=300,
                               n_permutations=100)  # fmt: skip
        covered += cmp.delta.low <= truth <= cmp.delta.high
    assert 0.88 <= covered / trials <= 1.0, covered / trials
