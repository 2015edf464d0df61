"""Cross-fitting: out-of-fold class probabilities for every row of a fit set.

The rows are split into K stratified folds; for each fold a fresh model is trained on the
other K-1 folds and scores the held-out fold, so no row is ever scored by a model that saw
it, and no model sees a row outside the fit set passed in (the caller leaves dev and test
out). The models are the fast model (`"fast"`), the probe (`"probe"`: frozen sentence
embeddings + logistic regression; its folds embed each row once between them), an encoder
fine-tuned by the fine-tune loop (its name or path), or several of them, whose probabilities
are averaged (an ensemble).

Fold assignment:
- single-label: within each label the rows are shuffled and dealt round-robin, so every
  fold holds about 1/K of every label and every training complement holds them all;
- multi-label: iterative stratification (Sechidis et al. 2011: the rarest label's rows are
  placed first, each into the fold that still wants most of that label), or `"first"`:
  single-label stratification on each row's first label.

`stratified_folds` and `fold_models` are the pieces other cross-fitted checks reuse (they
score rows of their own with each fold's model); `cross_fit` is the whole loop. Given an
engine other than the local one, `cross_fit` fits the (model, fold) pairs as its tasks (on
Ray, an actor pool that receives the rows once per actor; GPUs per actor as the engine
says); each fold's model is the same as in-process, so are the probabilities.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from assay.errors import InputError
from assay.progress import Progress, SilentProgress

log = logging.getLogger(__name__)

FAST = "fast"
DEFAULT_FOLDS = 5
MULTILABEL_SPLITS = ("iterative", "first")

# seed -> an unfitted model with fit(texts, labels, weights) -> self, predict_proba(texts)
# and classes_ (the FastModel / EncoderModel interface).
ModelFactory = Callable[[int], Any]
Seed = int | np.random.Generator


@dataclasses.dataclass
class OutOfFold:
    """Out-of-fold probabilities, one row per fit row, columns in `classes` order."""

    ids: list[str]
    classes: list[str]
    proba: np.ndarray  # (n, n_classes); per-label probabilities when multilabel
    folds: np.ndarray  # fold of each row (the model that scored it never saw that fold)
    multilabel: bool
    models: list[str]

    def to_frame(self) -> pl.DataFrame:
        """`id` and one float column per label, named by the label."""
        return pl.DataFrame(
            {"id": self.ids, **{c: self.proba[:, j] for j, c in enumerate(self.classes)}}
        )


def _seeds(seed: Seed) -> tuple[np.random.Generator, int]:
    """A Generator for the fold split and an int seed for the models, from one seed."""
    if isinstance(seed, np.random.Generator):
        return seed, int(seed.integers(2**31 - 1))
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return np.random.default_rng(int(seed)), int(seed)
    raise InputError(f"cross-fitting needs an int seed or a numpy Generator; got {seed!r}")


def _is_multilabel(labels: Sequence[Any]) -> bool:
    return bool(labels) and isinstance(labels[0], (list, tuple, np.ndarray))


def _label_matrix(labels: Sequence[Any]) -> tuple[list[str], np.ndarray]:
    classes = sorted({str(x) for lab in labels for x in lab})
    index = {c: j for j, c in enumerate(classes)}
    y = np.zeros((len(labels), len(classes)), dtype=np.int8)
    for i, lab in enumerate(labels):
        for x in lab:
            y[i, index[str(x)]] = 1
    return classes, y


def _check_counts(names: Sequence[str], counts: np.ndarray, k: int) -> None:
    if k < 2:
        raise InputError(f"cross-fitting needs at least 2 folds; got folds={k}")
    if len(counts) == 0:
        raise InputError("cross-fitting got no labelled rows")
    smallest = int(np.argmin(counts))
    name = str(names[smallest])
    if counts[smallest] < k:
        raise InputError(
            f"cross-fitting with {k} folds needs at least {k} rows of every label; label "
            f"{name!r} has {int(counts[smallest])}: pass folds <= "
            f"{max(int(counts[smallest]), 2)} or label more rows of {name!r}"
        )


def stratified_folds(
    labels: Sequence[Any],
    folds: int = DEFAULT_FOLDS,
    seed: Seed = 0,
    *,
    multilabel_split: str = "iterative",
) -> np.ndarray:
    """Fold index (0..folds-1) of each row, stratified by label.

    Raises InputError when a label has fewer rows than folds (some training complement or
    held-out fold would lack it)."""
    rng = seed if isinstance(seed, np.random.Generator) else _seeds(seed)[0]
    labels = list(labels)
    if any(lab is None for lab in labels):
        raise InputError("cross-fitting got null labels; drop unlabelled rows first")
    if not _is_multilabel(labels):
        names, strata = np.unique([str(x) for x in labels], return_inverse=True)
        _check_counts(list(names), np.bincount(strata, minlength=len(names)), folds)
        return _deal(strata, folds, rng)
    if multilabel_split not in MULTILABEL_SPLITS:
        raise InputError(
            f"multilabel_split must be one of {list(MULTILABEL_SPLITS)}; got {multilabel_split!r}"
        )
    classes, y = _label_matrix(labels)
    _check_counts(classes, y.sum(axis=0), folds)
    if multilabel_split == "first":
        first = [str(lab[0]) if len(lab) else "" for lab in labels]
        return _deal(np.unique(first, return_inverse=True)[1], folds, rng)
    return _iterative(y, folds, rng)


def _deal(strata: np.ndarray, folds: int, rng: np.random.Generator) -> np.ndarray:
    # Rows sorted by stratum (random order within), then dealt 0, 1, ..., K-1, 0, ...: every
    # fold gets floor or ceil of 1/K of each stratum.
    order = np.lexsort((rng.permutation(len(strata)), strata))
    out = np.empty(len(strata), dtype=np.int64)
    out[order] = np.arange(len(strata)) % folds
    return out


def _iterative(y: np.ndarray, folds: int, rng: np.random.Generator) -> np.ndarray:
    """Iterative stratification (Sechidis, Tsoumakas and Vlahavas 2011)."""
    n, _n_labels = y.shape
    want_rows = np.full(folds, n / folds)
    want = np.tile(y.sum(axis=0) / folds, (folds, 1)).astype(np.float64)
    out = np.full(n, -1, dtype=np.int64)
    left = y.astype(bool).copy()
    while left.any():
        remaining = left.sum(axis=0)
        label = int(np.argmin(np.where(remaining > 0, remaining, np.iinfo(np.int64).max)))
        rows = rng.permutation(np.flatnonzero(left[:, label]))
        for row in rows:
            # Most wanted fold for this label, then most wanted overall, then at random.
            keys = np.lexsort((rng.random(folds), -want_rows, -want[:, label]))
            fold = int(keys[0])
            out[row] = fold
            want[fold] -= y[row]
            want_rows[fold] -= 1
            left[row] = False
    for row in rng.permutation(np.flatnonzero(out < 0)):  # rows without any label
        fold = int(np.lexsort((rng.random(folds), -want_rows))[0])
        out[row] = fold
        want_rows[fold] -= 1
    return out


def model_factory(
    model: str, options: Mapping[str, Any] | None = None, progress: Progress | None = None
) -> ModelFactory:
    """A factory for `"fast"`, `"probe"` or an encoder (name or path) through the training
    entry point."""
    from assay.train.evaluate import make_model

    opts = dict(options or {})
    return lambda seed: make_model(model, seed, opts, progress)


def fold_models(
    texts: Sequence[str],
    labels: Sequence[Any],
    fold_of: np.ndarray,
    factory: ModelFactory,
    seed: int,
    weights: np.ndarray | None = None,
) -> Iterator[tuple[int, Any]]:
    """For each fold, a model fitted on the rows of every other fold: (fold, model)."""
    texts, labels = list(texts), list(labels)
    for fold in np.unique(fold_of):
        yield (
            int(fold),
            _fit(texts, labels, np.flatnonzero(fold_of != fold), factory, seed, weights),
        )


def _fit(
    texts: list[str],
    labels: list[Any],
    rows: np.ndarray,
    factory: ModelFactory,
    seed: int,
    weights: np.ndarray | None,
) -> Any:
    model = factory(seed)
    model.fit(
        [texts[i] for i in rows],
        [labels[i] for i in rows],
        None if weights is None else weights[rows],
    )
    log.debug("model fitted on %d rows", len(rows))
    return model


def _fold_proba(
    texts: list[str],
    labels: list[Any],
    fold_of: np.ndarray,
    fold: int,
    make: ModelFactory,
    seed: int,
    weights: np.ndarray | None,
    classes: list[str],
) -> tuple[np.ndarray, np.ndarray]:
    """(held-out rows, their probabilities in `classes` order) of one fold's model."""
    fitted = _fit(texts, labels, np.flatnonzero(fold_of != fold), make, seed, weights)
    held = np.flatnonzero(fold_of == fold)
    scored = fitted.predict_proba([texts[i] for i in held])
    return held, _aligned(np.asarray(scored, np.float64), fitted.classes_, classes)


