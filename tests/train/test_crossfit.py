from __future__ import annotations

from typing import ClassVar

import numpy as np
import polars as pl
import pytest

from assay.errors import InputError
from assay.train.crossfit import cross_fit, cross_fit_corpus, stratified_folds

pytest.importorskip("sklearn")

POSITIVE = ["good", "great", "lovely", "superb", "brilliant"]
NEGATIVE = ["bad", "awful", "poor", "dull", "boring"]
FILLER = ["the", "film", "movie", "was", "is", "a", "plot", "very", "and", "it"]


def separable(n: int, seed: int) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        positive = i % 2 == 0
        words = [*rng.choice(FILLER, 4), rng.choice(POSITIVE if positive else NEGATIVE)]
        texts.append(" ".join(words) + f" n{i}")  # unique texts
        labels.append("pos" if positive else "neg")
    return texts, labels


class LookupModel:
    """Memorises its training rows: one-hot on a text it saw, uniform on any other.

    Records every text it was fitted on, so a test can see what each fold trained on."""

    fitted: ClassVar[list[set[str]]] = []

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.table: dict[str, str] = {}
        self.classes_: list[str] = []

    def fit(self, texts, labels, weights=None):
        # Multi-label rows are label lists; a single label is a list of one here.
        sets = [lab if isinstance(lab, list) else [lab] for lab in labels]
        self.multilabel = isinstance(labels[0], list)
        self.table = dict(zip(texts, sets, strict=True))
        self.classes_ = sorted({x for lab in sets for x in lab})
        LookupModel.fitted.append(set(texts))
        return self

    def predict_proba(self, texts):
        k = len(self.classes_)
        out = np.full((len(texts), k), 0.5 if self.multilabel else 1.0 / k)
        for r, t in enumerate(texts):
            if t in self.table:
                out[r] = 0.0
                out[r, [self.classes_.index(x) for x in self.table[t]]] = 1.0
        return out


@pytest.fixture
def lookup():
    LookupModel.fitted = []
    return LookupModel


def test_oof_models_never_score_a_row_they_trained_on(lookup):
    texts, labels = separable(60, 0)
    oof = cross_fit(texts, labels, folds=5, seed=1, factory=lookup)
    # A memorising model gives one-hot rows for texts it saw: every row here is uniform.
    assert np.allclose(oof.proba, 0.5)
    assert len(lookup.fitted) == 5
    for fold, seen in enumerate(lookup.fitted):
        held = {texts[i] for i in np.flatnonzero(oof.folds == fold)}
        assert held and not (held & seen)
        assert held | seen == set(texts)


def test_oof_models_never_see_rows_outside_the_fit_splits(lookup):
    texts, labels = separable(40, 0)
    splits = ["train"] * 30 + ["dev"] * 5 + ["test"] * 5
    corpus = pl.DataFrame(
        {
            "id": [f"r{i}" for i in range(40)],
            "text": texts,
            "label": labels,
            "split": splits,
            "weight": [1.0] * 40,
        }
    )
    oof = cross_fit_corpus(corpus, folds=3, seed=0, factory=lookup)
    assert oof.ids == [f"r{i}" for i in range(30)]
    held_out = set(texts[30:])
    assert all(not (seen & held_out) for seen in lookup.fitted)


def test_folds_are_stratified_and_cover_every_row():
    labels = ["a"] * 50 + ["b"] * 25 + ["c"] * 10
    folds = stratified_folds(labels, 5, seed=3)
    assert sorted(np.unique(folds)) == [0, 1, 2, 3, 4]
    arr = np.array(labels)
    for fold in range(5):
        part = arr[folds == fold]
        assert (part == "a").sum() == 10 and (part == "b").sum() == 5 and (part == "c").sum() == 2


def test_multilabel_iterative_folds_spread_every_label():
    rng = np.random.default_rng(0)
    names = ["x", "y", "z", "rare"]
    labels = []
    for i in range(200):
        chosen = [n for n in names[:3] if rng.random() < 0.4]
        if i % 20 == 0:
            chosen.append("rare")
        labels.append(chosen)
    folds = stratified_folds(labels, 5, seed=0)
    assert np.bincount(folds).min() >= 36  # sizes near 40
    for name in names:
        rows = [f for f, lab in zip(folds, labels, strict=True) if name in lab]
        counts = np.bincount(rows, minlength=5)
        assert counts.max() - counts.min() <= 1, (name, counts)


def test_more_folds_than_the_smallest_class_is_an_input_error():
    labels = ["a"] * 20 + ["rare"] * 3
    with pytest.raises(InputError, match=r"label 'rare' has 3.*folds <= 3"):
        stratified_folds(labels, 5)
    with pytest.raises(InputError, match="'rare' has 3"):
        cross_fit([f"t{i}" for i in range(23)], labels, folds=4)


