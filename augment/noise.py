"""Character noise: keyboard typos, OCR confusions, swapped, dropped and extra letters.

Robustness augmentation: a model that meets typos in production should meet them in
training. The keyboard neighbours and OCR confusions are nlpaug's maps, shipped with assay
in `data/` (MIT; see data/LICENSE-nlpaug); nlpaug itself is not needed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field

from assay.augment.base import Draw, TextAugmenter, TextAugmenterConfig
from assay.augment.word_ops import EDITABLE, IS_WORD, PREFIX, SUFFIX, WORD, shared_table
from assay.context import RunContext
from assay.errors import ResourceError
from assay.registry import register

Action = Literal["keyboard", "ocr", "swap", "delete", "insert"]
CharMap = dict[str, tuple[str, ...]]


DATA = Path(__file__).resolve().parent / "data"


def _nlpaug_map(kind: str, lang: str) -> dict[str, list[str]]:
    base = DATA / kind
    path = base / f"{lang}.json"
    if not path.exists():
        found = sorted(p.stem for p in base.glob("*.json"))
        raise ResourceError(f"no {kind} map for {lang!r}; there are maps for {found}")
    return json.loads(path.read_text(encoding="utf-8"))


@lru_cache(maxsize=4)
def keyboard(lang: str = "en") -> CharMap:
    """Key -> neighbouring keys (lower case letters and digits), from nlpaug's map."""
    raw = _nlpaug_map("keyboard", lang)
    return {k: tuple(v for v in vs if v.isalnum()) for k, vs in raw.items() if k.isalnum()}


@lru_cache(maxsize=1)
def ocr() -> CharMap:
    """Character -> characters OCR confuses it with (0 -> o, l -> 1...), from nlpaug."""
    return {k: tuple(vs) for k, vs in _nlpaug_map("ocr", "en").items() if vs}


def typo(word: str, action: str, draw: Draw, keys: CharMap, confusions: CharMap) -> str:
    """One character-level edit of `word` (first letter kept: readers still parse it)."""
    n = len(word)
    i = 1 + int(draw() * (n - 1))
    if action == "swap":
        i = min(i, n - 2)
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if action == "delete":
        return word[:i] + word[i + 1 :]
    if action == "ocr":
        spots = [k for k in range(1, n) if word[k] in confusions]
        if not spots:
            return word
        k = spots[int(draw() * len(spots))]
        alts = confusions[word[k]]
        return word[:k] + alts[int(draw() * len(alts))] + word[k + 1 :]
    near = keys.get(word[i].lower())
    if not near:
        return word
    c = near[int(draw() * len(near))]
    if word[i].isupper():
        c = c.upper()
    if action == "insert":
        return word[: i + 1] + c + word[i + 1 :]
    return word[:i] + c + word[i + 1 :]


@register("char_noise")
class CharNoiseAugmenter(TextAugmenter):
    """Keyboard typos, OCR confusions, letter swaps, deletions and insertions in some words.

    p * words words (rounded as `rounding` says; at least `min_edits`) of `min_length`
    letters or more get one
    character edit each; the action is drawn from `actions`.
    """

    class Config(TextAugmenterConfig):
        actions: list[Action] = Field(
            default_factory=lambda: ["keyboard"],
            min_length=1,
            description="character edits to draw from: keyboard neighbour, OCR confusion, "
            "swap, delete, insert",
        )
        min_length: int = Field(3, ge=3, description="only words at least this long get typos")
        keyboard: str = Field("en", description="keyboard layout (nlpaug's maps: en, de, fr...)")

    op = "cn"

    def prepare(self, texts: list[str], ctx: RunContext) -> None:
        self.keys = keyboard(self.config.keyboard)
        self.confusions = ocr() if "ocr" in self.config.actions else {}
        self.table = shared_table(None, None, self.config.protected, keep_negations=False)

    def augment_batch(
        self, texts: list[str], n_per_row: int, draw: Draw
    ) -> Iterator[tuple[int, str, str]]:
        actions = list(self.config.actions)
        min_len = self.config.min_length
        keys, confusions = self.keys, self.confusions
        edits = self.edits
        for i, text in enumerate(texts):
            tokens = text.split()
            entries = self.table.entries(tokens)
            pos = [
                j
                for j, e in enumerate(entries)
                if e[EDITABLE] and len(e[WORD]) >= min_len and e[WORD].isalpha()
            ]
            m = len(pos)
            n_words = sum(1 for e in entries if e[IS_WORD])
            for _ in range(n_per_row):
                n = min(edits(n_words, draw), m)
                if n <= 0:
                    continue
                out = list(tokens)
                for j in range(n):
                    r = j + int(draw() * (m - j))
                    pos[j], pos[r] = pos[r], pos[j]
                    e = entries[pos[j]]
                    action = actions[int(draw() * len(actions))]
                    out[pos[j]] = (
                        e[PREFIX] + typo(e[WORD], action, draw, keys, confusions) + e[SUFFIX]
                    )
                yield i, " ".join(out), "cn"
