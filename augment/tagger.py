"""An offline part-of-speech tagger: Brill's lexicon as shipped in the `textblob` wheel.

`LexiconTagger` gives the same Penn tags as TextBlob's `PatternTagger` on a tokenised
sentence (lexicon lookup, NNP for unknown capitalised words, CD for numbers, then suffix
rules), but caches the tag of every distinct token, so tagging a batch costs one dict
lookup per token. It needs no NLTK data, which `nltk.pos_tag` would download.
"""

from __future__ import annotations

import importlib.resources
import re
from functools import lru_cache

from assay.errors import ResourceError, require

_NUMBER = re.compile(r"^[0-9\-\,\.\:\/\%\$]+$")
_ADJ_SUFFIXES = ("able", "al", "ful", "ible", "ient", "ish", "ive", "less", "tic", "ous")

# Penn tag prefix -> WordNet part of speech. Tags outside these get no synonyms.
WORDNET_POS = {"NN": "n", "VB": "v", "JJ": "a", "RB": "r"}


def wordnet_pos(tag: str) -> str | None:
    """The WordNet POS (n, v, a, r) of a Penn tag, or None for closed classes."""
    return WORDNET_POS.get(tag[:2])


@lru_cache(maxsize=1)
def _lexicon() -> dict[str, str]:
    require("textblob", "augment", "the offline part-of-speech tagger")
    try:
        path = importlib.resources.files("textblob") / "en" / "en-lexicon.txt"
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, OSError) as exc:
        raise ResourceError(
            f"textblob's lexicon en/en-lexicon.txt could not be read ({exc}); "
            "reinstall it: pip install --force-reinstall textblob"
        ) from exc
    lexicon: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith(";;;"):
            continue
        parts = line.split(" ")
        if len(parts) >= 2:
            lexicon[parts[0]] = parts[1]
    return lexicon


def _suffix_tag(token: str) -> str:
    # The order matters: later rules win, as in pattern's English suffix rules.
    tag = "NN"
    if token.endswith("ing"):
        tag = "VBG"
    if token.endswith("ly"):
        tag = "RB"
    if token.endswith("s") and not token.endswith(("is", "ous", "ss")):
        tag = "NNS"
    if token.endswith(_ADJ_SUFFIXES) or "-" in token:
        tag = "JJ"
    if token.endswith("ed"):
        tag = "VBN"
    if token.endswith(("ate", "ify", "ise", "ize")):
        tag = "VBP"
    return tag


class LexiconTagger:
    """Penn part-of-speech tags from Brill's lexicon with pattern's fallbacks, cached."""

    def __init__(self) -> None:
        self.lexicon = _lexicon()
        self._cache: dict[str, str] = {}
        self._first: dict[str, str] = {}

    def tag_token(self, token: str, first: bool = False) -> str:
        cache = self._first if first else self._cache
        tag = cache.get(token)
        if tag is None:
            tag = self._tag(token, first)
            cache[token] = tag
        return tag

    def _tag(self, token: str, first: bool) -> str:
        lex = self.lexicon
        tag = lex.get(token)
        if tag is None and first:
            tag = lex.get(token.lower())
        if tag is not None:
            return tag
        if token.istitle():
            return "NNP"
        if _NUMBER.match(token):
            return "CD"
        return _suffix_tag(token)

    def tag(self, tokens: list[str]) -> list[str]:
        """Tags of a tokenised sentence (punctuation as separate tokens)."""
        cache, first_cache = self._cache, self._first
        out = []
        for i, tok in enumerate(tokens):
            tag = (first_cache if i == 0 else cache).get(tok)
            if tag is None:
                tag = self.tag_token(tok, i == 0)
            out.append(tag)
        return out


@lru_cache(maxsize=1)
def default_tagger() -> LexiconTagger:
    return LexiconTagger()
