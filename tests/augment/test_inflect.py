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


COMMON_VERBS = {
    # base: (past, participle)
    "be": ("was", "been"),
    "have": ("had", "had"),
    "do": ("did", "done"),
    "go": ("went", "gone"),
    "run": ("ran", "run"),
    "show": ("showed", "shown"),
    "take": ("took", "taken"),
    "give": ("gave", "given"),
    "see": ("saw", "seen"),
    "make": ("made", "made"),
    "come": ("came", "come"),
    "get": ("got", "gotten"),
    "know": ("knew", "known"),
    "think": ("thought", "thought"),
    "write": ("wrote", "written"),
    "begin": ("began", "begun"),
    "break": ("broke", "broken"),
    "choose": ("chose", "chosen"),
    "eat": ("ate", "eaten"),
    "fall": ("fell", "fallen"),
}


def wordnet_like(base: str, pos: str) -> tuple[str, ...]:
    """Like WordNet's exception lists: every irregular form, in no useful order."""
    if pos != "v" or base not in COMMON_VERBS:
        return ()
    past, participle = COMMON_VERBS[base]
    return tuple(sorted({f for f in (past, participle) if f != base}, reverse=True))


@pytest.mark.parametrize("source", ["lemminflect", "table"])
@pytest.mark.parametrize("verb", sorted(COMMON_VERBS))
def test_irregular_verbs_take_the_form_the_tag_asks_for(verb, source, monkeypatch):
    from assay.augment import inflect as inflect_mod

    if source == "lemminflect":
        pytest.importorskip("lemminflect")
    else:
        monkeypatch.setattr(inflect_mod, "_lemminflect", lambda: None)
    past, participle = COMMON_VERBS[verb]
    assert inflect(verb, "VBD", wordnet_like) == past
    assert inflect(verb, "VBN", wordnet_like) == participle
    assert inflect(f"{verb} up", "VBD", wordnet_like) == f"{past} up"


def test_real_wordnet_lists_give_the_right_irregular_form(wordnet_synonyms):
    irregular = wordnet_synonyms.irregular
    assert inflect("go", "VBD", irregular) == "went"
    assert inflect("do", "VBN", irregular) == "done"
    assert inflect("run", "VBN", irregular) == "run"
    assert inflect("show", "VBD", irregular) == "showed"
