"""Back-translation: translate a text into a pivot language (or a chain) and back.

Each pivot is a language (`spa`) or a chain of languages (`spa>cat`: eng -> spa -> cat ->
eng). With several pivots, each row gets up to `n_per_row` outputs through different
pivots, taken in turn from a random start per row. Every hop of every pivot is one batched
call to the translator, which caches its results across runs (`assay.augment.translate`).
Outputs identical to their parent are rejected by the kernel; the label guard (with its
optional similarity floor to the parent) drops outputs whose label no longer holds.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import polars as pl
from pydantic import Field, field_validator, model_validator

from assay.augment.base import TextAugmenter, TextAugmenterBaseConfig
from assay.augment.translate import TranslatorSettings
from assay.context import RunContext
from assay.engine_random import row_uniform
from assay.registry import register


def hops(source: str, pivot: str) -> list[tuple[str, str]]:
    """The (src, tgt) pairs of a round trip through `pivot` ("spa" or "spa>cat")."""
    chain = [source, *pivot.split(">"), source]
    return list(itertools.pairwise(chain))


@register("back_translation")
class BackTranslationAugmenter(TextAugmenter):
    """Back-translation through one or more pivot languages or chains (Apertium by default).

    Each new row is a round trip through one pivot (`pivots: [spa, cat]`, or a chain
    `spa>cat` for eng -> spa -> cat -> eng); with `n_per_row` above 1 a row gets outputs
    through different pivots. Translators: `apertium` (offline, default), `hf` (MarianMT,
    NLLB by id or path) or `ctranslate2` (a converted model directory); translations are
    cached across runs. The pivot is in the row id (`<parent>~<step>.bt-spa0`) and in
    `back_translation__op`; the full chain, backend and model in `back_translation__pivot`,
    `back_translation__backend` and `back_translation__model`.
    """

    class Config(TranslatorSettings, TextAugmenterBaseConfig):
        pivots: list[str] = Field(
            default_factory=lambda: ["spa"],
            min_length=1,
            description="pivot languages, or chains written 'spa>cat' (eng -> spa -> cat "
            "-> eng); each output goes through one",
        )
        n_per_row: int = Field(
            1, ge=1, description="outputs per row, each through a different pivot"
        )

        @field_validator("pivots")
        @classmethod
        def _chains(cls, value: list[str]) -> list[str]:
            for pivot in value:
                if not pivot or any(not part.strip() for part in pivot.split(">")):
                    raise ValueError(f"pivot {pivot!r} must be a language or 'lang>lang'")
            if len(set(value)) != len(value):
                raise ValueError("pivots must differ from each other")
            return value

        @model_validator(mode="after")
        def _models_for_hops(self):
            self.check_models(
                {f"{a}-{b}" for p in self.pivots for a, b in hops(self.source, p)}, "hops"
            )
            return self

    op = "bt"
    loads_model = True  # translators load once per Ray actor
    gpu_capable = True

    def generate(self, rows: pl.DataFrame, ctx: RunContext) -> pl.DataFrame:
        cfg = self.config
        texts = rows["text"].to_list()
        ids = rows["id"].to_list()
        pivots = cfg.pivots
        n_out = min(cfg.n_per_row, len(pivots))
        if n_out < len(pivots):
            # A start per row from its id: the same however the rows are batched.
            u = row_uniform(ctx, "pivots", ids)
            starts = np.minimum((u * len(pivots)).astype(np.int64), len(pivots) - 1).tolist()
        else:
            starts = [0] * len(texts)
        # Which rows go through which pivot, in row order.
        members: dict[str, list[int]] = {p: [] for p in pivots}
        for i, start in enumerate(starts):
            for k in range(n_out):
                members[pivots[(start + k) % len(pivots)]].append(i)
        made = cfg.translators()
        keep = [t.lower() for t in cfg.protected]
        results: dict[tuple[str, int], str] = {}
        models: dict[str, str] = {}
        total = sum(len(m) * len(hops(cfg.source, p)) for p, m in members.items())
        with ctx.task(f"{self.name}: translating", total=total) as task:
            for pivot, rows_in in members.items():
                batch = [texts[i] for i in rows_in]
                used = []
                for src, tgt in hops(cfg.source, pivot):
                    tr = made.for_pair(src, tgt)
                    used.append(tr.tag())
                    batch = tr.translate(batch, src, tgt) if batch else []
                    task.advance(len(rows_in))
                models[pivot] = " | ".join(dict.fromkeys(used))
                for i, text in zip(rows_in, batch, strict=True):
                    results[pivot, i] = text
        parent: list[str] = []
        out_text: list[str] = []
        ops: list[str] = []
        chain: list[str] = []
        model_col: list[str] = []
        for i, start in enumerate(starts):
            for k in range(n_out):
                pivot = pivots[(start + k) % len(pivots)]
                text = results[pivot, i]
                if not text.strip():
                    continue
                low = text.lower()
                if any(term in texts[i].lower() and term not in low for term in keep):
                    continue  # a protected term did not survive the round trip
                parent.append(ids[i])
                out_text.append(text)
                ops.append("bt-" + pivot.replace(">", "-"))
                chain.append(">".join([cfg.source, pivot, cfg.source]))
                model_col.append(models[pivot])
        self._computed = made.computed
        self._requested = total
        n = len(parent)
        return pl.DataFrame(
            {
                "parent_id": parent,
                "text": out_text,
                "op": ops,
                # The origin names the operation, backend and model: eng>spa>eng:apertium.
                "origin": [
                    ":".join(x for x in (c, cfg.backend, m) if x)
                    for c, m in zip(chain, model_col, strict=True)
                ],
                f"{self.name}__pivot": chain,
                f"{self.name}__backend": [cfg.backend] * n,
                f"{self.name}__model": model_col,
            },
            schema={
                "parent_id": pl.String,
                "text": pl.String,
                "op": pl.String,
                "origin": pl.String,
                f"{self.name}__pivot": pl.String,
                f"{self.name}__backend": pl.String,
                f"{self.name}__model": pl.String,
            },
        )

    def generation_summary(self) -> dict[str, Any]:
        return {
            "translations": getattr(self, "_requested", 0),
            "translations_computed": getattr(self, "_computed", 0),
        }
