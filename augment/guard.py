"""The label-preservation guard: drop generated rows whose label no longer holds.

A classifier trained on the original labelled rows (the fast TF-IDF model by default, or
the probe: MiniLM embeddings + logistic regression) scores every generated text; a row is
dropped when the probability of its label falls below `min_confidence`, or (optionally)
falls by more than `max_drop` from its parent's.
Optionally, rows whose sentence embedding drifts too far from the parent's are dropped
too. Every drop keeps its reason and score; kept rows carry their scores as columns.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
from pydantic import Field

from assay import corpus as corpus_mod
from assay.errors import InputError, StepError
from assay.step import StepConfig

log = logging.getLogger(__name__)

REASON_LABEL = "guard_label"
REASON_DROP = "guard_confidence_drop"
REASON_SIMILARITY = "guard_similarity"


class GuardConfig(StepConfig):
    """How generated rows are checked before they join the corpus."""

    model: str = Field(
        "fast",
        description="classifier judging labels, by guard-model name ('fast': TF-IDF + "
        "logistic regression; 'probe': MiniLM embeddings + logistic regression), or 'none' "
        "to check similarity only",
    )
    min_confidence: float = Field(
        0.5, ge=0, le=1, description="drop a row when P(its label) is below this"
    )
    max_drop: float | None = Field(
        None,
        ge=0,
        le=1,
        description="also drop a row when P(label) fell by more than this from its parent's",
    )
    similarity: float | None = Field(
        None,
        ge=-1,
        le=1,
        description="drop a row when the cosine of its sentence embedding to the parent's "
        "is below this (off if unset)",
    )
    encoder: str | None = Field(
        None, description="sentence-embedding model for similarity (packaged MiniLM if unset)"
    )
    folds: int = Field(
        1,
        ge=1,
        description="cross-fitting: score each parent's rows with a model trained on the "
        "other folds of the originals (1: one model on all originals, which has seen the "
        "parents and trusts near-copies of them more)",
    )
    train_splits: list[str] = Field(
        default_factory=lambda: ["train"],
        description="splits whose original labelled rows train the classifier",
    )


# Guard models: name -> factory(seed) returning an object with the FastModel interface
# (fit(texts, labels, weights) -> self, predict_proba(texts), classes_).
GuardModelFactory = Callable[[int], Any]
_MODELS: dict[str, GuardModelFactory] = {}


def register_guard_model(name: str, factory: GuardModelFactory) -> None:
    """Make a classifier available to `guard: {model: <name>}`."""
    _MODELS[name] = factory


def _fast_model(seed: int):
    from assay.train.fast import FastModel

    return FastModel(seed=seed)


def _probe_model(seed: int):
    from assay.train.probe import ProbeModel

    return ProbeModel(seed=seed)


register_guard_model("fast", _fast_model)
register_guard_model("probe", _probe_model)


def guard_model(name: str, seed: int):
    try:
        factory = _MODELS[name]
    except KeyError:
        raise InputError(
            f"unknown guard model {name!r}; expected one of {sorted(_MODELS)} or 'none'"
        ) from None
    return factory(seed)


def _label_probability(proba: np.ndarray, classes: list[str], labels: list[Any]) -> np.ndarray:
    """P(label) per row; for multi-label rows the least probable of their labels."""
    index = {c: i for i, c in enumerate(classes)}
    out = np.full(len(labels), np.nan, dtype=np.float64)
    for r, label in enumerate(labels):
        if label is None:
            continue
        wanted = label if isinstance(label, list) else [label]
        cols = [index[x] for x in wanted if x in index]
        if cols and len(cols) == len(wanted):
            out[r] = float(proba[r, cols].min())
    return out


def check(
    config: GuardConfig,
    corpus: pl.DataFrame,
    parents: pl.DataFrame,
    new: pl.DataFrame,
    seed: int,
    step: str,
    engine: Any = None,
) -> pl.DataFrame:
    """Score generated rows; returns `new` with `<step>__guard_score`,
    `<step>__guard_similarity` and a `_guard_reason` column (null = kept). With an
    `engine`, the models are fitted here and score (and embed) in batches on it."""
    score_col, sim_col = f"{step}__guard_score", f"{step}__guard_similarity"
    parent_map = parents.select(
        pl.col("id").alias("parent_id"),
        pl.col("text").alias("_g_parent_text"),
        pl.col("label").alias("_g_parent_label"),
    )
    frame = new.join(parent_map, on="parent_id", how="left", maintain_order="left")
    if "label" in frame.columns:
        labels = frame.select(pl.coalesce("label", "_g_parent_label")).to_series().to_list()
    else:
        labels = frame["_g_parent_label"].to_list()
    texts = frame["text"].to_list()
    parent_texts = frame["_g_parent_text"].to_list()
    n = frame.height
    score = np.full(n, np.nan)
    parent_score = np.full(n, np.nan)
    similarity = np.full(n, np.nan)
    if config.model != "none" and n:
        parent_ids = frame["parent_id"].to_list()
        score, parent_score = _classify(
            config, corpus, parent_ids, texts, parent_texts, labels, seed, engine
        )
    if config.similarity is not None and n:
        similarity = _similarity(config, texts, parent_texts, engine)
    reason = np.full(n, None, dtype=object)
    with np.errstate(invalid="ignore"):
        low = score < config.min_confidence
        reason[low] = REASON_LABEL
        if config.max_drop is not None:
            fell = (parent_score - score) > config.max_drop
            reason[fell & ~low] = REASON_DROP
        if config.similarity is not None:
            far = (similarity < config.similarity) & (reason == None)  # noqa: E711
            reason[far] = REASON_SIMILARITY
    return frame.drop("_g_parent_text", "_g_parent_label").with_columns(
        pl.Series(score_col, score, dtype=pl.Float32).fill_nan(None),
        pl.Series(sim_col, similarity, dtype=pl.Float32).fill_nan(None),
        pl.Series("_guard_reason", reason.tolist(), dtype=pl.String),
    )


def _classify(
    config: GuardConfig,
    corpus: pl.DataFrame,
    parent_ids: list[str],
    texts: list[str],
    parent_texts: list[str],
    labels: list[Any],
    seed: int,
    engine: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    originals = corpus.filter(
        pl.col("split").is_in(config.train_splits)
        & (pl.col("origin") == corpus_mod.SOURCE_ORIGIN)
        & pl.col("label").is_not_null()
    )
    n_classes = len(corpus_mod.label_set(originals)) if originals.height else 0
    if n_classes < 2:
        raise StepError(
            f"the guard's classifier needs original labelled rows of at least 2 labels in "
            f"splits {config.train_splits}; found {originals.height} rows of {n_classes} "
            f"labels. Label more rows, change guard.train_splits, or set guard.model: none"
        )
    n = len(texts)
    child, parent = np.full(n, np.nan), np.full(n, np.nan)
    # Fold of each generated row = its parent's fold (-1: parent not among the originals,
    # or no cross-fitting: scored by a model trained on every original).
    folds = np.full(n, -1)
    if config.folds > 1:
        # The folds of label_noise's cross-fitting: stratified, so every fold's complement
        # still holds every label.
        from assay.train.crossfit import stratified_folds

        labels_of = originals["label"].to_list()
        fold_col = stratified_folds(labels_of, config.folds, np.random.default_rng(seed))
        fold_of = dict(zip(originals["id"].to_list(), fold_col.tolist(), strict=True))
        folds = np.array([fold_of.get(p, -1) for p in parent_ids])
        originals = originals.with_columns(_fold=pl.Series(fold_col))
    for fold in np.unique(folds):
        train = originals if fold < 0 else originals.filter(pl.col("_fold") != fold)
        rows = np.flatnonzero(folds == fold)
        model = guard_model(config.model, seed)
        model.fit(
            train["text"].to_list(), train["label"].to_list(), weights=train["weight"].to_numpy()
        )
        classes = list(model.classes_)
        some_texts = [texts[i] for i in rows]
        some_parents = [parent_texts[i] for i in rows]
        some_labels = [labels[i] for i in rows]
        # Score children and their parents in one call: one vectorisation pass.
        unique_parents = list(dict.fromkeys(some_parents))
        proba = _predict(model, some_texts + unique_parents, engine)
        child[rows] = _label_probability(proba[: len(rows)], classes, some_labels)
        where = {t: i for i, t in enumerate(unique_parents)}
        parent_proba = proba[len(rows) :][[where[t] for t in some_parents]]
        parent[rows] = _label_probability(parent_proba, classes, some_labels)
        log.info("guard model %s trained on %d original rows", config.model, train.height)
    return child, parent


def _predict(model: Any, texts: list[str], engine: Any) -> np.ndarray:
    """Class probabilities of `texts`; on an engine, in batches (the fitted model travels)."""
    if engine is None:
        return np.asarray(model.predict_proba(texts))
    import functools

    out = engine.map_batches(_numbered(texts), functools.partial(_predict_batch, model=model))
    return _in_order(out, "proba")


def _predict_batch(batch: Any, model: Any) -> Any:
    import pyarrow as pa

    proba = np.asarray(model.predict_proba(batch["text"].to_pylist()))
    return pa.table({"_i": batch["_i"], "proba": pa.array(proba.tolist())})


def _numbered(texts: list[str]) -> Any:
    import pyarrow as pa

    return pa.table({"_i": pa.array(np.arange(len(texts), dtype=np.int64)), "text": texts})


def _in_order(out: Any, column: str) -> np.ndarray:
    return np.asarray(out.sort_by("_i")[column].to_pylist(), dtype=np.float64)


def _encode(encoder: str | None, texts: list[str], engine: Any) -> np.ndarray:
    from assay import embeddings

    return embeddings.embed(texts, encoder, engine=engine, purpose="the guard's similarity check")


def _similarity(
    config: GuardConfig, texts: list[str], parent_texts: list[str], engine: Any = None
) -> np.ndarray:
    unique_parents = list(dict.fromkeys(parent_texts))
    emb = _encode(config.encoder, texts + unique_parents, engine)
    where = {t: i for i, t in enumerate(unique_parents)}
    parent_emb = emb[len(texts) :][[where[t] for t in parent_texts]]
    return np.einsum("ij,ij->i", emb[: len(texts)], parent_emb)
