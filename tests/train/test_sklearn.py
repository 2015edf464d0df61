from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone, is_classifier
from sklearn.model_selection import StratifiedKFold, cross_val_predict

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
    assert [r for r in transformers_records if "LOAD REPORT" in r]
