"""Text cleaning: unicode normalisation, HTML, control characters, whitespace, length and
language filters. Every drop is recorded with a reason."""

from __future__ import annotations

import functools
import logging
from typing import Literal

import numpy as np
import polars as pl
from pydantic import Field

from assay.context import RunContext
from assay.curate.html_text import strip_html
from assay.registry import register
from assay.step import Keep, StepConfig, Transform

log = logging.getLogger(__name__)

_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff]"


@register("clean")
class CleanTransform(Transform):
    """Normalise unicode, strip HTML and control characters, collapse whitespace, filter by length and language.

    Cleaning applies to every split (it is not augmentation). Rows that end up empty, too
    short, too long or in another language than `lang` are dropped with that reason.
    """

    class Config(StepConfig):
        unicode: Literal["NFKC", "NFC", "none"] = Field(
            "NFKC", description="unicode normalisation form"
        )
        strip_html: bool = Field(
            True,
            description="turn HTML into its text: drop tags, comments and script/style "
            "bodies, decode entities (&amp; -> &); plain text such as x<y is kept",
        )
        strip_control: bool = Field(True, description="remove control and zero-width characters")
        whitespace: bool = Field(True, description="collapse runs of whitespace and trim")
        lowercase: bool = Field(False, description="lower-case the text")
        min_chars: int = Field(1, ge=0, description="drop texts shorter than this (after cleaning)")
        max_chars: int | None = Field(None, ge=1, description="drop texts longer than this")
        min_words: int = Field(0, ge=0, description="drop texts with fewer words")
        max_words: int | None = Field(None, ge=1, description="drop texts with more words")
        lang: str | None = Field(
            None, description="keep only texts detected as this language (ISO 639-1, e.g. 'en')"
        )
        lang_min_chars: int = Field(
            20,
            ge=0,
            description="texts shorter than this are not language-checked (detection is unreliable)",
        )
        lang_min_confidence: float = Field(
            0.9,
            ge=0,
            le=1,
            description="drop only when another language is detected with at least this probability",
        )

    def rewrite(self, corpus: pl.DataFrame, ctx: RunContext) -> pl.Series:
        cfg = self.config
        text = pl.col("text")
        if cfg.unicode != "none":
            text = text.str.normalize(cfg.unicode)
        if cfg.strip_control:
            text = text.str.replace_all(_CONTROL, " ")
        out = corpus.select(text.alias("text"))["text"]
        if cfg.strip_html:
            out = strip_html(out)
        text = pl.col("text")
        if cfg.whitespace:
            text = text.str.replace_all(r"\s+", " ").str.strip_chars()
        if cfg.lowercase:
            text = text.str.to_lowercase()
        return out.to_frame().select(text.alias("text"))["text"]

    def keep(self, corpus: pl.DataFrame, ctx: RunContext) -> Keep:
        cfg = self.config
        chars = pl.col("text").str.len_chars()
        words = pl.col("text").str.count_matches(r"\S+")
        reason = (
            pl.when(chars == 0)
            .then(pl.lit("empty_after_cleaning"))
            .when(chars < cfg.min_chars)
            .then(pl.lit("too_short"))
            .when(chars > (cfg.max_chars or np.iinfo(np.int64).max))
            .then(pl.lit("too_long"))
            .when(words < cfg.min_words)
            .then(pl.lit("too_few_words"))
            .when(words > (cfg.max_words or np.iinfo(np.int64).max))
            .then(pl.lit("too_many_words"))
            .otherwise(pl.lit(None, dtype=pl.String))
        )
        reasons = corpus.select(reason.alias("reason"))["reason"]
        summary: dict[str, object] = {}
        if cfg.lang is not None:
            detected = _detect_language(
                corpus["text"], cfg.lang_min_chars, cfg.lang_min_confidence, ctx
            )
            wrong = detected.is_not_null() & (detected != cfg.lang) & reasons.is_null()
            reasons = pl.select(
                pl.when(wrong).then(pl.lit("language:") + detected).otherwise(reasons)
            ).to_series()
            summary["languages"] = dict(detected.drop_nulls().value_counts(sort=True).iter_rows())
        return Keep(mask=reasons.is_null().to_numpy(), reason=reasons, summary=summary)


def _detect_language(
    text: pl.Series, min_chars: int, min_confidence: float, ctx: RunContext
) -> pl.Series:
    """The language of each text, or null where the text is short or detection unsure."""
    identify = _language_identifier()
    codes: list[str | None] = []
    chunk = 1000
    values = text.to_list()
    with ctx.task("detecting languages", total=len(values)) as task:
        for start in range(0, len(values), chunk):
            for t in values[start : start + chunk]:
                code = None
                if t is not None and len(t) >= min_chars:
                    guess, prob = identify(t)
                    code = guess if prob >= min_confidence else None
                codes.append(code)
            task.advance(min(chunk, len(values) - start))
    return pl.Series("lang", codes, dtype=pl.String)


@functools.lru_cache(maxsize=1)
def _language_identifier():
    """langid's classifier with normalised probabilities (its model ships in the wheel)."""
    from assay.errors import require

    require("py3langid", "lang", "the language filter")
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True).classify
