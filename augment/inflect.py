"""Inflect a WordNet lemma to the form of the word it replaces ("films" -> "movies").

WordNet gives synonyms as lemmas; put in place of "films" or "contrived" they would break
the sentence ("movie", "devise"). The Penn tag of the replaced word says which form is
needed; irregular forms come from WordNet's own exception lists (read backwards: the
lists map "geese" to "goose"), regular ones from English spelling rules. Comparatives and
superlatives are not inflected (no synonyms are offered for them).
"""

from __future__ import annotations

from collections.abc import Callable

_VOWELS = set("aeiou")
BASE_TAGS = frozenset({"NN", "NNP", "VB", "VBP", "JJ", "RB", "FW", "UH", ""})
NO_SYNONYMS = frozenset({"JJR", "JJS", "RBR", "RBS"})
# (base, WordNet pos) -> irregular inflected forms, e.g. ("goose", "n") -> ("geese",).
Irregular = Callable[[str, str], tuple[str, ...]]


def _plural(word: str) -> str:
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and len(word) > 1 and word[-2] not in _VOWELS:
        return word[:-1] + "ies"
    return word + "s"


def _doubles(word: str) -> bool:
    # stop -> stopped, but open -> opened: short consonant-vowel-consonant endings double.
    return (
        len(word) >= 3
        and len(word) <= 4
        and word[-1] not in _VOWELS
        and word[-1] not in "wxy"
        and word[-2] in _VOWELS
        and word[-3] not in _VOWELS
    )


def _past(word: str) -> str:
    if word.endswith("e"):
        return word + "d"
    if word.endswith("y") and len(word) > 1 and word[-2] not in _VOWELS:
        return word[:-1] + "ied"
    if _doubles(word):
        return word + word[-1] + "ed"
    return word + "ed"


def _gerund(word: str) -> str:
    if word.endswith("ie"):
        return word[:-2] + "ying"
    if word.endswith("e") and not word.endswith(("ee", "ye", "oe")) and len(word) > 2:
        return word[:-1] + "ing"
    if _doubles(word):
        return word + word[-1] + "ing"
    return word + "ing"


def _pick(forms: tuple[str, ...], tag: str) -> str | None:
    """The irregular form that fits the tag (the lists do not say which is which)."""
    if tag == "VBG":
        found = [f for f in forms if f.endswith("ing")]
    elif tag.startswith("NN"):
        found = list(forms)
    else:
        found = [f for f in forms if not f.endswith("ing")]
        if tag == "VBN":
            found = sorted(found, key=lambda f: not f.endswith(("en", "n")))
        elif tag == "VBD":
            found = sorted(found, key=lambda f: f.endswith(("en", "n")))
    return found[0] if found else None


def inflect(lemma: str, tag: str, irregular: Irregular | None = None) -> str | None:
    """`lemma` in the form `tag` asks for, or None when that form cannot be made."""
    if tag in BASE_TAGS:
        return lemma
    if tag in NO_SYNONYMS:
        return None
    words = lemma.split(" ")
    # Nouns inflect their head (last word), verbs their first: "motion pictures", "gave up".
    noun = tag.startswith("NN")
    k = len(words) - 1 if noun else 0
    head = words[k]
    pos = "n" if noun else "v"
    if tag not in ("NNS", "NNPS", "VBZ", "VBD", "VBN", "VBG"):
        return lemma
    # Third person singular has no exception list; the others come from WordNet's.
    forms = irregular(head.lower(), pos) if irregular is not None and tag != "VBZ" else ()
    form = _pick(forms, tag) if forms else None
    if form is None:
        if tag == "VBZ" and head.endswith("o"):
            form = head + "es"
        elif tag in ("NNS", "NNPS", "VBZ"):
            form = _plural(head)
        elif tag == "VBG":
            form = _gerund(head)
        else:
            form = _past(head)
    words[k] = form
    return " ".join(words)
