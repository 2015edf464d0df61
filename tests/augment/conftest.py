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
    from assay.augment.words import WordTable

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
