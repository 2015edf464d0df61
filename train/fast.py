"""The fast model: TF-IDF word and character n-grams + logistic regression.

Trains on 10k short texts in seconds on a laptop CPU. Used for quick ablations, the
label-noise cross-validation and the augmentation guard; it has the same outputs as the
fine-tune loop (class probabilities in `classes_` order).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from assay.errors import InputError, require

log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "word_ngrams": (1, 2),
    "char_ngrams": (3, 5),
    "min_df": 1,
    "max_features": 200_000,
    "sublinear_tf": True,
    "C": 4.0,
    "class_weight": None,  # or "balanced"
    "max_iter": 1000,
    "threshold": 0.5,  # multi-label decision threshold
}


class EstimatorProtocol:
    """scikit-learn's estimator conventions for a text classifier: `get_params`,
    `set_params`, classifier tags, `score`, a repr of the changed params, `classes_` set by
    fit only, so `clone`, `cross_val_predict`, grid search, calibration and
    `check_is_fitted` work. scikit-learn is imported only when it is asked for."""

    _estimator_type = "classifier"  # scikit-learn < 1.6 reads this

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        raise NotImplementedError

    def set_params(self, **params: Any) -> Any:
        raise NotImplementedError

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags

        return Tags(
            estimator_type="classifier",
            target_tags=TargetTags(required=True),
            classifier_tags=ClassifierTags(),
            input_tags=InputTags(one_d_array=True, two_d_array=False, string=True),
        )

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "classes_")  # set by fit only

    def _param_defaults(self) -> dict[str, Any]:
        """Each param's default, so the repr shows only what was changed."""
        raise NotImplementedError

    def __repr__(self) -> str:
        defaults = self._param_defaults()
        changed = [
            f"{name}={value!r}"
            for name, value in self.get_params(deep=False).items()
            if name not in defaults or not _equal(defaults[name], value)
        ]
        return f"{type(self).__name__}({', '.join(changed)})"

    def _repr_html_(self) -> str:
        """The diagram notebooks show for scikit-learn estimators."""
        from sklearn.utils import estimator_html_repr

        return estimator_html_repr(self)

    def score(self, X: Sequence[str], y: Sequence[Any]) -> float:
        """Accuracy (exact match for multi-label), as scikit-learn classifiers score."""
        pred = self.predict(X)  # type: ignore[attr-defined]
        truth = list(y)
        return float(np.mean([_same(p, t) for p, t in zip(pred, truth, strict=True)]))


def not_fitted(model: str) -> InputError:
    """The error for predicting before fit: an InputError, as every assay input error, and
    scikit-learn's NotFittedError, which its tools and users catch."""
    return _not_fitted_type()(f"this {model} is not fitted yet: call fit(texts, labels) first")


@functools.cache
def _not_fitted_type() -> type[InputError]:
    try:
        from sklearn.exceptions import NotFittedError
    except ImportError:  # without scikit-learn nothing expects its type
        return InputError
    return type("NotFittedError", (InputError, NotFittedError), {"__module__": __name__})


def __getattr__(name: str) -> Any:
    # Built on first use (scikit-learn loads lazily); named here so the error pickles.
    if name == "NotFittedError":
        return _not_fitted_type()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _same(pred: Any, truth: Any) -> bool:
    if isinstance(pred, list):
        return sorted(map(str, pred)) == sorted(map(str, truth))
    return pred == truth


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # values without a plain truth value (arrays)
        return a is b


def class_array(values: Sequence[Any]) -> np.ndarray:
    """The classes as scikit-learn keeps them: a 1-d array whose items compare equal to the
    labels given to fit. Strings (and mixed types) go in an object array, so its items are
    plain `str` and read back as the strings assay compares; numbers keep their dtype."""
    values = list(values)
    if values and len({type(v) for v in values}) == 1 and not isinstance(values[0], str):
        return np.asarray(values)
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def fit_classes(labels: list[Any]) -> tuple[list[str], list[str], np.ndarray]:
    """(each label as a string, the class names as strings, `classes_`).

    The models train on string keys. Strings stay as they are (classes sorted). Other
    scalars, such as the integers scikit-learn's scorers and `cross_val_predict` pass, are
    ordered by value and kept in their own type in `classes_`, so probability columns
    follow the order scikit-learn expects and `classes_[i]` is a label of the input's type.
    """
    if all(isinstance(x, str) for x in labels):
        names = sorted(set(map(str, labels)))
        return [str(x) for x in labels], names, class_array(names)
    values = [x.item() if isinstance(x, np.generic) else x for x in labels]
    native = {str(v): v for v in values}
    try:
        names = sorted(native, key=native.__getitem__)
    except TypeError:  # mixed types: plain string order
        names = sorted(native)
    return [str(v) for v in values], names, class_array([native[n] for n in names])


