"""EncoderModel keeps scikit-learn's estimator conventions, as FastModel does: no `classes_`
before fit, NotFittedError on predict, `classes_` an array of the labels as given, a repr of
the changed params, and get_params / set_params / clone that round-trip."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from assay.errors import InputError, ResourceError
from assay.train.finetune import EncoderModel, FineTuneConfig

FAST = {"learning_rate": 3e-3, "warmup_ratio": 0.0, "batch_size": 16, "threads": 1}
TEXTS = [
    "good film", "great plot", "lovely movie", "superb and fine", "it was good",
    "a great film", "fine plot", "very lovely", "superb movie", "the film was great",
    "bad film", "awful plot", "poor movie", "dull and boring", "it was bad",
    "a poor film", "dull plot", "very awful", "boring movie", "the film was bad",
]  # fmt: skip
NUMBERS = [1] * 10 + [0] * 10


def test_an_unfitted_encoder_has_no_classes_and_refuses_to_predict():
    model = EncoderModel()
    assert not hasattr(model, "classes_")
    with pytest.raises(NotFittedError):
        check_is_fitted(model)
    for method in (model.predict, model.predict_proba):
        with pytest.raises(NotFittedError, match="EncoderModel is not fitted yet"):
            method(["a film"])
    with pytest.raises(InputError):  # also assay's own input error
        model.save("never-written")


def test_scikit_learns_unfitted_check_passes():
    from sklearn.utils.estimator_checks import check_estimators_unfitted

    check_estimators_unfitted("EncoderModel", EncoderModel())


def test_repr_shows_only_the_changed_params():
    assert repr(EncoderModel()) == "EncoderModel()"
    assert repr(EncoderModel(seed=3, max_steps=5)) == "EncoderModel(seed=3, max_steps=5)"
    assert repr(EncoderModel(config=FineTuneConfig(epochs=1.0))) == "EncoderModel(epochs=1.0)"


def test_params_round_trip_through_clone_and_set_params():
    model = EncoderModel(seed=2, config=FineTuneConfig(max_steps=4, learning_rate=1e-4))
    params = model.get_params()
    assert (params["seed"], params["max_steps"], params["learning_rate"]) == (2, 4, 1e-4)
    twin = clone(model)
    assert twin is not model and twin.get_params() == params and twin.config == model.config
    assert twin.set_params(max_steps=9, seed=7) is twin
    assert (twin.config.max_steps, twin.seed, model.config.max_steps) == (9, 7, 4)
    assert repr(twin) == "EncoderModel(seed=7, max_steps=9, learning_rate=0.0001)"


def test_a_bad_param_is_one_input_error_and_changes_nothing():
    model = EncoderModel(max_steps=4)
    with pytest.raises(ValueError, match=r"learning_rate: Input should be greater than 0"):
        model.set_params(learning_rate=-1.0, max_steps=8)
    assert model.get_params()["max_steps"] == 4 and model.config.max_steps == 4
    with pytest.raises(InputError, match="unknown params"):
        model.set_params(lr=1)
    with pytest.raises(
        InputError, match="max_lenght: Extra inputs are not permitted"
    ):  # also assay's
        EncoderModel(max_lenght=64)


def test_fit_sets_classes_as_an_array_of_the_labels_as_given(tiny_encoder):
    pytest.importorskip("torch")
    model = EncoderModel(seed=0, model=str(tiny_encoder), max_steps=2, **FAST)
    assert model.fit(TEXTS, np.array(NUMBERS)) is model
    check_is_fitted(model)
    assert isinstance(model.classes_, np.ndarray) and model.classes_.dtype.kind == "i"
    assert model.classes_.tolist() == [0, 1] and model.steps == 2
    assert {type(p) for p in model.predict(TEXTS[:4])} == {int}
    assert model.predict_proba(TEXTS).shape == (20, 2)
    # A refit on named labels replaces the classes and the training record.
    names = ["pos" if n else "neg" for n in NUMBERS]
    model.fit(TEXTS, names)
    assert model.classes_.tolist() == ["neg", "pos"] and model.steps == 2
    assert len(model.history) == 1 and set(model.predict(TEXTS)) <= {"neg", "pos"}


def test_a_failed_refit_leaves_the_model_unfitted(tiny_encoder, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = EncoderModel(seed=0, model=str(tiny_encoder), max_steps=1, **FAST)
    model.fit(TEXTS, NUMBERS)
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    model.set_params(model=str(empty))
    with pytest.raises(ResourceError, match="cannot load the encoder"):
        model.fit(TEXTS, NUMBERS)
    with pytest.raises(NotFittedError):
        check_is_fitted(model)
    with pytest.raises(NotFittedError):
        model.predict(TEXTS[:1])