class FoldFits:
    """Fits fold models and scores their held-out rows: an engine's callable class over
    (model, fold) tasks, built once per actor with the rows."""

    def __init__(
        self,
        texts: list[str],
        labels: list[Any],
        fold_of: np.ndarray,
        makers: list[ModelFactory],
        seed: int,
        weights: np.ndarray | None,
        classes: list[str],
    ) -> None:
        self.args = (texts, labels, fold_of)
        self.makers, self.seed, self.weights, self.classes = makers, seed, weights, classes

    def __call__(self, batch: Any) -> Any:
        import pickle

        import pyarrow as pa

        models, folds = batch["model"].to_pylist(), batch["fold"].to_pylist()
        answers = [
            pickle.dumps(
                _fold_proba(*self.args, f, self.makers[m], self.seed, self.weights, self.classes)
            )
            for m, f in zip(models, folds, strict=True)
        ]
        return pa.table(
            {
                "model": pa.array(models, pa.int64()),
                "fold": pa.array(folds, pa.int64()),
                "answer": pa.array(answers, pa.large_binary()),
            }
        )


def _fits_on(engine: Any, fit_args: tuple, n_models: int, folds: np.ndarray) -> list[tuple]:
    """Every (model, fold) on the engine, one task each (a `FoldFits` built from
    `fit_args`): (held, proba) per task, in (model, fold) order so sums add up alike."""
    import pickle

    import pyarrow as pa

    pairs = [(m, int(f)) for m in range(n_models) for f in folds]
    tasks = pa.table(
        {"model": [m for m, _ in pairs], "fold": [f for _, f in pairs]},
        schema=pa.schema([("model", pa.int64()), ("fold", pa.int64())]),
    )
    out = engine.map_batches(
        tasks,
        FoldFits,
        fn_args=fit_args,
        batch_size=1,
        concurrency=min(len(pairs), getattr(engine, "actors", None) or len(pairs)),
        num_gpus=getattr(engine, "gpus_per_actor", None),
    )
    answers = out.sort_by([("model", "ascending"), ("fold", "ascending")])["answer"]
    return [pickle.loads(a) for a in answers.to_pylist()]