def fit_inputs(
    model: str, texts: Sequence[str], labels: Sequence[Any], weights: Any
) -> tuple[list[str], list[Any], np.ndarray | None]:
    """(texts, labels, float64 sample weights or None), checked for `model`.fit."""
    texts, labels = list(texts), list(labels)
    if len(texts) != len(labels):
        raise InputError(f"{model}.fit got {len(texts)} texts but {len(labels)} labels")
    if not texts:
        raise InputError(f"{model}.fit got no training examples")
    if any(lab is None for lab in labels):
        raise InputError(f"{model}.fit got null labels; drop unlabelled rows first")
    if weights is None:
        return texts, labels, None
    sample_weight = np.asarray(weights, dtype=np.float64)
    if sample_weight.shape != (len(texts),):
        raise InputError(f"{model}.fit got {sample_weight.size} weights for {len(texts)} texts")
    return texts, labels, sample_weight


def fit_one_vs_rest(
    features: Any,
    labels: Sequence[Sequence[Any]],
    make_classifier: Callable[[], Any],
    sample_weight: np.ndarray | None = None,
) -> tuple[np.ndarray, list[Any]]:
    """Multi-label: (the classes as strings, one binary classifier per class, or the
    constant 0.0/1.0 where every row has or lacks that class)."""
    classes = class_array(sorted({str(x) for lab in labels for x in lab}))
    index = {c: i for i, c in enumerate(classes)}
    y = np.zeros((len(labels), len(classes)), dtype=np.int8)
    for row, lab in enumerate(labels):
        for x in lab:
            y[row, index[str(x)]] = 1
    models: list[Any] = []
    for j in range(len(classes)):
        column = y[:, j]
        if column.min() == column.max():
            models.append(float(column[0]))  # constant: always or never this label
        else:
            models.append(make_classifier().fit(features, column, sample_weight=sample_weight))
    return classes, models


def one_vs_rest_proba(models: list[Any], features: Any) -> np.ndarray:
    """P(class) per row and class from `fit_one_vs_rest`'s classifiers."""
    out = np.empty((features.shape[0], len(models)))
    for j, model in enumerate(models):
        out[:, j] = model if isinstance(model, float) else model.predict_proba(features)[:, 1]
    return out


