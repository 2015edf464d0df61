from __future__ import annotations

import pytest

from assay.augment.inflect import inflect

IRREGULAR = {
    ("goose", "n"): ("geese",),
    ("write", "v"): ("written", "wrote"),
    ("stop", "v"): ("stopped", "stopping"),
}


def irregular(base: str, pos: str) -> tuple[str, ...]:
    return IRREGULAR.get((base, pos), ())


@pytest.mark.parametrize(
    ("lemma", "tag", "form"),
    [
        ("movie", "NN", "movie"),
        ("movie", "NNS", "movies"),
        ("city", "NNS", "cities"),
        ("box", "NNS", "boxes"),
        ("goose", "NNS", "geese"),
        ("motion picture", "NNS", "motion pictures"),
        ("devise", "VBN", "devised"),
        ("write", "VBD", "wrote"),
        ("write", "VBN", "written"),
        ("write", "VBG", "writing"),
        ("stop", "VBD", "stopped"),
        ("try", "VBZ", "tries"),
        ("go", "VBZ", "goes"),
        ("give up", "VBD", "gived up"),  # no exception list given: the regular rule
        ("die", "VBG", "dying"),
        ("tedious", "JJ", "tedious"),
        ("good", "JJR", None),
    ],
)
def test_lemmas_take_the_form_of_the_word_they_replace(lemma, tag, form):
    assert inflect(lemma, tag, irregular) == form


def test_irregular_forms_come_from_wordnet_exception_lists(wordnet_synonyms):
    assert inflect("give up", "VBD", wordnet_synonyms.irregular) == "gave up"
    assert inflect("mouse", "NNS", wordnet_synonyms.irregular) == "mice"
    assert inflect("run", "VBG", wordnet_synonyms.irregular) == "running"
