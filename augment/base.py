"""The text-augmenter contract, on top of the kernel's `Augmenter`.

The kernel selects rows (`splits`, `labels`, `fraction`), assigns derived ids, parent ids
and origin, rejects texts identical to the parent or to another row, and applies
`max_per_row` and `budget`. This module adds what every text augmenter here shares:

- an edit rate `p` with `min_edits` / `max_edits`: p * words edits per augmentation,
  rounded stochastically by default (or down, Wei & Zou's rule, or up, nlpaug's), in
  `TextAugmenterConfig` (augmenters without an edit rate, like shuffling, take
  `TextAugmenterBaseConfig`);
- protected terms, never edited;
- a stream of uniform draws per row, a function of the seed, the step and the row's id
  (`assay.engine_random`), computed in blocks so the per-word loops stay in plain Python;
  the output does not depend on how an engine batches the rows;
- the label-preservation `guard`, the adoption's rejection rule (`reject`): generated rows
  whose label no longer holds are dropped before the duplicate checks and `max_per_row`,
  every one recorded with its reason and score.

A subclass implements `augment(text, draw)` returning `(new_text, op)` or None, or
overrides `augment_batch` for a batched path.
"""

from __future__ import annotations

import importlib.util
import math
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import polars as pl
from pydantic import Field

from assay.augment.guard import GuardConfig, check
from assay.context import RunContext
from assay.engine_random import row_draws
from assay.engine_steps import engine_for
from assay.errors import MissingDependencyError, ResourceError
from assay.step import Augmenter, AugmenterConfig, Rejections

_BLOCK = 1 << 16
_CORE = re.compile(r"^(\W*)(.*?)(\W*)$", re.DOTALL)

Draw = Callable[[], float]


class TextAugmenterBaseConfig(AugmenterConfig):
    """Rows to augment, terms to keep, and the guard: what every text augmenter takes."""

    protected: list[str] = Field(
        default_factory=list,
        description="words or phrases never edited (case-insensitive)",
    )
    guard: GuardConfig | None = Field(
        None, description="drop generated rows whose label no longer holds (off if unset)"
    )


class TextAugmenterConfig(TextAugmenterBaseConfig):
    """Rows to augment, how much to edit each, terms to keep, and the guard."""

    p: float = Field(0.1, ge=0, le=1, description="edit rate: share of a text's words edited")
    min_edits: int = Field(1, ge=0, description="at least this many edits per augmentation")
    max_edits: int | None = Field(None, ge=1, description="at most this many edits")
    rounding: Literal["stochastic", "floor", "ceil"] = Field(
        "stochastic",
        description="how p * words becomes a count: stochastic (expected count exactly "
        "p * words), floor (Wei & Zou) or ceil (nlpaug)",
    )


def draws(rng: np.random.Generator) -> Draw:
    """A function returning the next uniform [0, 1) draw of `rng`, drawn in blocks."""

    def stream() -> Iterator[float]:
        while True:
            yield from rng.random(_BLOCK).tolist()

    return stream().__next__


def n_edits(
    n_words: int,
    p: float,
    min_edits: int,
    max_edits: int | None,
    rounding: str = "floor",
    u: float = 0.0,
) -> int:
    """Edits for a text of `n_words`: p * n_words rounded down ("floor", Wei & Zou's rule),
    up ("ceil", nlpaug's), or up with probability equal to the fraction ("stochastic",
    given a uniform draw `u`: the expected count is exactly p * n_words); then clamped."""
    x = p * n_words
    if rounding == "stochastic":
        n = int(x + u)
    elif rounding == "ceil":
        n = math.ceil(x - 1e-9)
    else:
        n = int(x + 1e-9)
    n = max(min_edits, n)
    if max_edits is not None:
        n = min(n, max_edits)
    return n


def split_token(token: str) -> tuple[str, str, str]:
    """(leading punctuation, word, trailing punctuation) of a whitespace token."""
    m = _CORE.match(token)
    assert m is not None
    return m.group(1), m.group(2), m.group(3)


def match_case(template: str, word: str) -> str:
    if template[:1].isupper():
        if len(template) > 1 and template.isupper():
            return word.upper()
        return word[:1].upper() + word[1:]
    return word


class Protected:
    """Protected words and phrases; `mask(lowered words)` marks the positions they cover."""

    def __init__(self, terms: list[str]) -> None:
        words: set[str] = set()
        phrases: list[tuple[str, ...]] = []
        for term in terms:
            parts = tuple(split_token(t)[1].lower() for t in term.split())
            parts = tuple(p for p in parts if p)
            if len(parts) == 1:
                words.add(parts[0])
            elif parts:
                phrases.append(parts)
        self.words = frozenset(words)
        self.phrases = phrases

    def mask(self, lowered: list[str]) -> list[bool]:
        words = self.words
        out = [w in words for w in lowered]
        for phrase in self.phrases:
            k = len(phrase)
            for i in range(len(lowered) - k + 1):
                if lowered[i] == phrase[0] and tuple(lowered[i : i + k]) == phrase:
                    out[i : i + k] = [True] * k
        return out


