from __future__ import annotations

import numpy as np
import pytest

from assay.augment.base import draws


def _fake_synonyms(word: str, pos: str | None) -> tuple[str, ...]:
    return (f"{pos or 'x'}1{word}", f"{pos or 'x'}2{word}")


@pytest.fixture
def fake_synonyms():
    """Every word has two synonyms that name the part of speech they were asked for:
    `n1film`, `n2film`."""
    return _fake_synonyms


@pytest.fixture
def table(fake_synonyms):
    """A WordTable over the fake synonyms and the real offline tagger."""
    from assay.augment.tagger import default_tagger
    from assay.augment.word_ops import WordTable

    def make(**kw):
        return WordTable(fake_synonyms, default_tagger(), **kw)

    return make


@pytest.fixture
def draw():
    return draws(np.random.default_rng(7))


@pytest.fixture(scope="session")
def wordnet_synonyms():
    """The real offline WordNet (from Debian's wordnet-base); skips where it is absent."""
    from assay.errors import ResourceError

    try:
        from assay.augment.wordnet import default_synonyms

        return default_synonyms()
    except ResourceError as exc:
        pytest.skip(str(exc))


def _general_english(n_sentences: int, seed: int = 0) -> list[list[str]]:
    from assay.augment.term_mining import reference_counts

    counts = reference_counts(None)
    words = [w for w, _ in counts.most_common(3000) if w.isalpha() and len(w) > 2]
    p = np.array([counts[w] for w in words], dtype=float)
    rng = np.random.default_rng(seed)
    return [list(rng.choice(words, size=12, p=p / p.sum())) for _ in range(n_sentences)]


def _plant(sentences: list[list[str]], terms: list[str], times: int) -> list[str]:
    out = [list(s) for s in sentences]
    k = 0
    for term in terms:
        for _ in range(times):
            out[k].insert(k % 12, term)
            k += 1
    return [" ".join(s) for s in out]


@pytest.fixture
def general_english():
    """Sentences of words drawn by their frequency in the general reference list."""
    return _general_english


@pytest.fixture
def plant():
    """Insert each term `times` times, into successive sentences."""
    return _plant
