"""The held-out check of a drop or relabel: would the change help a model on rows that
played no part in choosing it?

For each fold of label_noise's cross-fit, the rows of the other folds are cross-fitted
again on their own, flagged and capped by the step's rule, and changed (the chosen rows
left out of training, or given their suggested label); a model trained on them scores the
fold's rows. The fold's out-of-fold probabilities of the step's own cross-fit are the same
model without the change. The check is the paired difference of held-out accuracy and of
macro-F1 against the given labels, the worse of the two (per bootstrap resample too):
uniform label noise lowers every model's score against noisy labels alike, so the better
model on clean labels is the better one here too; macro-F1 refuses a change that buys a
little accuracy with a rare class. The check speaks for this step's models only: another
model trained on the changed rows can fare otherwise (docs/label-noise.md).

Nested, because the flags of the step's own cross-fit were chosen by models that saw every
other fold: on 2,000 clean SST-2 rows, dropping those flags scored +0.8 points on the same
folds while the drop cost 1.5 points of macro-F1 on the test set. Costs about folds x
(folds + 1) model fits, only for a gated `drop` or `relabel`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import polars as pl

from assay.train import crossfit
from assay.train.bootstrap import CONFIDENCE, Interval, example_weights, resampled_scores

N_RESAMPLES = 1000
# (rows of the other folds, their out-of-fold probabilities) -> the change the step would
# make there: `id`, and `label` (the new label; null where the row is left out).
Select = Callable[[pl.DataFrame, pl.DataFrame], pl.DataFrame]


def held_out_effect(
    rows: pl.DataFrame,
    before: np.ndarray,
    classes: list[str],
    select: Select,
    *,
    models: Sequence[str],
    options: dict[str, dict[str, Any]] | None,
    folds: int,
    seed: int,
    rng: np.random.Generator,
    check: tuple[Sequence[str], dict[str, dict[str, Any]] | None] | None = None,
) -> Interval:
    """The held-out effect of the change against the given labels: of accuracy and of
    macro-F1 (models trained with the change minus without it), the worse, with a paired
    percentile bootstrap interval over rows.

    `rows` has `id`, `text`, `label` and `weight`; `before` is the step's out-of-fold
    probabilities of those rows in `classes` order, cross-fitted with `seed` (so the folds
    here are its folds). `models` choose the change (flag and cap) in each fold; `check`,
    when given, is the (models, options) trained with the change instead, and `before`
    is then theirs."""
    trained, trained_options = check or (models, options)
    labels = rows["label"].to_list()
    fold_of = crossfit.stratified_folds(labels, folds, np.random.default_rng(seed))
    after = np.zeros_like(before)
    for fold in np.unique(fold_of):
        inner = rows.filter(pl.Series(fold_of != fold))
        # A label with fewer rows here than folds is cross-fitted over fewer folds; one
        # with a single row is trained on but not flagged (it cannot be held out).
        counts = inner.group_by("label").len()
        scored = inner.filter(
            pl.col("label").is_in(counts.filter(pl.col("len") >= 2)["label"].implode())
        )
        oof = crossfit.cross_fit(
            scored["text"].to_list(),
            scored["label"].to_list(),
            ids=scored["id"].to_list(),
            folds=max(2, min(folds, int(counts["len"].filter(counts["len"] >= 2).min()))),
            seed=seed + 1 + int(fold),
            model=list(models) if len(models) > 1 else models[0],
            options=options,
            weights=scored["weight"].to_numpy(),
        )
        change = select(scored, oof.to_frame())
        changed = inner.join(change.rename({"label": "_new"}), on="id", how="left")
        acted = changed["id"].is_in(change["id"].implode())
        train = changed.filter(~acted | pl.col("_new").is_not_null()).with_columns(
            label=pl.when(pl.col("_new").is_not_null()).then("_new").otherwise("label")
        )
        held = np.flatnonzero(fold_of == fold)
        texts = [rows["text"][int(i)] for i in held]
        after[held] = _fit_and_score(train, texts, classes, trained, trained_options, seed)
    y = np.array([classes.index(str(v)) for v in labels])
    return worse_effect(y, before.argmax(axis=1), after.argmax(axis=1), len(classes), rng)


def worse_effect(
    y: np.ndarray, before: np.ndarray, after: np.ndarray, k: int, rng: np.random.Generator
) -> Interval:
    """min(accuracy effect, macro-F1 effect) of predictions `after` against `before` on
    labels `y` (class indices < k), with a percentile bootstrap interval over rows (the
    minimum taken in each resample)."""
    estimate = float(_effects(y, before, after, k, np.ones((1, len(y))))[0])
    draws = [
        _effects(y, before, after, k, example_weights(rng, len(y), min(100, N_RESAMPLES - s)))
        for s in range(0, N_RESAMPLES, 100)
    ]
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(np.concatenate(draws), [tail, 100 - tail])
    return Interval(estimate, float(low), float(high))


def _effects(
    y: np.ndarray, before: np.ndarray, after: np.ndarray, k: int, weights: np.ndarray
) -> np.ndarray:
    """Per row of `weights` (a resample's row multiplicities): the worse of the accuracy
    and macro-F1 differences, after minus before."""
    return np.minimum(
        *(
            resampled_scores(y, after, k, weights, metric)
            - resampled_scores(y, before, k, weights, metric)
            for metric in ("accuracy", "macro_f1")
        )
    )


def _fit_and_score(
    train: pl.DataFrame,
    texts: list[str],
    classes: list[str],
    models: Sequence[str],
    options: dict[str, dict[str, Any]] | None,
    seed: int,
) -> np.ndarray:
    """The mean probabilities of `models` fitted on `train`, for `texts`, in `classes` order."""
    out = np.zeros((len(texts), len(classes)))
    for name in models:
        model = crossfit.model_factory(name, (options or {}).get(name))(seed)
        model.fit(train["text"].to_list(), train["label"].to_list(), train["weight"].to_numpy())
        proba = np.asarray(model.predict_proba(texts), dtype=np.float64)
        for j, c in enumerate(model.classes_):
            out[:, classes.index(str(c))] += proba[:, j]
    return out / len(models)
