from __future__ import annotations

import numpy as np
import pytest

from assay.errors import InputError
from assay.train.fast import FastModel

POS = ["a wonderful delight", "great fun and lovely", "wonderful and great", "lovely film, great"]
NEG = ["a dull mess", "boring and awful", "awful dull plot", "a boring awful mess"]


def _toy():
    texts = POS * 5 + NEG * 5
    labels = ["pos"] * 20 + ["neg"] * 20
    return texts, labels


def test_fast_model_learns_separable_words():
    texts, labels = _toy()
    model = FastModel(seed=0).fit(texts, labels)
    assert list(model.classes_) == ["neg", "pos"]
    assert model.predict(["great and wonderful", "dull and boring"]) == ["pos", "neg"]
    proba = model.predict_proba(["great", "awful"])
    assert proba.shape == (2, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)


def test_fast_model_sample_weights_shift_predictions():
    texts = ["ambiguous words here"] * 4
    labels = ["a", "a", "b", "b"]
    heavy_b = FastModel().fit(texts, labels, weights=[1, 1, 10, 10])
    heavy_a = FastModel().fit(texts, labels, weights=[10, 10, 1, 1])
    assert heavy_b.predict(["ambiguous words here"]) == ["b"]
    assert heavy_a.predict(["ambiguous words here"]) == ["a"]


def test_fast_model_multilabel_returns_label_lists():
    texts = ["cats and dogs", "only cats", "only dogs", "birds"] * 5
    labels = [["cat", "dog"], ["cat"], ["dog"], []] * 5
    model = FastModel().fit(texts, labels)
    assert list(model.classes_) == ["cat", "dog"]
    assert model.predict(["cats and dogs", "birds"]) == [["cat", "dog"], []]


def test_fast_model_rejects_one_class_and_unknown_options():
    with pytest.raises(InputError, match="two classes"):
        FastModel().fit(["a", "b"], ["x", "x"])
    with pytest.raises(InputError, match="unknown options"):
        FastModel(ngrams=3)
    with pytest.raises(InputError, match="not fitted"):
        FastModel().predict(["a"])
