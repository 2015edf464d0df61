"""Active learning: which unlabelled rows to label next, and why.

Strategies over an unlabelled pool, given the labelled rows and a seeded generator:

- `random`: a uniform sample;
- `uncertainty`: the rows a model is least sure of (`entropy`, `margin` or
  `least_confidence` of its class probabilities);
- `diversity`: k-center greedy on sentence embeddings, starting from the labelled rows as
  centres, so the batch covers the regions the labels do not;
- `hybrid`: the `candidates` most uncertain rows, then k-center greedy among them.

With too few labels to trust a model (`cold_start`: fewer than `min_per_class` labels of
some class or fewer than `min_labels` in all), model-based strategies fall back to
`cold_strategy`: random by default (on TREC and SST-2 k-center picks outliers and learns
slower than random from 50 labels, see bench/active_learning.py), or diversity. `overlap` marks the k most uncertain
chosen rows for two annotators. Every chosen row carries its strategy, score and rank.

The model's probabilities and the embeddings are inputs (arrays in pool order), so this
module trains nothing itself; `pool_probabilities` and `assay.embedding_cache` compute them.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from assay.errors import InputError

log = logging.getLogger(__name__)

RANDOM = "random"
UNCERTAINTY = "uncertainty"
DIVERSITY = "diversity"
HYBRID = "hybrid"
STRATEGIES = (RANDOM, UNCERTAINTY, DIVERSITY, HYBRID)
MEASURES = ("entropy", "margin", "least_confidence")
MIN_LABELS = 20
MIN_PER_CLASS = 2
CANDIDATES_PER_ROW = 5  # hybrid: uncertain candidates per batch row


@dataclasses.dataclass(frozen=True)
class Selection:
    """The chosen pool rows in rank order, with the reason each was chosen."""

    ids: list[str]
    strategy: str  # the strategy that ran (after a cold-start fallback)
    requested: str  # the strategy asked for
    scores: np.ndarray  # uncertainty, distance to the nearest centre, or NaN for random
    overlap: np.ndarray  # bool: the row goes to two annotators
    cold_start: bool = False

    def to_frame(self) -> pl.DataFrame:
        """id, strategy, score, rank (1 = first chosen), overlap."""
        return pl.DataFrame(
            {
                "id": self.ids,
                "strategy": [self.strategy] * len(self.ids),
                "score": pl.Series(self.scores, dtype=pl.Float64).fill_nan(None),
                "rank": np.arange(1, len(self.ids) + 1, dtype=np.int64),
                "overlap": self.overlap.astype(bool),
            },
            schema={
                "id": pl.String,
                "strategy": pl.String,
                "score": pl.Float64,
                "rank": pl.Int64,
                "overlap": pl.Boolean,
            },
        )


# -- scores -----------------------------------------------------------------------------------


def uncertainty(proba: np.ndarray, measure: str = "entropy") -> np.ndarray:
    """How unsure a model is of each row (higher = less sure), from probabilities (n, k)."""
    if measure not in MEASURES:
        raise InputError(f"unknown uncertainty measure {measure!r}; expected one of {MEASURES}")
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise InputError(f"expected probabilities of shape (rows, classes>=2), got {p.shape}")
    if measure == "entropy":
        safe = np.clip(p, 1e-12, 1.0)
        return -(p * np.log(safe)).sum(axis=1)
    if measure == "least_confidence":
        return 1.0 - p.max(axis=1)
    top2 = -np.partition(-p, 1, axis=1)[:, :2]
    return 1.0 - (top2[:, 0] - top2[:, 1])


def k_center_greedy(
    vectors: np.ndarray,
    k: int,
    *,
    centers: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(indices, distances): k rows of `vectors`, each the farthest from the chosen so far.

    `centers` (m, d) are points already covered (the labelled rows). Without them the first
    pick is random (`rng`) among the rows. Distances are Euclidean, at the time of the pick.
    """
    x = np.asarray(vectors, dtype=np.float32)
    n = x.shape[0]
    k = min(int(k), n)
    if k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    sq = (x * x).sum(axis=1)
    nearest = np.full(n, np.inf)
    if centers is not None and len(centers):
        c = np.asarray(centers, dtype=np.float32)
        csq = (c * c).sum(axis=1)
        for start in range(0, len(c), 2048):
            block = c[start : start + 2048]
            d2 = sq[:, None] + csq[None, start : start + 2048] - 2.0 * x @ block.T
            nearest = np.minimum(nearest, d2.min(axis=1))
    chosen = np.empty(k, dtype=np.int64)
    dist = np.empty(k)
    for i in range(k):
        if np.isinf(nearest).all():
            if rng is None:
                raise InputError("k-center greedy without centres needs a random generator")
            j = int(rng.integers(n))
            dist[i] = np.nan
        else:
            j = int(np.argmax(nearest))
            dist[i] = float(np.sqrt(max(nearest[j], 0.0)))
        chosen[i] = j
        d2 = sq + sq[j] - 2.0 * (x @ x[j])
        nearest = np.minimum(nearest, d2)
        nearest[j] = -np.inf  # never chosen twice
    return chosen, dist