def test_same_seed_same_probabilities_and_other_seed_other_folds():
    texts, labels = separable(80, 2)
    a = cross_fit(texts, labels, seed=7)
    b = cross_fit(texts, labels, seed=7)
    assert np.array_equal(a.folds, b.folds) and np.array_equal(a.proba, b.proba)
    c = cross_fit(texts, labels, seed=8)
    assert not np.array_equal(a.folds, c.folds)
    g1 = cross_fit(texts, labels, seed=np.random.default_rng(4))
    g2 = cross_fit(texts, labels, seed=np.random.default_rng(4))
    assert np.array_equal(g1.proba, g2.proba)


def test_fast_model_oof_probabilities_recover_a_separable_task():
    texts, labels = separable(100, 1)
    oof = cross_fit(texts, labels, ids=[f"r{i}" for i in range(100)])
    assert oof.classes == ["neg", "pos"] and oof.proba.shape == (100, 2)
    assert np.allclose(oof.proba.sum(axis=1), 1.0)
    pred = [oof.classes[j] for j in oof.proba.argmax(axis=1)]
    assert np.mean(np.array(pred) == np.array(labels)) >= 0.95
    frame = oof.to_frame()
    assert frame.columns == ["id", "neg", "pos"] and frame["id"][3] == "r3"


def test_multilabel_probabilities_are_per_label(lookup):
    texts, _ = separable(50, 0)
    labels = [["x"] if i % 2 else ["x", "y"] for i in range(50)]
    oof = cross_fit(texts, labels, folds=5, factory=lookup)
    assert oof.multilabel and oof.classes == ["x", "y"] and oof.proba.shape == (50, 2)
    assert np.allclose(oof.proba, 0.5)  # never a memorised row


def test_options_for_a_model_not_cross_fitted_are_rejected():
    texts, labels = separable(20, 0)
    with pytest.raises(InputError, match="not cross-fitted"):
        cross_fit(texts, labels, options={"encoder": {}})


@pytest.mark.slow
def test_ensemble_averages_fast_and_encoder_probabilities(tiny_encoder):
    pytest.importorskip("torch")
    texts, labels = separable(40, 0)
    options = {str(tiny_encoder): {"max_steps": 2, "batch_size": 8, "threads": 1}}
    fast = cross_fit(texts, labels, folds=2, model="fast")
    both = cross_fit(texts, labels, folds=2, model=["fast", str(tiny_encoder)], options=options)
    assert both.models == ["fast", str(tiny_encoder)]
    assert np.allclose(both.proba.sum(axis=1), 1.0, atol=1e-5)
    assert not np.allclose(both.proba, fast.proba)


def test_progress_advances_once_per_fold_model(lookup):
    from contextlib import contextmanager

    class Recorder:
        def __init__(self) -> None:
            self.calls: list[tuple[str, int | None]] = []
            self.advanced = 0

        @contextmanager
        def task(self, description, total=None):
            self.calls.append((description, total))
            yield self

        def advance(self, n: int = 1) -> None:
            self.advanced += n

    texts, labels = separable(30, 0)
    recorder = Recorder()
    cross_fit(texts, labels, folds=3, factory=lookup, progress=recorder)
    assert recorder.calls == [("cross-fitting", 3)] and recorder.advanced == 3


def test_on_an_engine_each_fold_model_is_a_task_with_the_same_probabilities(actors_engine):
    texts, labels = separable(60, 2)
    labels = [["neg", "pos", "mid"][i % 3] for i in range(60)]
    local = cross_fit(texts, labels, folds=4, seed=5)
    actors_engine.gpus_per_actor = 0.5
    remote = cross_fit(texts, labels, folds=4, seed=5, engine=actors_engine)
    assert actors_engine.batches == [1, 1, 1, 1]  # one (model, fold) per task
    assert actors_engine.gpus == [0.5] * 4
    assert np.array_equal(remote.folds, local.folds)
    assert np.array_equal(remote.proba, local.proba)


def test_probe_folds_embed_each_row_once_between_them(tmp_path):
    pytest.importorskip("sentence_transformers")
    from assay import embedding_cache
    from assay.testing import tiny_bert

    words = [*POSITIVE, *NEGATIVE, *FILLER]
    encoder = str(tiny_bert(tmp_path / "encoder", words, classifier=False))
    texts, labels = separable(60, 0)
    embedding_cache.clear_shared()
    try:
        oof = cross_fit(
            texts, labels, folds=3, model="probe", options={"probe": {"encoder": encoder}}
        )
        assert oof.models == ["probe"] and oof.proba.shape == (60, 2)
        np.testing.assert_allclose(oof.proba.sum(axis=1), 1.0)
        assert embedding_cache.shared(encoder).embedded == 60
    finally:
        embedding_cache.clear_shared()
