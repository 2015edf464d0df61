"""The `quality` step: a data quality card of a labelled corpus (`assay.audits.quality_card`
computes it, `assay.audits.quality_render` renders it in the run report).

The findings table has one row per flagged row and issue (`id`, `split`, `label`, `issue`,
`detail`); flagged rows get `quality__issues` (comma-joined). Nothing is changed. On an
engine other than the local one, the per-row flags are computed in batches on it.
"""

from __future__ import annotations

import polars as pl

from assay.audits.quality_card import QualityCard, QualityConfig, quality_card
from assay.audits.quality_render import (
    cell_text,
    markdown_table,
    render_html,
    render_markdown,
    rich_tables,
)
from assay.context import RunContext
from assay.engine_steps import run_engine
from assay.registry import register
from assay.step import Audit, Findings

# The card and its rendering are importable from the step's module, as before; the run
# report finds `render_html` and `render_markdown` here.
__all__ = [
    "QualityAudit",
    "QualityCard",
    "QualityConfig",
    "cell_text",
    "markdown_table",
    "quality_card",
    "render_html",
    "render_markdown",
    "rich_tables",
]


@register("quality")
class QualityAudit(Audit):
    """A data quality card: rows per split and label with the imbalance ratio, lengths per
    label, exact and normalised duplicates within and across splits, empty, short, long,
    symbols-only and other-language rows, vocabulary and typical words per label, and the
    label-noise columns when present. Flagged rows get quality__issues."""

    Config = QualityConfig

    def score(self, corpus: pl.DataFrame, ctx: RunContext) -> Findings:
        with ctx.task("quality card", total=1) as task:
            card = quality_card(corpus, self.config, run_engine(ctx))
            task.advance(1)
        per_row = card.findings.group_by("id").agg(
            pl.col("issue").unique().sort().str.join(",").alias(f"{self.name}__issues")
        )
        return Findings(columns=per_row.sort("id"), findings=card.findings, summary=card.sections)