def cold_start(
    labels: Sequence[Any],
    classes: Sequence[str] | None = None,
    *,
    min_labels: int = MIN_LABELS,
    min_per_class: int = MIN_PER_CLASS,
) -> bool:
    """True when the labelled rows are too few to trust a model trained on them."""
    flat = [x for lab in labels for x in (lab if isinstance(lab, (list, tuple)) else [lab])]
    if len(labels) < min_labels:
        return True
    counts = Counter(flat)
    wanted = list(classes) if classes is not None else list(counts)
    return len(counts) < 2 or any(counts.get(c, 0) < min_per_class for c in wanted)


# -- selection --------------------------------------------------------------------------------


def select(
    pool_ids: Sequence[str],
    batch: int,
    strategy: str,
    rng: np.random.Generator,
    *,
    labels: Sequence[Any] = (),
    classes: Sequence[str] | None = None,
    proba: np.ndarray | None = None,
    pool_vectors: np.ndarray | None = None,
    labelled_vectors: np.ndarray | None = None,
    measure: str = "entropy",
    candidates: int | None = None,
    overlap: int = 0,
    min_labels: int = MIN_LABELS,
    min_per_class: int = MIN_PER_CLASS,
    cold_strategy: str = RANDOM,
) -> Selection:
    """Choose `batch` rows of the pool (`pool_ids`, arrays in the same order).

    `labels` are the labelled rows' labels (for the cold-start rule); `proba` the model's
    probabilities on the pool (uncertainty, hybrid, overlap); `pool_vectors` and
    `labelled_vectors` sentence embeddings (diversity, hybrid).
    """
    if strategy not in STRATEGIES:
        raise InputError(f"unknown selection strategy {strategy!r}; expected one of {STRATEGIES}")
    if cold_strategy not in (RANDOM, DIVERSITY):
        raise InputError(
            f"the cold-start strategy must be random or diversity, got {cold_strategy!r}"
        )
    if batch < 1:
        raise InputError(f"the batch size must be >= 1, got {batch}")
    if overlap < 0:
        raise InputError(f"overlap must be >= 0 rows, got {overlap}")
    ids = list(pool_ids)
    n = len(ids)
    _check_rows("proba", proba, n)
    _check_rows("pool_vectors", pool_vectors, n)
    ran = strategy
    cold = strategy in (UNCERTAINTY, HYBRID) and cold_start(
        labels, classes, min_labels=min_labels, min_per_class=min_per_class
    )
    if cold:
        ran = DIVERSITY if cold_strategy == DIVERSITY and pool_vectors is not None else RANDOM
        log.info("cold start (%d labels): %s instead of %s", len(labels), ran, strategy)
    if ran in (UNCERTAINTY, HYBRID) and proba is None:
        raise InputError(f"the {ran} strategy needs the model's probabilities on the pool")
    if ran in (DIVERSITY, HYBRID) and pool_vectors is None:
        raise InputError(f"the {ran} strategy needs sentence embeddings of the pool")
    k = min(batch, n)
    unc = uncertainty(proba, measure) if proba is not None and not cold else None
    if ran == RANDOM:
        order = rng.permutation(n)[:k]
        scores = np.full(k, np.nan)
    elif ran == UNCERTAINTY:
        # Stable sort on -score with a random tie-break: same seed, same pick.
        tie = rng.random(n)
        order = np.lexsort((tie, -unc))[:k]
        scores = unc[order]
    elif ran == DIVERSITY:
        order, scores = k_center_greedy(pool_vectors, k, centers=labelled_vectors, rng=rng)
    else:
        m = min(n, candidates or CANDIDATES_PER_ROW * k)
        tie = rng.random(n)
        top = np.lexsort((tie, -unc))[:m]
        picked, _ = k_center_greedy(pool_vectors[top], k, centers=labelled_vectors, rng=rng)
        order = top[picked]
        scores = unc[order]
    flags = np.zeros(len(order), dtype=bool)
    if overlap and len(order):
        basis = unc[order] if unc is not None else np.nan_to_num(scores, nan=0.0)
        flags[np.argsort(-basis, kind="stable")[: min(overlap, len(order))]] = True
    return Selection(
        ids=[ids[i] for i in order],
        strategy=ran,
        requested=strategy,
        scores=np.asarray(scores, dtype=np.float64),
        overlap=flags,
        cold_start=cold,
    )


def _check_rows(name: str, array: np.ndarray | None, n: int) -> None:
    if array is not None and len(array) != n:
        raise InputError(f"{name} has {len(array)} rows but the pool has {n}")


# -- inputs: model probabilities and embeddings -----------------------------------------------


def pool_probabilities(
    texts: Sequence[str],
    labels: Sequence[Any],
    pool_texts: Sequence[str],
    *,
    model: str = "fast",
    seed: int = 0,
    options: dict[str, Any] | None = None,
) -> tuple[np.ndarray, list[str], Any]:
    """(probabilities on the pool, classes, the fitted model) of `model` (fast, probe, or an
    encoder name or path) trained on the labels."""
    from assay.train.evaluate import make_model

    est = make_model(model, seed, dict(options or {}), None)
    est.fit(list(texts), list(labels))
    proba = est.predict_proba(list(pool_texts)) if len(pool_texts) else np.zeros((0, 2))
    return np.asarray(proba), list(est.classes_), est
