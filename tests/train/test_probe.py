from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from assay import embedding_cache
from assay.errors import InputError, ResourceError
from assay.testing import tiny_bert
from assay.train.probe import ProbeModel

pytest.importorskip("sentence_transformers")

POSITIVE = ["good", "great", "fine", "lovely", "superb"]
NEGATIVE = ["bad", "awful", "poor", "dull", "boring"]
FILLER = ["the", "film", "movie", "was", "is", "a", "plot", "very", "and", "it"]
# A frozen random encoder separates its word bags only with a weakly regularised head.
LOOSE = 1000.0


@pytest.fixture(scope="module")
def encoder(tmp_path_factory) -> str:
    """A tiny randomly initialised BERT without a head: sentence-transformers mean-pools it."""
    return str(tiny_bert(tmp_path_factory.mktemp("tiny-st"), [*POSITIVE, *NEGATIVE, *FILLER],
                         classifier=False))  # fmt: skip


@pytest.fixture(autouse=True)
def _fresh_shared_caches():
    embedding_cache.clear_shared()
    yield
    embedding_cache.clear_shared()


def separable(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        positive = bool(rng.integers(2))
        words = [*rng.choice(FILLER, 3), rng.choice(POSITIVE if positive else NEGATIVE)]
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append("pos" if positive else "neg")
    return texts, labels


def test_probe_learns_a_separable_task_from_frozen_embeddings(encoder):
    texts, labels = separable(200)
    model = ProbeModel(encoder=encoder, C=LOOSE).fit(texts, labels)
    assert list(model.classes_) == ["neg", "pos"]
    held_texts, held_labels = separable(100, seed=1)
    assert np.mean(np.array(model.predict(held_texts)) == np.array(held_labels)) > 0.85
    proba = model.predict_proba(held_texts[:3])
    assert proba.shape == (3, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert model.predict_proba([]).shape == (0, 2)


def test_a_second_fit_on_the_same_texts_embeds_nothing_new(encoder):
    texts, labels = separable(60)
    cache = embedding_cache.shared(encoder)
    ProbeModel(encoder=encoder).fit(texts, labels)
    first = cache.embedded
    assert first == len(set(texts))
    other = ProbeModel(encoder=encoder, seed=5).fit(texts[:40], labels[:40])
    other.predict(texts)
    assert cache.embedded == first
    other.predict(["a very lovely film indeed"])
    assert cache.embedded == first + 1


def test_embeddings_on_disk_serve_a_later_process(encoder, tmp_path):
    texts, labels = separable(40)
    ProbeModel(encoder=encoder, cache_dir=str(tmp_path)).fit(texts, labels)
    embedding_cache.clear_shared()  # what a new process starts with
    again = ProbeModel(encoder=encoder, cache_dir=str(tmp_path)).fit(texts, labels)
    assert embedding_cache.shared(encoder, tmp_path).embedded == 0
    assert list(again.classes_) == ["neg", "pos"]


def test_seed_changes_nothing_the_fit_is_deterministic(encoder):
    texts, labels = separable(80)
    a = ProbeModel(encoder=encoder, seed=0).fit(texts, labels).predict_proba(texts)
    b = ProbeModel(encoder=encoder, seed=7).fit(texts, labels).predict_proba(texts)
    np.testing.assert_array_equal(a, b)


def test_sample_weights_decide_between_conflicting_labels(encoder):
    texts = ["the plot was dull"] * 4
    labels = ["a", "a", "b", "b"]
    heavy_b = ProbeModel(encoder=encoder).fit(texts, labels, weights=[1, 1, 10, 10])
    heavy_a = ProbeModel(encoder=encoder).fit(texts, labels, sample_weight=[10, 10, 1, 1])
    assert heavy_b.predict(texts[:1]) == ["b"]
    assert heavy_a.predict(texts[:1]) == ["a"]
    with pytest.raises(InputError, match="3 weights for 4 texts"):
        ProbeModel(encoder=encoder).fit(texts, labels, weights=[1, 1, 1])


def test_multilabel_labels_give_one_column_per_label(encoder):
    texts = ["good film", "bad film", "good and bad film", "the plot"] * 10
    labels = [["good"], ["bad"], ["bad", "good"], []] * 10
    model = ProbeModel(encoder=encoder, C=LOOSE).fit(texts, labels)
    assert model.multilabel and list(model.classes_) == ["bad", "good"]
    assert model.predict_proba(texts[:4]).shape == (4, 2)
    assert model.predict(texts[:4]) == [["good"], ["bad"], ["bad", "good"], []]


def test_clone_and_cross_val_predict_work(encoder):
    from sklearn.base import clone, is_classifier
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    model = ProbeModel(seed=3, encoder=encoder, C=LOOSE)
    assert is_classifier(model)
    twin = clone(model)
    assert twin is not model and twin.get_params() == model.get_params()
    assert twin.set_params(C=2.0).options["C"] == 2.0 and model.options["C"] == LOOSE
    texts, labels = separable(90)
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    proba = cross_val_predict(model, texts, labels, cv=cv, method="predict_proba")
    assert proba.shape == (90, 2)
    assert np.mean(proba.argmax(axis=1) == (np.array(labels) == "pos")) > 0.8
    y = np.array([2 if lab == "pos" else 10 for lab in labels])  # integer labels come back
    assert set(cross_val_predict(model, texts, y, cv=cv)) == {2, 10}


def test_bad_encoders_and_inputs_are_clear_errors(encoder, tmp_path):
    with pytest.raises(ResourceError, match="does not exist"):
        ProbeModel(encoder=str(tmp_path / "missing")).fit(["a", "b"], ["x", "y"])
    with pytest.raises(ResourceError, match=r"cannot load the sentence encoder .* probe model"):
        ProbeModel(encoder=str(tmp_path)).fit(["a", "b"], ["x", "y"])
    with pytest.raises(InputError, match=r"unknown options \['c'\]"):
        ProbeModel(c=1.0)
    with pytest.raises(InputError, match="not fitted"):
        ProbeModel(encoder=encoder).predict(["a"])
    with pytest.raises(InputError, match="two classes"):
        ProbeModel(encoder=encoder).fit(["good", "bad"], ["x", "x"])


def test_train_and_evaluate_takes_the_probe_by_name(encoder):
    from assay.train.evaluate import PROBE, make_model, train_and_evaluate

    assert isinstance(make_model(PROBE, 2, {"encoder": encoder}, None), ProbeModel)
    texts, labels = separable(80)
    corpus = pl.DataFrame(
        {
            "id": [f"r{i}" for i in range(80)],
            "text": texts,
            "label": labels,
            "split": ["train"] * 50 + ["dev"] * 15 + ["test"] * 15,
            "weight": [1.0] * 80,
            "lang": ["en"] * 80,
            "origin": ["source"] * 80,
            "group": [None] * 80,
        }
    )
    outcome = train_and_evaluate(corpus, model=PROBE, options={"encoder": encoder, "C": LOOSE})
    assert outcome.model == "probe" and outcome.train_rows == 50
    assert set(outcome.metrics) == {"dev", "test"}


@pytest.mark.integration
def test_packaged_minilm_probe_reads_sentiment():
    good = [
        "a wonderful, moving film",
        "I loved every minute of it",
        "great acting and a clever script",
        "a delightful surprise",
        "beautifully shot and very funny",
    ]
    bad = [
        "a dull, lifeless mess",
        "I hated every minute of it",
        "terrible acting and a stupid script",
        "a tedious disappointment",
        "ugly to look at and never funny",
    ]
    model = ProbeModel().fit(good + bad, ["pos"] * 5 + ["neg"] * 5)
    assert model.predict(["an utterly charming film", "a boring waste of time"]) == ["pos", "neg"]
    assert model.features(["x"]).shape == (1, 384)


@pytest.mark.integration
@pytest.mark.slow
def test_packaged_minilm_probe_beats_chance_on_sst2(shared_data):
    train = pl.read_csv(shared_data / "sst2" / "train.csv").head(300)
    dev = pl.read_csv(shared_data / "sst2" / "dev.csv").head(200)
    model = ProbeModel().fit(train["text"].to_list(), train["label"].cast(str).to_list())
    pred = model.predict(dev["text"].to_list())
    assert np.mean(np.array(pred) == np.array(dev["label"].cast(str).to_list())) > 0.7
