"""EDA (Wei & Zou, 2019): synonym replacement, random insertion, swap and deletion.

Each augmentation applies one operation, chosen in turn from `ops` starting at a random
one per row, so every operation gets an even share, as in the paper's mix. The number
of edits is floor(p * words), at least `min_edits` (the paper's n = max(1, alpha * l)).
Differences from the paper's script, on purpose: punctuation and case are kept (the
script strips both), synonyms respect the word's part of speech, random deletion removes
exactly n words (the script deletes each word with probability p), and negations,
stop words (for replacement) and protected terms are never edited.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Literal

from pydantic import Field

from assay.augment.base import Draw, TextAugmenter, TextAugmenterConfig
from assay.augment.word_ops import IS_WORD, OPS, WordTable, shared_table
from assay.context import RunContext
from assay.registry import register

Op = Literal["synonym", "insert", "swap", "delete"]


class WordEditConfig(TextAugmenterConfig):
    pos: bool = Field(True, description="synonyms must share the word's part of speech")
    context: bool = Field(
        True, description="correct the part of speech of edited words from their context"
    )
    keep_negations: bool = Field(True, description="never delete or replace negations")


def word_table(cfg: WordEditConfig, needs_synonyms: bool) -> WordTable:
    synonyms = tagger = None
    if needs_synonyms:
        from assay.augment.wordnet import default_synonyms

        synonyms = default_synonyms()
        if cfg.pos:
            from assay.augment.tagger import default_tagger

            tagger = default_tagger()
    return shared_table(synonyms, tagger, cfg.protected, cfg.keep_negations)


class WordEditAugmenter(TextAugmenter):
    """Base of augmenters that apply word operations from `assay.augment.word_ops`."""

    Config: ClassVar[type[WordEditConfig]] = WordEditConfig
    ops: ClassVar[tuple[str, ...]] = ()

    def active_ops(self) -> tuple[str, ...]:
        return self.ops

    def prepare(self, texts: list[str], ctx: RunContext) -> None:
        needs = any(op in ("synonym", "insert") for op in self.active_ops())
        self.table = word_table(self.config, needs)

    def augment_batch(
        self, texts: list[str], n_per_row: int, draw: Draw
    ) -> Iterator[tuple[int, str, str]]:
        entries_of = self.table.entries
        chosen = [OPS[name] for name in self.active_ops()]
        n_ops = len(chosen)
        edits = self.edits
        at = self.table.synonyms_at if self.config.pos and self.config.context else None
        for i, text in enumerate(texts):
            tokens = text.split()
            entries = entries_of(tokens)
            n_words = sum(1 for e in entries if e[IS_WORD])
            start = int(draw() * n_ops) if n_ops > 1 else 0
            for k in range(n_per_row):
                tag, op = chosen[(start + k) % n_ops]
                out = op(tokens, entries, edits(n_words, draw), draw, at)
                if out is not None:
                    yield i, " ".join(out), tag


@register("eda")
class EdaAugmenter(WordEditAugmenter):
    """EDA: synonym replacement, random insertion, random swap and random deletion, mixed.

    Each new row applies one operation (ops taken in turn from a random start per row);
    the op is in the row id (`<parent>~<step index>.sr0`, `.ri0`, `.rs0`, `.rd0`) and in
    `eda__op`.
    """

    class Config(WordEditConfig):
        ops: list[Op] = Field(
            default_factory=lambda: ["synonym", "insert", "swap", "delete"],
            min_length=1,
            description="operations to mix, each applied alone in one augmentation",
        )
        n_per_row: int = Field(4, ge=1, description="augmentations attempted per selected row")
        rounding: Literal["stochastic", "floor", "ceil"] = Field(
            "floor", description="p * words rounded as in the paper: n = max(1, floor(p * l))"
        )

    op = "eda"

    def active_ops(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.config.ops))


@register("synonyms")
class SynonymAugmenter(WordEditAugmenter):
    """WordNet synonym replacement that respects part of speech, offline.

    p * words words (rounded stochastically; at least `min_edits`) that are not stop words, negations or
    protected terms, and that have WordNet synonyms for their part of speech (Brill
    lexicon tags), are replaced by a random synonym; case and punctuation are kept.
    """

    ops = ("synonym",)
    op = "sr"
