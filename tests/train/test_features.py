from __future__ import annotations

import numpy as np
import pytest

from assay.train.features import HashedTfidf, NgramTfidf

TEXTS = [
    "A gripping, funny film!",
    "the plot is thin , the acting worse .",
    "funny? not really",
    "ça marche très bien",
    "a",
]


@pytest.mark.parametrize(
    ("kind", "analyzer", "ngrams"),
    [("word", "word", (1, 2)), ("char", "char_wb", (3, 5)), ("char", "char_wb", (1, 2))],
)
def test_tfidf_block_equals_scikit_learn(kind, analyzer, ngrams):
    from sklearn.feature_extraction.text import TfidfVectorizer

    ours = HashedTfidf(kind, ngrams)
    pattern = {"token_pattern": r"(?u)\b\w+\b|[!?]"} if analyzer == "word" else {}
    ref = TfidfVectorizer(analyzer=analyzer, ngram_range=ngrams, sublinear_tf=True, **pattern)
    a = ours.fit_transform(TEXTS[:3]).toarray()
    b = ref.fit_transform(TEXTS[:3]).toarray()
    assert a.shape == b.shape
    # Columns are ordered differently (hashes vs strings): compare each row's values.
    for row_a, row_b in zip(a, b, strict=True):
        np.testing.assert_allclose(np.sort(row_a), np.sort(row_b), rtol=1e-5, atol=1e-6)
    unseen_a = ours.transform(TEXTS[3:]).toarray()
    unseen_b = ref.transform(TEXTS[3:]).toarray()
    np.testing.assert_allclose(np.sort(unseen_a, axis=1), np.sort(unseen_b, axis=1), atol=1e-6)


def test_min_df_and_max_features_shrink_the_vocabulary():
    full = HashedTfidf("word", (1, 1)).fit_transform(TEXTS)
    common = HashedTfidf("word", (1, 1), min_df=2).fit_transform(TEXTS)
    top = HashedTfidf("word", (1, 1), max_features=3).fit_transform(TEXTS)
    assert common.shape[1] < full.shape[1] and top.shape[1] == 3


def test_blocks_are_normalised_separately():
    x = NgramTfidf([HashedTfidf("word", (1, 2)), HashedTfidf("char", (3, 5))])
    m = x.fit_transform(TEXTS[:3])
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    np.testing.assert_allclose(norms, np.sqrt(2), rtol=1e-5)


def test_eval_texts_transformed_by_another_fit_reuse_their_ngrams_with_the_same_result():
    from assay.train import features

    features._EVAL_GRAMS.clear()
    first, second = HashedTfidf("char", (2, 4)), HashedTfidf("char", (2, 4))
    first.fit_transform(TEXTS[:3])
    second.fit_transform(TEXTS[1:4])
    a = first.transform(TEXTS).toarray()
    assert len(features._EVAL_GRAMS) == 1
    b = second.transform(TEXTS).toarray()  # the same texts: their n-grams come back
    assert len(features._EVAL_GRAMS) == 1
    features._EVAL_GRAMS.clear()
    np.testing.assert_array_equal(b, second.transform(TEXTS).toarray())
    # Another text list (one text changed) is not mistaken for the first.
    changed = [*TEXTS[:-1], "b"]
    np.testing.assert_array_equal(first.transform(changed)[:-1].toarray(), a[:-1])
    assert not np.array_equal(first.transform(changed)[-1].toarray(), a[-1:])


@pytest.mark.parametrize("kind", ["word", "char"])
def test_each_texts_ngrams_are_kept_and_give_the_same_features(kind, monkeypatch):
    from assay.train import features

    def fresh(texts):
        features._TEXT_GRAMS.clear()
        features._text_grams_held[0] = 0
        return HashedTfidf(kind, (1, 3)).fit_transform(texts).toarray()

    rng = np.random.default_rng(0)
    words = ["good", "bad", "film", "plot", "very", "not", "!", "?", "ça", "a"]
    texts = [" ".join(rng.choice(words, rng.integers(1, 9))) for _ in range(60)]
    order = [int(i) for i in rng.permutation(60)[:40]]
    expected = fresh([texts[i] for i in order])
    HashedTfidf(kind, (1, 3)).fit_transform(texts)  # every text's n-grams now kept
    assert features._text_grams_held[0] > 0
    again = HashedTfidf(kind, (1, 3)).fit_transform([texts[i] for i in order]).toarray()
    np.testing.assert_array_equal(again, expected)
    # Full: the store starts afresh and the answer is still the same.
    monkeypatch.setattr(features, "_TEXT_GRAMS_MAX", 50)
    after = HashedTfidf(kind, (1, 3)).fit_transform([texts[i] for i in order] + ["new text"])
    np.testing.assert_array_equal(
        after.toarray()[:40], fresh([texts[i] for i in order] + ["new text"])[:40]
    )
