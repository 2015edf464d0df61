"""Word-level edit operations and the per-token table they read.

Texts are split on whitespace; each token is (leading punctuation, word, trailing
punctuation), so "film," keeps its comma when "film" is replaced. Everything the
operations need about a token (its parts, part of speech, synonyms, whether it may be
edited) is computed once per distinct token and cached in a `WordTable`: a batch pays
for WordNet and the tagger once per vocabulary word, not once per occurrence.

The operations take the tokens, their table entries, an edit count and a uniform draw
function, and return new tokens or None when nothing could be edited.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from assay.augment.base import Draw, Protected, match_case, split_token

if TYPE_CHECKING:
    from assay.augment.tagger import LexiconTagger

# Wei & Zou (2019) stop words: never replaced, never a source of inserted synonyms.
_STOP_WORDS = """i me my myself we our ours ourselves you your yours yourself yourselves he
him his himself she her hers herself it its itself they them their theirs themselves what
which who whom this that these those am is are was were be been being have has had having
do does did doing a an the and but if or because as until while of at by for with about
against between into through during before after above below to from up down in out on off
over under again further then once here there when where why how all any both each few more
most other some such no nor not only own same so than too very s t can will just don should
now"""
STOP_WORDS = frozenset(_STOP_WORDS.split())
# Deleting or replacing a negation flips the meaning of most sentences.
_NEGATIONS = "not no never nor n't cannot without nothing nobody none neither nowhere"
NEGATIONS = frozenset(_NEGATIONS.split())

# Entry fields, kept as a tuple because the operations index it in tight loops.
PREFIX, WORD, SUFFIX, LOWER, SYNONYMS, IS_WORD, EDITABLE, TAG = range(8)
Entry = tuple[str, str, str, str, tuple[str, ...], bool, bool, str]
Synonyms = Callable[[str, "str | None"], tuple[str, ...]]
# Synonyms of the word at a position, in its sentence (after contextual tagging).
SynonymsAt = Callable[[list[Entry], int], tuple[str, ...]]


class WordTable:
    """Per distinct token: its parts, synonyms for its part of speech, edit permissions.

    `synonyms(word, pos)` gives candidates (WordNet by default); `tagger` gives the Penn
    tag that picks the WordNet part of speech. Without a tagger, synonyms of every part
    of speech are used (as in Wei & Zou's eda.py). The cached entry holds the synonyms
    for the word's lexicon tag; `synonyms_at` corrects them from the sentence context
    (Brill's contextual rules) for a word about to be edited.
    """

    def __init__(
        self,
        synonyms: Synonyms | None = None,
        tagger: LexiconTagger | None = None,
        *,
        protected: Protected | None = None,
        stop_words: frozenset[str] = STOP_WORDS,
        keep_negations: bool = True,
    ) -> None:
        self.synonyms = synonyms
        self.tagger = tagger
        self.protected = protected or Protected([])
        self.stop_words = stop_words
        self.keep = NEGATIONS if keep_negations else frozenset()
        self._cache: dict[str, Entry] = {}
        self._first: dict[str, Entry] = {}
        self._inflected: dict[tuple[str, str], tuple[str, ...]] = {}

    def entry(self, token: str, first: bool = False) -> Entry:
        cache = self._first if first else self._cache
        found = cache.get(token)
        if found is None:
            found = self._entry(token, first)
            cache[token] = found
        return found

    def _entry(self, token: str, first: bool) -> Entry:

        prefix, word, suffix = split_token(token)
        lower = word.lower()
        is_word = any(c.isalnum() for c in word)
        editable = is_word and lower not in self.protected.words and lower not in self.keep
        syns: tuple[str, ...] = ()
        tag = ""
        if self.tagger is not None:
            tag = self.tagger.tag_token(word or token, first)
        if editable and self.synonyms is not None and lower not in self.stop_words:
            if self.tagger is not None:
                syns = self.inflected(lower, tag)
            else:
                syns = self.synonyms(lower, None)
        return (prefix, word, suffix, lower, syns, is_word, editable, tag)

    def inflected(self, lower: str, tag: str) -> tuple[str, ...]:
        """Synonyms of `lower` for the part of speech of `tag`, in the form `tag` asks
        for ("films"/NNS -> "movies"), without the word itself."""
        key = (lower, tag)
        found = self._inflected.get(key)
        if found is None:
            from assay.augment.inflect import inflect
            from assay.augment.tagger import wordnet_pos

            pos = wordnet_pos(tag)
            out: list[str] = []
            if pos and self.synonyms is not None:
                irregular = getattr(self.synonyms, "irregular", None)
                for lemma in self.synonyms(lower, pos):
                    form = inflect(lemma, tag, irregular)
                    if form is not None and form.lower() != lower and form not in out:
                        out.append(form)
            found = tuple(out)
            self._inflected[key] = found
        return found

    def synonyms_at(self, entries: list[Entry], i: int) -> tuple[str, ...]:
        """Synonyms of the word at `i` for its part of speech in this sentence."""
        e = entries[i]
        if self.tagger is None or self.synonyms is None:
            return e[SYNONYMS]
        from assay.augment.tagger import PAD, contextual_window

        n = len(entries)
        w: list[str] = []
        t: list[str] = []
        for j in range(i - 3, i + 4):
            if 0 <= j < n:
                x = entries[j]
                w.append(x[WORD] or x[PREFIX])
                t.append(x[TAG])
            else:
                w.append(PAD)
                t.append(PAD)
        tag = contextual_window(w, t)
        if tag == e[TAG]:
            return e[SYNONYMS]
        return self.inflected(e[LOWER], tag)

    def entries(self, tokens: list[str]) -> list[Entry]:
        if not tokens:
            return []
        cache = self._cache
        get = cache.get
        out = [self.entry(tokens[0], True)]
        for tok in tokens[1:]:
            e = get(tok)
            if e is None:
                e = self.entry(tok)
            out.append(e)
        if self.protected.phrases:
            mask = self.protected.mask([e[LOWER] for e in out])
            out = [
                (e[0], e[1], e[2], e[3], (), e[5], False, e[7]) if m else e
                for e, m in zip(out, mask, strict=True)
            ]
        return out


_TABLES: dict[tuple, WordTable] = {}
_MAX_TABLES = 8


def shared_table(
    synonyms: Synonyms | None,
    tagger: LexiconTagger | None,
    protected: list[str],
    keep_negations: bool = True,
) -> WordTable:
    """A process-wide WordTable per configuration, so its per-token cache outlives one
    step run (a recipe rerun or an ablation variant finds it warm)."""
    key = (id(synonyms), id(tagger), tuple(protected), keep_negations)
    table = _TABLES.get(key)
    if table is None:
        if len(_TABLES) >= _MAX_TABLES:
            _TABLES.pop(next(iter(_TABLES)))
        table = WordTable(
            synonyms, tagger, protected=Protected(protected), keep_negations=keep_negations
        )
        _TABLES[key] = table
    return table


def replace(
    tokens: list[str], entries: list[Entry], n: int, draw: Draw, at: SynonymsAt | None = None
) -> list[str] | None:
    """Synonym replacement: n distinct words that have synonyms get a random synonym.

    `at(entries, i)` (the table's `synonyms_at`) re-checks the part of speech of each
    drawn word in context; a word left without synonyms is passed over for the next."""
    cands = [i for i, e in enumerate(entries) if e[SYNONYMS]]
    m = len(cands)
    if min(n, m) <= 0:
        return None
    out = list(tokens)
    done = j = 0
    while done < n and j < m:
        r = j + int(draw() * (m - j))
        cands[j], cands[r] = cands[r], cands[j]
        i = cands[j]
        j += 1
        e = entries[i]
        syns = at(entries, i) if at is not None else e[SYNONYMS]
        if not syns:
            continue
        out[i] = e[PREFIX] + match_case(e[WORD], syns[int(draw() * len(syns))]) + e[SUFFIX]
        done += 1
    return out if done else None


def insert(
    tokens: list[str], entries: list[Entry], n: int, draw: Draw, at: SynonymsAt | None = None
) -> list[str] | None:
    """Random insertion: n times, a synonym of a random word goes to a random position."""
    cands = [i for i, e in enumerate(entries) if e[SYNONYMS]]
    if not cands or n <= 0:
        return None
    out = list(tokens)
    done = 0
    for _ in range(3 * n):  # a word may lose its synonyms in context: draw another
        i = cands[int(draw() * len(cands))]
        syns = at(entries, i) if at is not None else entries[i][SYNONYMS]
        if not syns:
            continue
        out.insert(int(draw() * (len(out) + 1)), syns[int(draw() * len(syns))])
        done += 1
        if done == n:
            break
    return out if done else None


def swap(
    tokens: list[str], entries: list[Entry], n: int, draw: Draw, at: SynonymsAt | None = None
) -> list[str] | None:
    """Random swap: n times, two editable words trade places (punctuation stays put)."""
    pos = [i for i, e in enumerate(entries) if e[EDITABLE]]
    m = len(pos)
    if m < 2 or n <= 0:
        return None
    words = [e[WORD] for e in entries]
    for _ in range(n):
        a = int(draw() * m)
        b = int(draw() * (m - 1))
        if b >= a:
            b += 1
        ia, ib = pos[a], pos[b]
        words[ia], words[ib] = words[ib], words[ia]
    out = list(tokens)
    for i in pos:
        e = entries[i]
        out[i] = e[PREFIX] + words[i] + e[SUFFIX]
    return out


def delete(
    tokens: list[str], entries: list[Entry], n: int, draw: Draw, at: SynonymsAt | None = None
) -> list[str] | None:
    """Random deletion: n distinct editable words go (their punctuation stays); at least
    one word is always left."""
    pos = [i for i, e in enumerate(entries) if e[EDITABLE]]
    n_words = sum(1 for e in entries if e[IS_WORD])
    m = len(pos)
    k = min(n, m, n_words - 1)
    if k <= 0:
        return None
    for j in range(k):
        r = j + int(draw() * (m - j))
        pos[j], pos[r] = pos[r], pos[j]
    gone = set(pos[:k])
    out = []
    for i, tok in enumerate(tokens):
        if i in gone:
            e = entries[i]
            rest = e[PREFIX] + e[SUFFIX]
            if rest:
                out.append(rest)
        else:
            out.append(tok)
    return out


def shuffle_words(tokens: list[str], entries: list[Entry], n: int, draw: Draw) -> list[str] | None:
    """All editable words trade places at random (punctuation stays put)."""
    pos = [i for i, e in enumerate(entries) if e[EDITABLE]]
    m = len(pos)
    if m < 2:
        return None
    words = [entries[i][WORD] for i in pos]
    for _ in range(3):  # a permutation may leave the words as they were: retry
        for j in range(m - 1, 0, -1):
            r = int(draw() * (j + 1))
            words[j], words[r] = words[r], words[j]
        if any(words[j] != entries[i][WORD] for j, i in enumerate(pos)):
            break
    out = list(tokens)
    for j, i in enumerate(pos):
        e = entries[i]
        out[i] = e[PREFIX] + words[j] + e[SUFFIX]
    return out


WordOp = Callable[[list[str], list[Entry], int, Draw, "SynonymsAt | None"], "list[str] | None"]
OPS: dict[str, tuple[str, WordOp]] = {
    "synonym": ("sr", replace),
    "insert": ("ri", insert),
    "swap": ("rs", swap),
    "delete": ("rd", delete),
}
