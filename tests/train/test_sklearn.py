"""assay's models as scikit-learn estimators: clone, cross-validation, probability scorers,
calibration, grid search, pipelines, pickling and the notebook repr.

Which of `sklearn.utils.estimator_checks` apply. The models read raw text (their tags say
`string=True`, `two_d_array=False`), so `check_estimator` runs only `check_estimator_cloneable`
and skips the rest: almost every check fits on numeric matrices (`make_blobs`, sparse
matrices, NaN and inf, 1-feature and 1-sample arrays, memmaps, dtypes, sample-weight
equivalence on dense rows), which a text model cannot read. Run here, on each model:

- apply and pass: `check_estimator_cloneable`, `check_estimator_repr`,
  `check_estimator_tags_renamed`, `check_valid_tag_types`, `check_mixin_order`,
  `check_parameters_default_constructible`, `check_get_params_invariance`,
  `check_set_params` (they construct, clone and introspect; no data), and
  `check_estimators_unfitted` (predicting before fit raises scikit-learn's NotFittedError,
  which is also assay's InputError);
- apply but are not met, by design: `check_no_attributes_set_in_init` and
  `check_do_not_raise_errors_in_init_or_set_params`. The models take their options as
  keywords (`**options`, checked against `DEFAULTS` so a misspelt option is an error) and
  keep them in `options` (`config` for the encoder), so scikit-learn's introspection sees a
  parameter named `options`; `get_params`, `set_params` and `clone` work from the option
  names. The encoder also keeps its training record (`history`, `steps`) from `__init__` on.
- everything else feeds numbers: not applicable. The behaviours they stand for are
  tested here on text instead (fit returns self, pickling, scoring, `check_is_fitted`).
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone, is_classifier
from sklearn.model_selection import StratifiedKFold, cross_val_predict, cross_val_score

from assay.errors import InputError
from assay.train.fast import FastModel

POSITIVE = ["good", "great", "fine", "lovely", "superb"]
NEGATIVE = ["bad", "awful", "poor", "dull", "boring"]
FILLER = ["the", "film", "movie", "was", "is", "a", "plot", "very", "and", "it"]
FAST = {"learning_rate": 3e-3, "warmup_ratio": 0.0, "batch_size": 16, "threads": 1}


def separable(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        positive = bool(rng.integers(2))
        words = [*rng.choice(FILLER, 4), rng.choice(POSITIVE if positive else NEGATIVE)]
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append("pos" if positive else "neg")
    return texts, labels


def test_fast_model_params_round_trip_through_clone_and_set_params():
    model = FastModel(seed=3, C=1.5, char_ngrams=None)
    assert is_classifier(model)
    params = model.get_params()
    assert params["seed"] == 3 and params["C"] == 1.5 and params["char_ngrams"] is None
    twin = clone(model)
    assert twin is not model and twin.get_params() == params
    assert twin.set_params(C=8.0, seed=1) is twin
    assert (twin.options["C"], twin.seed, model.options["C"]) == (8.0, 1, 1.5)
    with pytest.raises(InputError, match=r"unknown options \['c'\]"):
        twin.set_params(c=2)


def test_fast_model_cross_val_predict_labels_and_probabilities():
    texts, labels = separable(120)
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    pred = cross_val_predict(FastModel(seed=0), texts, labels, cv=cv)
    assert pred.shape == (120,) and set(pred) == {"neg", "pos"}
    assert np.mean(pred == np.array(labels)) > 0.9
    proba = cross_val_predict(FastModel(seed=0), texts, labels, cv=cv, method="predict_proba")
    assert proba.shape == (120, 2) and np.allclose(proba.sum(axis=1), 1)
    # Columns follow sorted classes: neg, pos.
    assert np.mean(proba.argmax(axis=1) == (np.array(labels) == "pos")) > 0.9


def test_integer_labels_come_back_as_integers_in_numeric_order():
    texts, labels = separable(60)
    y = np.array([2 if lab == "pos" else 10 for lab in labels])  # "10" < "2" as strings
    model = FastModel(seed=0).fit(texts, y)
    assert model.predict(texts[:3]) == [int(v) for v in y[:3]]
    assert [type(v) for v in model.predict(texts[:1])] == [int]
    proba = model.predict_proba(texts)
    assert np.mean(np.where(proba[:, 0] > 0.5, 2, 10) == y) > 0.9  # column 0 is class 2
    assert model.score(texts, y) > 0.9


@pytest.mark.slow
def test_encoder_model_clones_and_cross_validates(tiny_encoder):
    pytest.importorskip("torch")
    from assay.train.finetune import EncoderModel

    model = EncoderModel(seed=0, model=str(tiny_encoder), max_steps=60, **FAST)
    params = model.get_params()
    assert params["max_steps"] == 60 and params["model"] == str(tiny_encoder)
    assert "lora" in params and "config" not in params
    twin = clone(model)
    assert twin.config == model.config and twin.model is None
    twin.set_params(learning_rate=1e-3)
    assert twin.config.learning_rate == 1e-3 and model.config.learning_rate == 3e-3
    with pytest.raises(InputError, match="unknown params"):
        twin.set_params(lr=1)

    texts, labels = separable(64, seed=1)
    cv = StratifiedKFold(2, shuffle=True, random_state=0)
    pred = cross_val_predict(model, texts, labels, cv=cv)
    assert pred.shape == (64,) and np.mean(pred == np.array(labels)) > 0.75
    proba = cross_val_predict(model, texts, labels, cv=cv, method="predict_proba")
    assert proba.shape == (64, 2) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert model.model is None  # cross-validation trained clones, not the model itself


@pytest.fixture
def transformers_records():
    """What transformers logs (its handler holds on to the stream it started with, so
    capfd alone would not see the load report)."""
    import logging

    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    handler = Collect()
    logger = logging.getLogger("transformers")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def test_model_loading_prints_no_load_report(tiny_encoder, capfd, transformers_records):
    pytest.importorskip("torch")
    from transformers.utils import logging as hf_logging

    from assay.train.finetune import EncoderModel

    before = (hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled())
    texts, labels = separable(16)
    EncoderModel(seed=0, model=str(tiny_encoder), max_steps=1, **FAST).fit(texts, labels)
    out, err = capfd.readouterr()
    assert not [r for r in transformers_records if "LOAD REPORT" in r]
    assert "LOAD REPORT" not in out + err and "Loading weights" not in out + err
    # Nothing global changed: verbosity and progress bars are as they were.
    assert (hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()) == before


def test_load_report_shows_when_the_user_turned_logging_up(tiny_encoder, transformers_records):
    pytest.importorskip("torch")
    from transformers.utils import logging as hf_logging

    from assay.resources import quiet_model_loading

    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity_info()
    try:
        from transformers import AutoModelForSequenceClassification

        with quiet_model_loading():
            AutoModelForSequenceClassification.from_pretrained(str(tiny_encoder), num_labels=3,
                                                               ignore_mismatched_sizes=True)  # fmt: skip
    finally:
        hf_logging.set_verbosity(previous)
    reports = [r for r in transformers_records if "LOAD REPORT" in r]
    assert len(reports) == 1, transformers_records
    # The report as transformers writes it: the model, where from, and the two head weights
    # that were re-initialised for three labels instead of the checkpoint's two.
    report = reports[0]
    assert "BertForSequenceClassification" in report and str(tiny_encoder) in report
    rows = {line.split("|")[0].strip(): line for line in report.splitlines() if "|" in line}
    assert {k for k, line in rows.items() if "MISMATCH" in line} == {
        "classifier.weight",
        "classifier.bias",
    }
    assert "torch.Size([2, 32]) vs model:torch.Size([3, 32])" in rows["classifier.weight"]
    assert "torch.Size([2]) vs model:torch.Size([3])" in rows["classifier.bias"]


# -- probability scorers, calibration and the scikit-learn tool chain ------------------------


def integer_labelled(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    texts, labels = separable(n, seed)
    return texts, np.array([int(lab == "pos") for lab in labels])


@pytest.mark.parametrize("scoring", ["roc_auc", "neg_log_loss"])
def test_probability_scorers_score_the_fast_model(scoring):
    # They picked the positive class's column by comparing classes_ with the labels: with
    # the classes as strings '0'/'1' that found no column (IndexError, or NaN scores).
    texts, y = integer_labelled(90)
    scores = cross_val_score(FastModel(), texts, y, scoring=scoring, cv=3, error_score="raise")
    assert np.isfinite(scores).all()
    assert scores.min() > (0.9 if scoring == "roc_auc" else -0.5)


def test_classes_are_an_array_of_the_labels_as_given():
    texts, y = integer_labelled(60)
    model = FastModel().fit(texts, y)
    assert isinstance(model.classes_, np.ndarray) and model.classes_.dtype.kind == "i"
    assert model.classes_.tolist() == [0, 1]
    named = FastModel().fit(*separable(60))
    assert named.classes_.tolist() == ["neg", "pos"]
    assert all(type(c) is str for c in named.classes_)  # plain strings, as assay compares


def test_calibrated_classifier_wraps_the_fast_model():
    from sklearn.calibration import CalibratedClassifierCV

    texts, y = integer_labelled(90)
    calibrated = CalibratedClassifierCV(FastModel(), cv=3).fit(texts, y)
    proba = calibrated.predict_proba(texts)
    assert proba.shape == (90, 2) and np.allclose(proba.sum(axis=1), 1)
    assert np.mean(proba.argmax(axis=1) == y) > 0.9


def test_check_is_fitted_fails_before_fit_and_passes_after():
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    model = FastModel()
    with pytest.raises(NotFittedError):
        check_is_fitted(model)
    with pytest.raises(InputError, match="not fitted yet"):  # assay's error, too
        model.predict(["a film"])
    check_is_fitted(model.fit(*separable(40)))


def test_grid_search_over_a_pipeline_pickles_and_shows_its_html_repr():
    import pickle

    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.utils import estimator_html_repr

    texts, y = integer_labelled(90)
    pipe = make_pipeline(FunctionTransformer(_lower), FastModel())
    search = GridSearchCV(pipe, {"fastmodel__C": [0.5, 4.0]}, cv=3, scoring="roc_auc")
    search.fit(texts, y)
    assert search.best_score_ > 0.9 and search.classes_.tolist() == [0, 1]
    again = pickle.loads(pickle.dumps(search.best_estimator_))
    np.testing.assert_array_equal(again.predict_proba(texts), search.predict_proba(texts))
    assert "FastModel" in estimator_html_repr(search)
    assert "FastModel" in FastModel()._repr_html_()
    assert repr(FastModel(C=1.5, seed=3)) == "FastModel(seed=3, C=1.5)"


def _lower(texts):
    return [t.lower() for t in texts]


APPLICABLE_CHECKS = [
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_estimator_tags_renamed",
    "check_valid_tag_types",
    "check_mixin_order",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
]


def _models():
    from assay.train.probe import ProbeModel

    models = [FastModel(), ProbeModel()]
    try:
        from assay.train.finetune import EncoderModel
    except ImportError:  # pragma: no cover - the train extra brings torch
        return models
    return [*models, EncoderModel()]


@pytest.mark.parametrize("check", APPLICABLE_CHECKS)
def test_estimator_checks_that_apply_to_text_input_pass(check):
    from sklearn.utils import estimator_checks

    for model in _models():
        getattr(estimator_checks, check)(type(model).__name__, model)


def test_predicting_before_fit_is_scikit_learns_not_fitted_error():
    from sklearn.utils.estimator_checks import check_estimators_unfitted

    for model in _models():
        check_estimators_unfitted(type(model).__name__, model)


@pytest.fixture(scope="module")
def bare_encoder(tmp_path_factory) -> str:
    """A tiny BERT without a head: what the probe's sentence-transformers loads."""
    from assay.testing import tiny_bert

    words = [*POSITIVE, *NEGATIVE, *FILLER]
    return str(tiny_bert(tmp_path_factory.mktemp("tiny-st"), words, classifier=False))