def _aligned(proba: np.ndarray, model_classes: Sequence[str], classes: list[str]) -> np.ndarray:
    out = np.zeros((proba.shape[0], len(classes)))
    index = {c: j for j, c in enumerate(classes)}
    for j, c in enumerate(model_classes):
        out[:, index[str(c)]] = proba[:, j]
    return out


def cross_fit(
    texts: Sequence[str],
    labels: Sequence[Any],
    *,
    ids: Sequence[str] | None = None,
    folds: int = DEFAULT_FOLDS,
    seed: Seed = 0,
    model: str | Sequence[str] = FAST,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    weights: Sequence[float] | np.ndarray | None = None,
    factory: ModelFactory | None = None,
    multilabel_split: str = "iterative",
    progress: Progress | None = None,
    engine: Any = None,
) -> OutOfFold:
    """Out-of-fold probabilities of every row, from models that never saw it.

    `model` is `"fast"`, `"probe"`, an encoder name or path, or a list of them (probabilities
    averaged); `options` maps a model name to its options. A `factory(seed)` replaces
    `model` with any object of the FastModel interface."""
    texts, labels = list(texts), list(labels)
    if len(texts) != len(labels):
        raise InputError(f"cross-fitting got {len(texts)} texts but {len(labels)} labels")
    ids = [str(i) for i in ids] if ids is not None else [str(i) for i in range(len(texts))]
    if len(ids) != len(texts):
        raise InputError(f"cross-fitting got {len(ids)} ids for {len(texts)} texts")
    if len(set(ids)) != len(ids):
        raise InputError("cross-fitting needs unique ids; found duplicates")
    w = None
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64)
        w = None if np.allclose(w, 1.0) else w
    rng, model_seed = _seeds(seed)
    fold_of = stratified_folds(labels, folds, rng, multilabel_split=multilabel_split)
    multilabel = _is_multilabel(labels)
    classes = _label_matrix(labels)[0] if multilabel else sorted({str(x) for x in labels})
    if factory is not None:
        factories = [("custom", factory)]
    else:
        names = [model] if isinstance(model, str) else list(model)
        if not names:
            raise InputError("cross-fitting needs at least one model; got an empty list")
        opts = options or {}
        unknown = sorted(set(opts) - set(names))
        if unknown:
            raise InputError(
                f"options given for models {unknown} that are not cross-fitted; "
                f"the models are {names}"
            )
        # Progress bars stay in this process: models fitted on an engine get none.
        shown = progress if engine is None or engine.name == "local" else None
        factories = [(name, model_factory(name, opts.get(name), shown)) for name in names]
    proba = np.zeros((len(texts), len(classes)))
    if engine is not None and engine.name != "local":
        makers = [make for _, make in factories]
        fit_args = (texts, labels, fold_of, makers, model_seed, w, classes)
        for held, scored in _fits_on(engine, fit_args, len(makers), np.unique(fold_of)):
            proba[held] += scored
        log.info("cross-fitted %d models x %d folds on %s", len(makers), folds, engine.name)
    else:
        progress = progress or SilentProgress()
        with progress.task("cross-fitting", total=folds * len(factories)) as task:
            for name, make in factories:
                for fold in np.unique(fold_of):
                    held, scored = _fold_proba(
                        texts, labels, fold_of, int(fold), make, model_seed, w, classes
                    )
                    proba[held] += scored
                    task.advance()
                log.info("cross-fitted %s: %d rows, %d folds", name, len(texts), folds)
    proba /= len(factories)
    return OutOfFold(
        ids=ids,
        classes=classes,
        proba=proba,
        folds=fold_of,
        multilabel=multilabel,
        models=[name for name, _ in factories],
    )


def cross_fit_corpus(
    corpus: pl.DataFrame, *, splits: Sequence[str] = ("train",), **kwargs: Any
) -> OutOfFold:
    """`cross_fit` over a corpus's labelled rows of `splits` (dev and test stay out by
    default), weighted by its `weight` column."""
    rows = corpus.filter(pl.col("split").is_in(list(splits)) & pl.col("label").is_not_null())
    if rows.height == 0:
        raise InputError(
            f"the corpus has no labelled rows in splits {list(splits)} to cross-fit on; "
            "add a split step or pass other splits"
        )
    weights = rows["weight"].to_numpy() if "weight" in rows.columns else None
    return cross_fit(
        rows["text"].to_list(),
        rows["label"].to_list(),
        ids=rows["id"].to_list(),
        weights=weights,
        **kwargs,
    )