class TextAugmenter(Augmenter):
    """Base of the text augmenters: edit counts, protected terms, uniform draws, guard."""

    Config: ClassVar[type[TextAugmenterBaseConfig]] = TextAugmenterConfig
    chunk: ClassVar[int] = 2048  # rows per progress update

    def prepare(self, texts: list[str], ctx: RunContext) -> None:
        """Load resources (WordNet, tagger) before generation; called once per apply."""

    def augment(self, text: str, draw: Draw) -> tuple[str, str] | None:
        """One augmentation of `text`: (new text, op tag), or None when nothing applies."""
        raise NotImplementedError

    def augment_batch(
        self, texts: list[str], n_per_row: int, draw: Draw
    ) -> Iterator[tuple[int, str, str]]:
        """(row index, new text, op) for `n_per_row` attempts on each text."""
        augment = self.augment
        for i, text in enumerate(texts):
            for _ in range(n_per_row):
                out = augment(text, draw)
                if out is not None:
                    yield i, out[0], out[1]

    def edits(self, n_words: int, draw: Draw) -> int:
        """Edits for one augmentation of a text of `n_words` words."""
        cfg = self.config
        u = draw() if cfg.rounding == "stochastic" else 0.0
        return n_edits(n_words, cfg.p, cfg.min_edits, cfg.max_edits, cfg.rounding, u)

    def generate(self, rows: pl.DataFrame, ctx: RunContext) -> pl.DataFrame:
        texts = rows["text"].to_list()
        ids = rows["id"].to_list()
        self.prepare(texts, ctx)
        parent: list[str] = []
        out_text: list[str] = []
        ops: list[str] = []
        n_per_row = self.config.n_per_row
        augment_batch = self.augment_batch
        with ctx.task(f"{self.name}: augmenting", total=len(texts)) as task:
            for start in range(0, len(texts), self.chunk):
                batch = texts[start : start + self.chunk]
                batch_ids = ids[start : start + self.chunk]
                # One draw stream per row, keyed by its id: the same rows give the same
                # output however an engine batches them.
                for row_id, text, draw in zip(
                    batch_ids, batch, row_draws(ctx, "edits", batch_ids), strict=True
                ):
                    for _, new_text, op in augment_batch([text], n_per_row, draw):
                        parent.append(row_id)
                        out_text.append(new_text)
                        ops.append(op)
                task.advance(len(batch))
        return pl.DataFrame(
            {"parent_id": parent, "text": out_text, "op": ops},
            schema={"parent_id": pl.String, "text": pl.String, "op": pl.String},
        )

    def reject(
        self, candidates: pl.DataFrame, parents: pl.DataFrame, corpus: pl.DataFrame, ctx: RunContext
    ) -> Rejections | None:
        """The label-preservation guard, as the adoption's rejection rule (off if unset)."""
        guard = getattr(self.config, "guard", None)
        if guard is None:
            return None
        checked = check(
            guard,
            corpus,
            parents,
            candidates,
            ctx.step_seed("guard"),
            self.name,
            engine=engine_for(self, ctx),
        )
        reason = checked["_guard_reason"]
        failed = reason.drop_nulls()
        counts = failed.value_counts(sort=True)
        summary = {
            "guard": {
                "checked": checked.height,
                "dropped": len(failed),
                "reasons": dict(
                    zip(counts[reason.name].to_list(), counts["count"].to_list(), strict=True)
                ),
                "model": guard.model,
                "min_confidence": guard.min_confidence,
                "max_drop": guard.max_drop,
                "similarity": guard.similarity,
                "folds": guard.folds,
            }
        }
        scores = checked.select(f"{self.name}__guard_score", f"{self.name}__guard_similarity")
        return Rejections(reason=reason, columns=scores, tag="guard", summary=summary)


def package_file(package: str, *parts: str, extra: str = "augment", purpose: str = "") -> Path:
    """A data file shipped inside an installed package, found without importing it
    (textblob imports nltk, nlpaug imports much more: seconds for a word list)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        what = f" for {purpose}" if purpose else ""
        raise MissingDependencyError(
            f"{package!r} is needed{what} but is not installed: pip install 'assay[{extra}]'"
        )
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)
    if not path.exists():
        raise ResourceError(
            f"{'/'.join(parts)} is missing from the installed {package!r}; reinstall it: "
            f"pip install --force-reinstall {package}"
        )
    return path