def test_probe_model_works_with_scorers_calibration_and_pickle(bare_encoder):
    pytest.importorskip("sentence_transformers")
    import pickle

    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    from assay.train.probe import ProbeModel

    texts, y = integer_labelled(90)
    probe = ProbeModel(encoder=bare_encoder, C=1000.0)
    with pytest.raises(NotFittedError):
        check_is_fitted(probe)
    for scoring in ("roc_auc", "neg_log_loss"):
        scores = cross_val_score(probe, texts, y, scoring=scoring, cv=3, error_score="raise")
        assert np.isfinite(scores).all()
    calibrated = CalibratedClassifierCV(probe, cv=3).fit(texts, y)
    assert calibrated.predict_proba(texts[:4]).shape == (4, 2)
    fitted = clone(probe).fit(texts, y)
    assert fitted.classes_.tolist() == [0, 1] and fitted.predict(texts[:2]) == y[:2].tolist()
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_allclose(again.predict_proba(texts), fitted.predict_proba(texts))
    assert repr(probe).startswith("ProbeModel(encoder=") and "C=1000.0" in repr(probe)


def test_encoder_model_works_with_scorers_and_has_a_repr(tiny_encoder):
    pytest.importorskip("torch")
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    from assay.train.finetune import EncoderModel

    texts, y = integer_labelled(48, seed=2)
    model = EncoderModel(seed=0, model=str(tiny_encoder), max_steps=20, **FAST)
    assert repr(model).startswith("EncoderModel(model=") and "max_steps=20" in repr(model)
    with pytest.raises(NotFittedError):
        check_is_fitted(model)
    scores = cross_val_score(model, texts, y, scoring="roc_auc", cv=2, error_score="raise")
    assert np.isfinite(scores).all()
    fitted = clone(model).fit(texts, y)
    check_is_fitted(fitted)
    assert fitted.classes_.tolist() == [0, 1]
    assert {type(p) for p in fitted.predict(texts[:4])} == {int}
