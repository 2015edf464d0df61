"""WordNet synonyms, offline, with a per-(word, part of speech) cache.

WordNet comes from Debian's `wordnet-base` (see `assay.resources`). Two readers give the
same synonyms in the same order:

- `WordNetIndex` (the default) reads only what synonyms need (lemma -> synsets -> lemma
  names, and the morphology exception lists) straight from the WordNet files, and keeps
  it as a pickle next to them: loading takes a fraction of a second, against several for
  NLTK's reader, and a lookup is a few dict gets plus WordNet's morphy rules.
- `WordNetSynonyms` asks NLTK's reader (`assay.resources.wordnet()`).

Lookups are memoised for the life of the process, so a second pass over the same
vocabulary costs one dict lookup per word.
"""

from __future__ import annotations

import logging
import pickle
import re
import threading
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

_KEEP = re.compile(r"^[a-z][a-z' -]*$")
_lock = threading.Lock()


class WordNetSynonyms:
    """Synonyms of a word for one WordNet part of speech (n, v, a, r), or any if None.

    Lemma names come in WordNet's sense order (most frequent sense first), with
    underscores as spaces, the word itself and non-alphabetic names left out.
    """

    def __init__(self, wordnet=None) -> None:
        if wordnet is None:
            from assay.wordnet_data import wordnet as load

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


POS_FILES = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}
# WordNet's detachment rules (morphy), as NLTK applies them: once, then keep the forms
# that are lemmas of that part of speech.
SUBSTITUTIONS = {
    "n": [
        ("s", ""),
        ("ses", "s"),
        ("ves", "f"),
        ("xes", "x"),
        ("zes", "z"),
        ("ches", "ch"),
        ("shes", "sh"),
        ("men", "man"),
        ("ies", "y"),
    ],
    "v": [
        ("s", ""),
        ("ies", "y"),
        ("es", "e"),
        ("es", ""),
        ("ed", "e"),
        ("ed", ""),
        ("ing", "e"),
        ("ing", ""),
    ],
    "a": [("er", ""), ("est", ""), ("er", "e"), ("est", "e")],
    "r": [],
}
_MARKER = re.compile(r"\([a-z]+\)$")  # adjective position markers: "galore(ip)"
_FORMAT = 1


def _read_tables(corpus: Path) -> dict:
    """lemma -> synset offsets, offset -> lemma names, and exceptions, per part of speech."""
    index: dict[str, dict[str, tuple[int, ...]]] = {}
    names: dict[str, dict[int, tuple[str, ...]]] = {}
    exceptions: dict[str, dict[str, tuple[str, ...]]] = {}
    for pos, suffix in POS_FILES.items():
        table: dict[str, tuple[int, ...]] = {}
        with open(corpus / f"index.{suffix}", encoding="utf-8") as f:
            for line in f:
                if line.startswith(" "):
                    continue
                parts = line.split()
                n = int(parts[2])
                table[parts[0]] = tuple(int(x) for x in parts[-n:])
        index[pos] = table
        synsets: dict[int, tuple[str, ...]] = {}
        with open(corpus / f"data.{suffix}", encoding="utf-8") as f:
            for line in f:
                if line.startswith(" "):
                    continue
                parts = line.split(" ", 4 + 2 * 64)
                n = int(parts[3], 16)
                words = parts[4 : 4 + 2 * n : 2]
                synsets[int(parts[0])] = tuple(_MARKER.sub("", w) for w in words)
        names[pos] = synsets
        exc: dict[str, tuple[str, ...]] = {}
        with open(corpus / f"{suffix}.exc", encoding="utf-8") as f:
            for line in f:
                terms = line.split()
                if terms:
                    exc[terms[0]] = tuple(terms[1:])
        exceptions[pos] = exc
    return {"format": _FORMAT, "index": index, "names": names, "exceptions": exceptions}


