"""Translate-train: machine-translated copies of the train rows in other languages.

Every selected row is translated into each target language (`languages: [spa, cat]`,
Apertium eng -> spa / eng -> cat by default; any backend of `assay.augment.translate`,
whose content cache makes reruns cheap). A new row carries its parent's label, the corpus
language code of its language (`es`, `ca`: ISO 639-1, as `lang` is written elsewhere) and
`parent_id`; `translate_train__backend` and `translate_train__model` name the translator.

A wrong translation teaches the model a wrong text, so each one is checked with the
multilingual Universal Sentence Encoder (`assay.resources.multilingual_encoder`, offline):
`check: round_trip` (default) translates it back and compares the round trip with the
source; `check: translation` compares the translation itself with the source across
languages. Rows below `threshold` are rejected as `round_trip`.

The default threshold comes from 400 movie-review sentences (MR) through Apertium: a
faithful round trip scores 0.77 (spa and cat) at its 5th percentile and 0.69 (spa) / 0.70
(cat) at its 1st, while the round trip of an unrelated sentence (the translation of another row)
scores 0.15 at the median and 0.43 at the 99th percentile. At 0.5 every faithful round trip
was kept and 0.7% of the wrong ones were. The cross-lingual check is weaker where USE does
not know the language: faithful Catalan translations scored 0.33 at their 5th percentile
(USE has no Catalan), Spanish ones 0.70, so `round_trip` is the default.

`translate_test: true` also adds a translated copy of every dev/test row (source rows of
`eval_splits`), kept in its parent's split: these are NEW evaluation rows, never train
rows, marked `translate_train__role = translate_test` (train copies: `translate_train`) and
`translate_test-<lang>` in the op. They let the evaluation report metrics per `lang`. The
step never changes or drops an existing row (the augmenter base only adds); with
`translate_test` it declares that it touches dev/test, so the runner allows the additions.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field, field_validator, model_validator

from assay import corpus as corpus_mod
from assay import embeddings
from assay.augment.translate import TranslatorSettings
from assay.context import RunContext
from assay.registry import register
from assay.step import Augmenter, AugmenterConfig, Rejections

REASON = "round_trip"
ROLE_TRAIN = "translate_train"
ROLE_TEST = "translate_test"
# Backend language codes (Apertium's ISO 639-3, NLLB's `spa_Latn`) -> the corpus's `lang`.
ISO_639_1 = {
    "eng": "en", "spa": "es", "cat": "ca", "fra": "fr", "por": "pt", "ita": "it",
    "deu": "de", "glg": "gl", "eus": "eu", "nld": "nl", "ron": "ro", "oci": "oc",
    "arg": "an", "ast": "ast", "rus": "ru", "pol": "pl", "tur": "tr", "ara": "ar",
    "zho": "zh", "jpn": "ja", "kor": "ko", "tha": "th", "heb": "he",
}  # fmt: skip


def corpus_lang(code: str, overrides: dict[str, str] | None = None) -> str:
    """The corpus `lang` of a backend language code: `spa` -> `es`, `spa_Latn` -> `es`."""
    if overrides and code in overrides:
        return overrides[code]
    base = code.split("_")[0].lower()
    return ISO_639_1.get(base, base)


def encode(texts: list[str]) -> np.ndarray:
    """Unit-length multilingual USE embeddings (the encoder is loaded once per process)."""
    return embeddings.embed(texts, embeddings.MULTILINGUAL)


@register("translate_train")
class TranslateTrainAugmenter(Augmenter):
    """Translate the train rows into other languages (Apertium by default), keeping the
    label, with a round-trip check; optionally translated copies of dev/test as new eval
    rows (`translate_test`).

    Each selected row gets one row per language, or per `n_per_row` languages taken in
    turn (`lang` es, ca...; `parent_id`; label carried over). With per-pair `models`, the
    round trip needs the reverse pairs too. A translation whose round trip (or the
    translation itself, across languages) is less similar to the source than `threshold` under the multilingual
    sentence encoder is dropped as `round_trip`. Columns: `translate_train__language`,
    `__role` (translate_train or translate_test), `__backend`, `__model`, `__round_trip`
    and `__similarity`.
    """

    class Config(TranslatorSettings, AugmenterConfig):
        languages: list[str] = Field(
            default_factory=lambda: ["spa", "cat"],
            min_length=1,
            description="target languages (the backend's codes); one new row per language",
        )
        lang_codes: dict[str, str] = Field(
            default_factory=dict,
            description="backend code -> corpus lang, where the built-in ISO 639-1 table "
            "(spa -> es, cat -> ca...) is not what the corpus uses",
        )
        n_per_row: int | None = Field(
            None,
            ge=1,
            description="languages per train row, taken in turn from a random start per row "
            "(unset: every language); translate_test copies always get every language",
        )
        check: Literal["round_trip", "translation"] = Field(
            "round_trip",
            description="round_trip: compare the back-translation with the source; "
            "translation: compare the translation with the source across languages",
        )
        threshold: float = Field(
            0.5,
            ge=-1,
            le=1,
            description="drop a translation (reason round_trip) whose multilingual "
            "sentence-embedding cosine to the source is below this",
        )
        translate_test: bool = Field(
            False,
            description="also add a translated copy of every source dev/test row as a new "
            "eval row in its parent's split (never train)",
        )
        eval_splits: list[str] = Field(
            default_factory=lambda: ["dev", "test"],
            description="splits whose rows translate_test copies",
        )

        @field_validator("languages")
        @classmethod
        def _distinct(cls, value: list[str]) -> list[str]:
            if len(set(value)) != len(value):
                raise ValueError(f"languages must not repeat, got {value}")
            return value

        @model_validator(mode="after")
        def _consistent(self):
            if self.source in self.languages:
                raise ValueError(f"languages must not include the source language {self.source!r}")
            if self.translate_test and set(self.eval_splits) & set(self.splits):
                raise ValueError(
                    f"eval_splits {self.eval_splits} overlap splits {self.splits}: a split is "
                    "either translated as training data or copied as eval rows"
                )
            self.check_models(
                {f"{a}-{b}" for t in self.languages for a, b in self.pairs(t)}, "pairs"
            )
            return self

        def pairs(self, target: str) -> list[tuple[str, str]]:
            out = [(self.source, target)]
            if self.check == "round_trip":
                out.append((target, self.source))
            return out

    op = "translate"

    @property
    def touches_eval(self) -> bool:  # type: ignore[override]
        # Only translate_test adds dev/test rows (new ones; existing rows are never changed).
        return bool(self.config.translate_test)

    def select(self, corpus: pl.DataFrame, ctx: RunContext) -> pl.DataFrame:
        rows = super().select(corpus, ctx)
        cfg = self.config
        if not cfg.translate_test:
            return rows
        evals = corpus.filter(
            pl.col("split").is_in(cfg.eval_splits)
            & (pl.col("origin") == corpus_mod.SOURCE_ORIGIN)
            & ~pl.col("id").is_in(rows["id"].implode())
        )
        return pl.concat([rows, evals], how="vertical_relaxed")

    def generate(self, rows: pl.DataFrame, ctx: RunContext) -> pl.DataFrame:
        cfg = self.config
        texts = rows["text"].to_list()
        ids = rows["id"].to_list()
        roles = [
            ROLE_TEST if s in cfg.eval_splits and cfg.translate_test else ROLE_TRAIN
            for s in rows["split"].to_list()
        ]
        members = self._members(roles, ctx)
        made = cfg.translators()
        started = time.perf_counter()
        total = sum(len(members[t]) * len(cfg.pairs(t)) for t in cfg.languages)
        columns: dict[str, list[Any]] = {
            k: [] for k in ("parent_id", "text", "lang", "op", "language", "role", "model", "back")
        }
        with ctx.task(f"{self.name}: translating", total=total) as task:
            for target in cfg.languages:
                chosen = members[target]
                used = []
                batch = [texts[i] for i in chosen]
                outputs: list[list[str]] = []
                for src, tgt in cfg.pairs(target):
                    tr = made.for_pair(src, tgt)
                    used.append(tr.tag())
                    batch = tr.translate(batch, src, tgt) if batch else []
                    outputs.append(batch)
                    task.advance(len(chosen))
                lang = corpus_lang(target, cfg.lang_codes)
                back = outputs[1] if len(outputs) > 1 else [None] * len(chosen)
                for k, (i, text) in enumerate(zip(chosen, outputs[0], strict=True)):
                    columns["parent_id"].append(ids[i])
                    columns["text"].append(text)
                    columns["lang"].append(lang)
                    op = "translate_test" if roles[i] == ROLE_TEST else self.op
                    columns["op"].append(f"{op}-{lang}")
                    columns["language"].append(target)
                    columns["role"].append(roles[i])
                    columns["model"].append(" | ".join(dict.fromkeys(used)))
                    columns["back"].append(back[k])
        seconds = time.perf_counter() - started
        similarity = self._similarity(columns, dict(zip(ids, texts, strict=True)))
        self._stats = {
            "translations": total,
            "translations_computed": made.computed,
            "translate_seconds": round(seconds, 3),
            "sentences_per_s": round(total / seconds, 1) if seconds > 0 else None,
            "check_seconds": round(time.perf_counter() - started - seconds, 3),
        }
        name = self.name
        n = len(columns["text"])
        return pl.DataFrame(
            {
                "parent_id": columns["parent_id"],
                "text": columns["text"],
                "lang": columns["lang"],
                "op": columns["op"],
                # translate_test copies: augment.translate_train:translate_test; train
                # translations: augment.translate_train:eng>spa:apertium.
                "origin": [
                    role if role == ROLE_TEST else f"{language}:{cfg.backend}"
                    for role, language in zip(columns["role"], columns["language"], strict=True)
                ],
                f"{name}__language": columns["language"],
                f"{name}__role": columns["role"],
                f"{name}__backend": [cfg.backend] * n,
                f"{name}__model": columns["model"],
                f"{name}__round_trip": columns["back"],
                f"{name}__similarity": similarity,
            },
            schema={
                "parent_id": pl.String,
                "text": pl.String,
                "lang": pl.String,
                "op": pl.String,
                "origin": pl.String,
                f"{name}__language": pl.String,
                f"{name}__role": pl.String,
                f"{name}__backend": pl.String,
                f"{name}__model": pl.String,
                f"{name}__round_trip": pl.String,
                f"{name}__similarity": pl.Float64,
            },
        )

    def _members(self, roles: list[str], ctx: RunContext) -> dict[str, list[int]]:
        """Which rows each language translates, in row order: every language for eval
        copies; for train rows `n_per_row` languages in turn from a random start."""
        languages = self.config.languages
        n_out = min(self.config.n_per_row or len(languages), len(languages))
        if n_out < len(languages):
            starts = ctx.rng("languages").integers(0, len(languages), size=len(roles)).tolist()
        else:
            starts = [0] * len(roles)
        members: dict[str, list[int]] = {t: [] for t in languages}
        for i, (role, start) in enumerate(zip(roles, starts, strict=True)):
            count = len(languages) if role == ROLE_TEST else n_out
            for k in range(count):
                members[languages[(start + k) % len(languages)]].append(i)
        for chosen in members.values():
            chosen.sort()
        return members

    def _similarity(self, columns: dict[str, list[Any]], sources: dict[str, str]) -> list[float]:
        """Cosine of each translation (or its round trip) to its source, under USE."""
        compared = columns["back"] if self.config.check == "round_trip" else columns["text"]
        if not compared:
            return []
        unique_sources = list(dict.fromkeys(columns["parent_id"]))
        src_vec = encode([sources[i] for i in unique_sources])
        index = {pid: k for k, pid in enumerate(unique_sources)}
        # A translation that failed (empty) compares as an empty text: low, and rejected.
        out_vec = encode([t or "" for t in compared])
        rows = np.array([index[p] for p in columns["parent_id"]])
        sims = np.einsum("ij,ij->i", src_vec[rows], out_vec)
        return [round(float(s), 6) for s in sims]

    def reject(
        self, candidates: pl.DataFrame, parents: pl.DataFrame, corpus: pl.DataFrame, ctx: RunContext
    ) -> Rejections | None:
        score = candidates[f"{self.name}__similarity"]
        low = score.is_null() | (score < self.config.threshold)
        reason = pl.select(
            pl.when(low).then(pl.lit(REASON)).otherwise(pl.lit(None, pl.String))
        ).to_series()
        return Rejections(reason=reason, tag="roundtrip", summary={REASON: int(low.sum())})

    def generation_summary(self) -> dict[str, Any]:
        return dict(getattr(self, "_stats", {}))
