"""Word and sentence shuffling: order noise that keeps every word of the text."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Literal

from pydantic import Field

from assay.augment.base import Draw, TextAugmenter, TextAugmenterBaseConfig
from assay.augment.word_ops import shared_table, shuffle_words
from assay.context import RunContext
from assay.registry import register

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")


def shuffle_sentences(text: str, draw: Draw) -> str | None:
    """The text's sentences in a new random order, or None for a single sentence."""
    parts = _SENTENCE_END.split(text.strip())
    m = len(parts)
    if m < 2:
        return None
    order = list(range(m))
    for _ in range(3):  # a permutation may be the identity: retry
        for j in range(m - 1, 0, -1):
            r = int(draw() * (j + 1))
            order[j], order[r] = order[r], order[j]
        if order != sorted(order):
            break
    return " ".join(parts[i] for i in order)


@register("shuffle")
class ShuffleAugmenter(TextAugmenter):
    """Shuffle the words of a text, or its sentences, into a new random order.

    Punctuation, negations and protected terms keep their positions. Word order noise
    teaches order invariance where the label does not depend on order (topic, intent); it
    rarely suits sentiment with negation scope. There is no edit rate (`p`, `min_edits`,
    `max_edits`, `rounding` are unknown keys here): every movable word (or sentence) may
    move.
    """

    class Config(TextAugmenterBaseConfig):
        unit: Literal["word", "sentence"] = Field(
            "word", description="shuffle the words of the text, or its sentences"
        )
        keep_negations: bool = Field(True, description="negations keep their position")

    op = "sh"

    def prepare(self, texts: list[str], ctx: RunContext) -> None:
        cfg = self.config
        self.table = shared_table(None, None, cfg.protected, cfg.keep_negations)

    def augment_batch(
        self, texts: list[str], n_per_row: int, draw: Draw
    ) -> Iterator[tuple[int, str, str]]:
        by_sentence = self.config.unit == "sentence"
        tag = "ss" if by_sentence else "ws"
        entries_of = self.table.entries
        for i, text in enumerate(texts):
            if by_sentence:
                for _ in range(n_per_row):
                    out = shuffle_sentences(text, draw)
                    if out is not None:
                        yield i, out, tag
                continue
            tokens = text.split()
            entries = entries_of(tokens)
            for _ in range(n_per_row):
                words = shuffle_words(tokens, entries, 0, draw)
                if words is not None:
                    yield i, " ".join(words), tag
