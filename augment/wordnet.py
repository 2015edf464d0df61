"""WordNet synonyms, offline, with a per-(word, part of speech) cache.

WordNet comes from Debian's `wordnet-base` through `assay.resources.wordnet()` (which
copies it into an NLTK data dir and generates the files NLTK also needs). Lookups are
memoised for the life of the process, so a second pass over the same vocabulary costs
one dict lookup per word.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache

_KEEP = re.compile(r"^[a-z][a-z' -]*$")
_lock = threading.Lock()


class WordNetSynonyms:
    """Synonyms of a word for one WordNet part of speech (n, v, a, r), or any if None.

    Lemma names come in WordNet's sense order (most frequent sense first), with
    underscores as spaces, the word itself and non-alphabetic names left out.
    """

    def __init__(self, wordnet=None) -> None:
        if wordnet is None:
            from assay.resources import wordnet as load

            wordnet = load()
        self.wn = wordnet
        self._cache: dict[tuple[str, str | None], tuple[str, ...]] = {}

    def __call__(self, word: str, pos: str | None = None) -> tuple[str, ...]:
        key = (word, pos)
        found = self._cache.get(key)
        if found is None:
            found = self._lookup(word, pos)
            self._cache[key] = found
        return found

    def _lookup(self, word: str, pos: str | None) -> tuple[str, ...]:
        lower = word.lower()
        seen = {lower}
        out: list[str] = []
        # NLTK's reader is not safe for concurrent first loads of its lazy tables.
        with _lock:
            synsets = self.wn.synsets(lower, pos=pos)
        for synset in synsets:
            for name in synset.lemma_names():
                name = name.replace("_", " ")
                low = name.lower()
                if low in seen or not _KEEP.match(low):
                    continue
                seen.add(low)
                out.append(name)
        return tuple(out)


@lru_cache(maxsize=1)
def default_synonyms() -> WordNetSynonyms:
    """The process-wide synonym table (its cache is what makes later passes warm)."""
    return WordNetSynonyms()
