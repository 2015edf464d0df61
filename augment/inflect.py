"""Inflect a WordNet lemma to the form of the word it replaces ("films" -> "movies").

WordNet gives synonyms as lemmas; put in place of "films" or "contrived" they would break
the sentence ("movie", "devise"). The Penn tag of the replaced word says which form is
needed. Which words are irregular comes from WordNet's own exception lists (read
backwards: the lists map "geese" to "goose"), but the lists do not say which form is which
("went" and "gone" both map to "go"), so the form itself comes from lemminflect when it is
installed, else from a table of common irregular verbs. Regular forms follow English
spelling rules. Comparatives and superlatives are not inflected (no synonyms are offered
for them).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

_VOWELS = set("aeiou")
BASE_TAGS = frozenset({"NN", "NNP", "VB", "VBP", "JJ", "RB", "FW", "UH", ""})
NO_SYNONYMS = frozenset({"JJR", "JJS", "RBR", "RBS"})
# (base, WordNet pos) -> irregular inflected forms, e.g. ("goose", "n") -> ("geese",).
Irregular = Callable[[str, str], tuple[str, ...]]


# base -> (past, past participle), used when lemminflect is not installed.
IRREGULAR_VERBS: dict[str, tuple[str, str]] = {
    "be": ("was", "been"), "have": ("had", "had"), "do": ("did", "done"),
    "go": ("went", "gone"), "run": ("ran", "run"), "show": ("showed", "shown"),
    "take": ("took", "taken"), "give": ("gave", "given"), "see": ("saw", "seen"),
    "make": ("made", "made"), "come": ("came", "come"), "get": ("got", "gotten"),
    "know": ("knew", "known"), "think": ("thought", "thought"),
    "write": ("wrote", "written"), "begin": ("began", "begun"),
    "break": ("broke", "broken"), "choose": ("chose", "chosen"), "eat": ("ate", "eaten"),
    "fall": ("fell", "fallen"), "become": ("became", "become"), "bring": ("brought", "brought"),
    "buy": ("bought", "bought"), "catch": ("caught", "caught"), "drink": ("drank", "drunk"),
    "drive": ("drove", "driven"), "feel": ("felt", "felt"), "find": ("found", "found"),
    "fly": ("flew", "flown"), "forget": ("forgot", "forgotten"), "grow": ("grew", "grown"),
    "hear": ("heard", "heard"), "hide": ("hid", "hidden"), "hold": ("held", "held"),
    "keep": ("kept", "kept"), "leave": ("left", "left"), "lose": ("lost", "lost"),
    "meet": ("met", "met"), "pay": ("paid", "paid"), "ride": ("rode", "ridden"),
    "rise": ("rose", "risen"), "say": ("said", "said"), "sell": ("sold", "sold"),
    "send": ("sent", "sent"), "sing": ("sang", "sung"), "sit": ("sat", "sat"),
    "sleep": ("slept", "slept"), "speak": ("spoke", "spoken"), "spend": ("spent", "spent"),
    "stand": ("stood", "stood"), "steal": ("stole", "stolen"), "swim": ("swam", "swum"),
    "teach": ("taught", "taught"), "tell": ("told", "told"), "throw": ("threw", "thrown"),
    "understand": ("understood", "understood"), "wake": ("woke", "woken"),
    "wear": ("wore", "worn"), "win": ("won", "won"), "draw": ("drew", "drawn"),
    "forgive": ("forgave", "forgiven"), "shake": ("shook", "shaken"), "tear": ("tore", "torn"),
}  # fmt: skip


@lru_cache(maxsize=1)
def _lemminflect() -> Callable[..., tuple[str, ...]] | None:
    try:
        from lemminflect import getInflection
    except ImportError:
        return None
    return getInflection


def exact_form(base: str, tag: str) -> str | None:
    """The form of `base` that `tag` asks for, from lemminflect or the table; None if unknown."""
    get = _lemminflect()
    if get is not None:
        found = get(base, tag=tag, inflect_oov=False)
        return found[0] if found else None
    if tag in ("VBD", "VBN") and base in IRREGULAR_VERBS:
        return IRREGULAR_VERBS[base][0 if tag == "VBD" else 1]
    return None


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
    # An irregular word: the exact form for the tag, else the listed form that fits best.
    form = (exact_form(head.lower(), tag) or _pick(forms, tag)) if forms else None
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
