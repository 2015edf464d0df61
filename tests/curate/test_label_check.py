from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score

from assay.curate.label_check import worse_effect
from assay.train.bootstrap import resampled_scores


def test_macro_f1_per_resample_matches_scikit_learn():
    # The check's per-resample macro-F1 (row multiplicities) is scikit-learn's on the
    # resampled rows, averaged over the classes present.
    rng = np.random.default_rng(0)
    for k in (2, 3, 6):
        y = rng.integers(0, k, size=40)
        pred = np.where(rng.random(40) < 0.7, y, rng.integers(0, k, size=40))
        picks = rng.integers(0, 40, size=(8, 40))
        picks[0] = np.flatnonzero(y == y[0])[0]  # one resample of a single row (one class)
        weights = np.stack([np.bincount(p, minlength=40) for p in picks]).astype(np.float64)
        expected = [f1_score(y[p], pred[p], average="macro") for p in picks]
        got = resampled_scores(y, pred, k, weights, "macro_f1")
        np.testing.assert_allclose(got, expected, atol=1e-12)


def test_a_change_that_buys_accuracy_with_a_rare_class_has_a_negative_effect():
    # 970 rows of two common classes and 30 of a rare one. Before: 75% right on the
    # common classes, 80% on the rare one. After: 85% on the common ones (about +7 points
    # of accuracy overall) and the rare class never predicted (macro-F1 falls by ~0.2).
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1, 2], [485, 485, 30])
    common = y < 2
    before = np.where(rng.random(1000) < np.where(common, 0.75, 0.8), y, 1 - (y % 2))
    after = np.where(common & (rng.random(1000) < 0.85), y, 1 - (y % 2))
    accuracy = (after == y).mean() - (before == y).mean()
    assert accuracy > 0.04
    effect = worse_effect(y, before, after, 3, np.random.default_rng(2))
    f1 = f1_score(y, after, average="macro") - f1_score(y, before, average="macro")
    assert effect.estimate == min(accuracy, f1) == f1 < -0.1
    assert effect.low <= effect.estimate <= effect.high < 0
    # A change that helps on both counts is judged by the smaller gain.
    better = np.where(rng.random(1000) < 0.5, y, before)
    gain = worse_effect(y, before, better, 3, np.random.default_rng(2))
    assert 0 < gain.low <= gain.estimate <= gain.high
    assert gain.estimate == min(
        (better == y).mean() - (before == y).mean(),
        f1_score(y, better, average="macro") - f1_score(y, before, average="macro"),
    )