class FastModel(EstimatorProtocol):
    """TF-IDF (word + char n-grams) and logistic regression, with sample weights.

    `labels` are strings (single-label) or lists of strings (multi-label: one binary
    classifier per label, `predict` returns lists). Options override `DEFAULTS`.
    """

    def __init__(self, seed: int = 0, **options: Any) -> None:
        unknown = sorted(set(options) - set(DEFAULTS))
        if unknown:
            raise InputError(
                f"FastModel got unknown options {unknown}; expected some of {sorted(DEFAULTS)}"
            )
        self.seed = seed
        self.options = {**DEFAULTS, **options}
        # classes_ is set by fit only: scikit-learn's check_is_fitted looks for it.
        self.multilabel = False
        self._vectorizer = None
        self._model = None

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"seed": self.seed, **self.options}

    def set_params(self, **params: Any) -> FastModel:
        unknown = sorted(set(params) - set(DEFAULTS) - {"seed"})
        if unknown:
            raise InputError(
                f"FastModel got unknown options {unknown}; expected some of "
                f"{sorted([*DEFAULTS, 'seed'])}"
            )
        self.seed = params.pop("seed", self.seed)
        self.options = {**self.options, **params}
        return self

    def _param_defaults(self) -> dict[str, Any]:
        return {"seed": 0, **DEFAULTS}

    # -- fitting ----------------------------------------------------------------------------

    def _make_vectorizer(self):
        from assay.train.features import HashedTfidf, NgramTfidf

        o = self.options
        common = {
            "min_df": o["min_df"],
            "max_features": o["max_features"],
            "sublinear_tf": o["sublinear_tf"],
        }
        blocks = []
        if o["word_ngrams"]:
            blocks.append(HashedTfidf("word", tuple(o["word_ngrams"]), **common))
        if o["char_ngrams"]:
            blocks.append(HashedTfidf("char", tuple(o["char_ngrams"]), **common))
        if not blocks:
            raise InputError("FastModel needs word_ngrams or char_ngrams; both are disabled")
        return NgramTfidf(blocks)

    def _make_classifier(self):
        require("sklearn", "train", "the fast model")
        from sklearn.linear_model import LogisticRegression

        o = self.options
        return LogisticRegression(
            C=o["C"],
            class_weight=o["class_weight"],
            max_iter=o["max_iter"],
            # Newton-CG: 3-4x faster than lbfgs on these wide sparse problems, same optimum.
            solver="newton-cg",
            random_state=self.seed,
        )

    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[Any],
        weights: Sequence[float] | np.ndarray | None = None,
        *,
        sample_weight: Sequence[float] | np.ndarray | None = None,
    ) -> FastModel:
        weights = sample_weight if weights is None else weights  # scikit-learn's name
        texts, labels, sample_weight = fit_inputs("FastModel", texts, labels, weights)
        self.multilabel = isinstance(labels[0], (list, tuple))
        self._vectorizer = self._make_vectorizer()
        features = self._vectorizer.fit_transform(texts)
        if self.multilabel:
            self._fit_multilabel(features, labels, sample_weight)
        else:
            keys, names, classes = fit_classes(labels)
            if len(names) < 2:
                raise InputError(
                    f"FastModel needs at least two classes to train; found only {names}"
                )
            index = {c: i for i, c in enumerate(names)}
            y = np.array([index[k] for k in keys])
            self._model = self._make_classifier().fit(features, y, sample_weight=sample_weight)
            self.classes_ = classes
        log.debug("fast model fitted on %d texts, %d features", len(texts), features.shape[1])
        return self

    def _fit_multilabel(self, features, labels, sample_weight) -> None:
        self.classes_, self._model = fit_one_vs_rest(
            features, labels, self._make_classifier, sample_weight
        )

    # -- prediction -------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if self._model is None:
            raise not_fitted("FastModel")

    def features(self, texts: Sequence[str]) -> Any:
        """The sparse TF-IDF matrix (texts x features) the fitted classifier reads."""
        self._check_fitted()
        return self._vectorizer.transform(list(texts))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities, shape (n, n_classes), columns in `classes_` order."""
        features = self.features(texts)
        if not self.multilabel:
            return self._model.predict_proba(features)
        return one_vs_rest_proba(self._model, features)

    def word_weights(self) -> tuple[Any, np.ndarray]:
        """(the fitted word n-gram TF-IDF block, its weights towards each class), the weights
        of shape (classes, the block's features) in `classes_` order. A binary model's one
        coefficient row is given as its two opposite rows."""
        self._check_fitted()
        offset, block = 0, None
        for candidate in self._vectorizer.blocks:
            if candidate.kind == "word":
                block = candidate
                break
            offset += len(candidate.vocabulary_)
        if block is None:
            raise InputError("the fast model has no word n-gram features to name (word_ngrams off)")
        columns = slice(offset, offset + len(block.vocabulary_))
        if self.multilabel:  # one binary model (or a constant) per class
            width = columns.stop - columns.start
            rows = [
                np.zeros(width) if isinstance(m, float) else np.asarray(m.coef_[0])[columns]
                for m in self._model
            ]
            return block, np.vstack(rows)
        coef = np.asarray(self._model.coef_)[:, columns]
        return block, (np.vstack([-coef[0], coef[0]]) if coef.shape[0] == 1 else coef)

    def predict(self, texts: Sequence[str]) -> list[Any]:
        proba = self.predict_proba(texts)
        if not self.multilabel:
            return self.classes_[proba.argmax(axis=1)].tolist()  # Python values, as given
        hits = proba >= self.options["threshold"]
        return [[c for c, h in zip(self.classes_, row, strict=True) if h] for row in hits]