def _load_tables(corpus: Path) -> dict:
    """The tables, from a pickle in assay's home (built from the files on first use)."""
    from assay.resources import home

    stamp = "-".join(str(int((corpus / f"data.{s}").stat().st_size)) for s in POS_FILES.values())
    cache = home() / f"wordnet-synonyms-{stamp}.pickle"
    if cache.exists():
        try:
            with open(cache, "rb") as f:
                tables = pickle.load(f)
            if tables.get("format") == _FORMAT:
                return tables
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError) as exc:
            log.warning("rebuilding the WordNet synonym tables (%s)", exc)
    tables = _read_tables(corpus)
    from assay.atomic import write_bytes

    try:
        write_bytes(cache, pickle.dumps(tables, protocol=pickle.HIGHEST_PROTOCOL))
    except OSError as exc:  # a read-only home still works, only slower to start
        log.warning("could not keep the WordNet synonym tables at %s: %s", cache, exc)
    return tables


class WordNetIndex:
    """Synonyms straight from the WordNet files: NLTK's `synsets(word, pos)` lemma names,
    in the same order, without loading NLTK's reader."""

    def __init__(self, corpus: Path | None = None) -> None:
        if corpus is None:
            from assay.errors import ResourceError
            from assay.wordnet_data import wordnet_dir, wordnet_source

            # Debian's files serve as they are (only NLTK needs the prepared copy).
            try:
                corpus = wordnet_source()
            except ResourceError:
                corpus = wordnet_dir() / "corpora" / "wordnet"
        tables = _load_tables(Path(corpus))
        self.index = tables["index"]
        self.names = tables["names"]
        self.exceptions = tables["exceptions"]
        self._cache: dict[tuple[str, str | None], tuple[str, ...]] = {}
        self._irregular: dict[str, dict[str, tuple[str, ...]]] = {}

    def irregular(self, base: str, pos: str) -> tuple[str, ...]:
        """Irregular inflected forms of a lemma ("goose", "n" -> "geese"), from the
        exception lists read backwards."""
        table = self._irregular.get(pos)
        if table is None:
            built: dict[str, list[str]] = {}
            for form, bases in self.exceptions.get(pos, {}).items():
                for b in bases:
                    built.setdefault(b, []).append(form)
            table = {b: tuple(forms) for b, forms in built.items()}
            self._irregular[pos] = table
        return table.get(base, ())

    def morphy(self, form: str, pos: str) -> list[str]:
        """Base forms of `form` that are WordNet lemmas of `pos` (NLTK's `_morphy`)."""
        index = self.index[pos]
        exc = self.exceptions[pos].get(form)
        if exc is not None:
            forms = [form, *exc]
        else:
            forms = [form] + [
                form[: -len(old)] + new for old, new in SUBSTITUTIONS[pos] if form.endswith(old)
            ]
        out: list[str] = []
        for f in forms:
            if f in index and f not in out:
                out.append(f)
        return out

    def synsets(self, word: str, pos: str | None = None) -> list[tuple[str, ...]]:
        """Lemma names of each synset of `word`, in NLTK's order."""
        word = word.lower().replace(" ", "_")
        out = []
        for p in [pos] if pos else list(POS_FILES):
            index, names = self.index[p], self.names[p]
            for form in self.morphy(word, p):
                out.extend(names[o] for o in index[form])
        return out

    def __call__(self, word: str, pos: str | None = None) -> tuple[str, ...]:
        key = (word, pos)
        found = self._cache.get(key)
        if found is None:
            lower = word.lower()
            seen = {lower}
            syns: list[str] = []
            for lemma_names in self.synsets(lower, pos):
                for name in lemma_names:
                    name = name.replace("_", " ")
                    low = name.lower()
                    if low in seen or not _KEEP.match(low):
                        continue
                    seen.add(low)
                    syns.append(name)
            found = tuple(syns)
            self._cache[key] = found
        return found


@lru_cache(maxsize=1)
def default_synonyms() -> WordNetIndex:
    """The process-wide synonym table (its cache is what makes later passes warm)."""
    return WordNetIndex()
