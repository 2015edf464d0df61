"""An offline part-of-speech tagger: Brill's lexicon as shipped in the `textblob` wheel.

`LexiconTagger` gives the same Penn tags as TextBlob's `PatternTagger` on a tokenised
sentence (lexicon lookup, NNP for unknown capitalised words, CD for numbers, then suffix
rules), but caches the tag of every distinct token, so tagging a batch costs one dict
lookup per token. It needs no NLTK data, which `nltk.pos_tag` would download.

`contextual` adds what PatternTagger leaves out: Brill's contextual rules (shipped in the
same wheel), which fix the lexicon's most-frequent tag from the neighbours ("it bores
me": NNS -> VBZ). They are applied to one position at a time, with the neighbours'
lexicon tags, so callers pay for them only where a word is about to be edited.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

_NUMBER = re.compile(r"^[0-9\-\,\.\:\/\%\$]+$")
_ADJ_SUFFIXES = ("able", "al", "ful", "ible", "ient", "ish", "ive", "less", "tic", "ous")

# Penn tag prefix -> WordNet part of speech. Tags outside these get no synonyms.
WORDNET_POS = {"NN": "n", "VB": "v", "JJ": "a", "RB": "r"}


def wordnet_pos(tag: str) -> str | None:
    """The WordNet POS (n, v, a, r) of a Penn tag, or None for closed classes."""
    return WORDNET_POS.get(tag[:2])


@lru_cache(maxsize=1)
def _lexicon() -> dict[str, str]:
    from assay.augment.base import package_file

    path = package_file("textblob", "en", "en-lexicon.txt", purpose="the offline POS tagger")
    text = path.read_text(encoding="utf-8")
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


PAD = "STAART"
# Brill's rule templates as pattern implements them, compiled once per rule. `w` and `t`
# are the words and tags of a 7-token window centred on the word (index 3).
_TEMPLATES: dict[str, Callable[[str, str], Callable[[list[str], list[str]], bool]]] = {
    "prevtag": lambda x, y: lambda w, t: t[2] == x,
    "nexttag": lambda x, y: lambda w, t: t[4] == x,
    "prev2tag": lambda x, y: lambda w, t: t[1] == x,
    "next2tag": lambda x, y: lambda w, t: t[5] == x,
    "prev1or2tag": lambda x, y: lambda w, t: t[2] == x or t[1] == x,
    "next1or2tag": lambda x, y: lambda w, t: t[4] == x or t[5] == x,
    "prev1or2or3tag": lambda x, y: lambda w, t: x in (t[0], t[1], t[2]),
    "next1or2or3tag": lambda x, y: lambda w, t: x in (t[4], t[5], t[6]),
    "surroundtag": lambda x, y: lambda w, t: t[2] == x and t[4] == y,
    "curwd": lambda x, y: lambda w, t: w[3] == x,
    "prevwd": lambda x, y: lambda w, t: w[2] == x,
    "nextwd": lambda x, y: lambda w, t: w[4] == x,
    "prev1or2wd": lambda x, y: lambda w, t: w[2] == x or w[1] == x,
    "next1or2wd": lambda x, y: lambda w, t: w[4] == x or w[5] == x,
    "prev1or2or3wd": lambda x, y: lambda w, t: x in (w[0], w[1], w[2]),
    "next1or2or3wd": lambda x, y: lambda w, t: x in (w[4], w[5], w[6]),
    "prevwdtag": lambda x, y: lambda w, t: w[2] == x and t[2] == y,
    "nextwdtag": lambda x, y: lambda w, t: w[4] == x and t[4] == y,
    "wdprevtag": lambda x, y: lambda w, t: t[2] == x and w[3] == y,
    "wdnexttag": lambda x, y: lambda w, t: w[3] == x and t[4] == y,
    "wdand2aft": lambda x, y: lambda w, t: w[3] == x and w[5] == y,
    "wdand2tagbfr": lambda x, y: lambda w, t: t[1] == x and w[3] == y,
    "wdand2tagaft": lambda x, y: lambda w, t: w[3] == x and t[5] == y,
    "lbigram": lambda x, y: lambda w, t: w[2] == x and w[3] == y,
    "rbigram": lambda x, y: lambda w, t: w[3] == x and w[4] == y,
    "prevbigram": lambda x, y: lambda w, t: t[1] == x and t[2] == y,
    "nextbigram": lambda x, y: lambda w, t: t[4] == x and t[5] == y,
}
# Most templates require one slot of the window to equal the rule's x (or y): rules are
# indexed by that (kind, slot, value), so a lookup finds the few rules worth checking.
_KEYS: dict[str, tuple[str, int, int]] = {  # template -> (w/t, slot, 0 for x / 1 for y)
    "prevtag": ("t", 2, 0),
    "nexttag": ("t", 4, 0),
    "prev2tag": ("t", 1, 0),
    "next2tag": ("t", 5, 0),
    "surroundtag": ("t", 2, 0),
    "curwd": ("w", 3, 0),
    "prevwd": ("w", 2, 0),
    "nextwd": ("w", 4, 0),
    "prevwdtag": ("w", 2, 0),
    "nextwdtag": ("w", 4, 0),
    "wdprevtag": ("w", 3, 1),
    "wdnexttag": ("w", 3, 0),
    "wdand2aft": ("w", 3, 0),
    "wdand2tagbfr": ("w", 3, 1),
    "wdand2tagaft": ("w", 3, 0),
    "lbigram": ("w", 3, 1),
    "rbigram": ("w", 3, 0),
    "prevbigram": ("t", 2, 1),
    "nextbigram": ("t", 4, 0),
}
Condition = Callable[[list[str], list[str]], bool]
Rule = tuple[int, str, Condition]  # (order, to tag, condition)


class RuleSet:
    """The contextual rules of one source tag: indexed ones and ones to scan."""

    def __init__(self) -> None:
        self.index: dict[tuple[str, int, str], list[Rule]] = {}
        self.scan: list[Rule] = []


@lru_cache(maxsize=1)
def context_rules() -> dict[str, RuleSet]:
    """Brill's contextual rules (TextBlob's `en-context.txt`), by the tag they change; read
    once per process, so a caller timing setup can load them ahead."""
    from assay.augment.base import package_file

    path = package_file("textblob", "en", "en-context.txt", purpose="the contextual POS rules")
    rules: dict[str, RuleSet] = {}
    order = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) < 4 or line.startswith(";;;"):
            continue
        cmd = parts[2].lower()
        template = _TEMPLATES.get(cmd)
        if template is None:
            continue
        x, y = parts[3], parts[4] if len(parts) > 4 else ""
        rule = (order, parts[1], template(x, y))
        order += 1
        group = rules.setdefault(parts[0], RuleSet())
        key = _KEYS.get(cmd)
        if key is None:
            group.scan.append(rule)
        else:
            kind, slot, which = key
            group.index.setdefault((kind, slot, (x, y)[which]), []).append(rule)
    return rules


def contextual_window(w: list[str], t: list[str]) -> str:
    """The tag of the middle word of a 7-token window (words `w`, lexicon tags `t`,
    padded with "STAART") after Brill's contextual rules: the last matching rule wins."""
    tag = t[3]
    group = context_rules().get(tag)
    if group is None:
        return tag
    best = -1
    index = group.index
    if index:
        for kind, seq in (("t", t), ("w", w)):
            for slot in range(7):
                found = index.get((kind, slot, seq[slot]))
                if found:
                    for order, dst, cond in found:
                        if order > best and cond(w, t):
                            best, tag = order, dst
    for order, dst, cond in group.scan:
        if order > best and cond(w, t):
            best, tag = order, dst
    return tag


def contextual(words: list[str], tags: list[str], i: int) -> str:
    """The tag of position `i` after Brill's contextual rules, given the sentence's words
    and lexicon tags (as pattern does, but for one position)."""
    n = len(words)
    idx = range(i - 3, i + 4)
    w = [words[j] if 0 <= j < n else PAD for j in idx]
    t = [tags[j] if 0 <= j < n else PAD for j in idx]
    return contextual_window(w, t)


@lru_cache(maxsize=1)
def default_tagger() -> LexiconTagger:
    return LexiconTagger()
