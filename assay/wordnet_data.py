"""WordNet 3.0 offline: Debian's `wordnet-base` files made into an NLTK data directory
(with the `lexnames` and `index.sense` files NLTK also needs), and NLTK's reader on it.

`python -m assay.resources prepare` (run by `scripts/setup.sh`) prepares it ahead of time;
otherwise the first use does.
"""

from __future__ import annotations

import gzip
import re
import shutil
from pathlib import Path

from assay.errors import ResourceError
from assay.resources import SETUP, home

WORDNET_SOURCE = Path("/usr/share/wordnet")
WORDNET_FILES = re.compile(
    r"^(adj|adv|noun|verb)\.exc$|^(data|index)\.\w+$|^cntlist(\.rev)?$|\.vrb$"
)


def wordnet_dir() -> Path:
    """The NLTK data dir holding WordNet 3.0; prepared from Debian's wordnet-base."""
    target = home() / "nltk_data"
    if not (target / "corpora" / "wordnet" / "lexnames").exists():
        prepare_wordnet(target)
    return target


def prepare_wordnet(target: Path | None = None, source: Path = WORDNET_SOURCE) -> Path:
    """Copy Debian's WordNet files into an NLTK data dir and generate what NLTK also needs."""
    target = target or home() / "nltk_data"
    source = wordnet_source(source)
    corpus = target / "corpora" / "wordnet"
    corpus.mkdir(parents=True, exist_ok=True)
    # Copies, not links: NLTK rejects links that leave its data root.
    for f in sorted(source.iterdir()):
        if WORDNET_FILES.search(f.name):
            shutil.copyfile(f, corpus / f.name)
    if not (corpus / "index.sense").exists():
        _write_index_sense(corpus)
    _write_lexnames(corpus / "lexnames")
    return target


def wordnet_source(source: Path = WORDNET_SOURCE) -> Path:
    """Debian's WordNet 3.0 database files (package wordnet-base)."""
    if not (source / "data.noun").exists():
        raise ResourceError(
            f"WordNet is not installed ({source} is missing): apt-get install wordnet-base "
            f"(or run {SETUP})"
        )
    return source


def _write_lexnames(path: Path) -> None:
    """Debian ships lexnames only as a man page; NLTK needs the table as a file."""
    man = Path("/usr/share/man/man5/lexnames.5WN.gz")
    categories = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}
    names: list[str] = []
    if man.exists():
        with gzip.open(man, "rt", encoding="utf-8", errors="replace") as f:
            for line in f:
                m = re.match(r"^(\d\d)\t(\w+\.\w+)\s*\t", line)
                if m:
                    names.append(m.group(2))
    if len(names) != 45:
        names = _LEXNAMES
    lines = [f"{i:02d}\t{n}\t{categories[n.split('.')[0]]}" for i, n in enumerate(names)]
    path.write_text("\n".join(lines) + "\n")


def _write_index_sense(corpus: Path) -> None:
    """Rebuild index.sense (sense key -> synset offset) from the data files.

    Debian's wordnet-base omits it; NLTK reads it at load. Format per line:
    `lemma%ss_type:lex_filenum:lex_id:head_word:head_id offset sense_number tag_cnt`.
    Sense numbers and tag counts come from the index files' synset order.
    """
    pos_type = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
    order: dict[tuple[str, str], int] = {}  # (lemma, offset) -> sense number
    for pos in pos_type:
        with open(corpus / f"index.{pos}", encoding="utf-8") as f:
            for line in f:
                if line.startswith(" "):
                    continue
                parts = line.split()
                lemma, n_synsets = parts[0], int(parts[2])
                offsets = parts[-n_synsets:]
                for k, off in enumerate(offsets, 1):
                    order[(lemma, off)] = k
    entries: list[str] = []
    for pos, ss_base in pos_type.items():
        with open(corpus / f"data.{pos}", encoding="utf-8") as f:
            for line in f:
                if line.startswith(" "):
                    continue
                parts = line.split()
                offset, lex_filenum, ss_type = parts[0], parts[1], parts[2]
                n_words = int(parts[3], 16)
                words = [(parts[4 + 2 * i], int(parts[5 + 2 * i], 16)) for i in range(n_words)]
                head_word, head_id = "", ""
                if ss_type == "s":
                    head_word, head_id = _satellite_head(parts, n_words, corpus)
                ss_num = 5 if ss_type == "s" else ss_base
                for word, lex_id in words:
                    lemma = re.sub(r"\([a-z]+\)$", "", word).lower()
                    key = f"{lemma}%{ss_num}:{lex_filenum}:{lex_id:02d}:{head_word}:{head_id}"
                    sense = order.get((lemma, offset), 0)
                    entries.append(f"{key} {offset} {sense} 0")
    entries.sort()
    (corpus / "index.sense").write_text("\n".join(entries) + "\n", encoding="utf-8")


_ADJ_HEADS: dict[str, tuple[str, str]] = {}


def _satellite_head(parts: list[str], n_words: int, corpus: Path) -> tuple[str, str]:
    """The head adjective of a satellite synset: the `&` (similar-to) pointer's first word."""
    i = 4 + 2 * n_words
    n_ptrs = int(parts[i])
    for p in range(n_ptrs):
        sym, off, pos = parts[i + 1 + 4 * p], parts[i + 2 + 4 * p], parts[i + 3 + 4 * p]
        if sym == "&" and pos == "a":
            if not _ADJ_HEADS:
                with open(corpus / "data.adj", encoding="utf-8") as f:
                    for line in f:
                        if line.startswith(" "):
                            continue
                        q = line.split()
                        if q[2] == "a":
                            _ADJ_HEADS[q[0]] = (
                                re.sub(r"\([a-z]+\)$", "", q[4]).lower(),
                                f"{int(q[5], 16):02d}",
                            )
            return _ADJ_HEADS.get(off, ("", ""))
    return "", ""


_LEXNAMES = [
    "adj.all",
    "adj.pert",
    "adv.all",
    "noun.Tops",
    "noun.act",
    "noun.animal",
    "noun.artifact",
    "noun.attribute",
    "noun.body",
    "noun.cognition",
    "noun.communication",
    "noun.event",
    "noun.feeling",
    "noun.food",
    "noun.group",
    "noun.location",
    "noun.motive",
    "noun.object",
    "noun.person",
    "noun.phenomenon",
    "noun.plant",
    "noun.possession",
    "noun.process",
    "noun.quantity",
    "noun.relation",
    "noun.shape",
    "noun.state",
    "noun.substance",
    "noun.time",
    "verb.body",
    "verb.change",
    "verb.cognition",
    "verb.communication",
    "verb.competition",
    "verb.consumption",
    "verb.contact",
    "verb.creation",
    "verb.emotion",
    "verb.motion",
    "verb.perception",
    "verb.possession",
    "verb.social",
    "verb.stative",
    "verb.weather",
    "adj.ppl",
]


def wordnet():
    """NLTK's WordNet reader over the prepared data dir."""
    from assay.errors import require

    require("nltk", "dev", "NLTK's WordNet reader")
    import nltk

    root = str(wordnet_dir())
    if root not in nltk.data.path:
        nltk.data.path.insert(0, root)
    from nltk.corpus import wordnet as wn

    wn.ensure_loaded()
    return wn
