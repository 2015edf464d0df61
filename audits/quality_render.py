"""The quality card rendered: an HTML fragment for the run report, Markdown, and rich tables
for the terminal, all from the card's JSON-ready sections."""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from assay.audits.quality_card import ISSUES


def _split_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for s in summary.get("splits", []):
        labels = ", ".join(f"{k}: {v:,}" for k, v in s["labels"].items())
        ratio = s["imbalance_ratio"]
        rows.append(
            {
                "split": s["split"],
                "rows": s["rows"],
                "labels": labels,
                "imbalance": "n/a" if ratio is None else f"{ratio:.2f}",
                "missing labels": ", ".join(s["missing_labels"]),
            }
        )
    return rows


def _typical_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    grouped: dict[str, list[str]] = {}
    for item in summary.get("vocabulary", {}).get("typical_words", []):
        grouped.setdefault(item["label"], []).append(item["word"])
    return [{"label": k, "typical words": ", ".join(v)} for k, v in grouped.items()]


def _example_rows(findings: pl.DataFrame, per_issue: int = 5) -> list[dict[str, Any]]:
    if findings is None or findings.height == 0:
        return []
    return (
        findings.group_by("issue", maintain_order=True)
        .head(per_issue)
        .select("issue", "id", "split", "label", "detail")
        .to_dicts()
    )


def render_html(findings: pl.DataFrame, summary: dict[str, Any]) -> str:
    """The card as an HTML fragment (tables and inline SVG, no external assets)."""
    from assay.audits.report import bar_chart, table

    vocab = summary.get("vocabulary", {})
    flags = {k: v for k, v in summary.get("flags", {}).items() if k in ISSUES}
    dup_totals = {
        f"{k} copies": sum(d[k] for d in summary.get("duplicates", []))
        for k in ("exact_within", "normalized_within", "exact_across", "normalized_across")
    }
    parts = [
        f"<p>{summary.get('rows', 0):,} rows; vocabulary {vocab.get('types', 0):,} types, "
        f"{vocab.get('tokens', 0):,} tokens (type/token ratio {vocab.get('ttr', 0):.3f}).</p>",
        "<h3>Rows per split and label</h3>",
        table(_split_rows(summary)),
        "<h3>Lengths per label</h3>",
        table(summary.get("lengths", [])),
        "<h3>Duplicates</h3>",
        table(summary.get("duplicates", [])),
        "<h3>Flagged rows</h3>",
        bar_chart({**flags, **dup_totals}, title="rows flagged"),
    ]
    if not summary.get("flags", {}).get("language_checked"):
        parts.append('<p class="muted">language not checked (py3langid not installed)</p>')
    parts += ["<h3>Typical words per label</h3>", table(_typical_rows(summary))]
    noise = summary.get("label_noise")
    if noise:
        parts += [
            "<h3>Label noise</h3>",
            f"<p>{noise['flagged']:,} of {noise['scored']:,} scored rows flagged "
            f"({100 * noise['share']:.1f}%).</p>",
            table(noise.get("per_label", [])),
            table(noise.get("suggested_pairs", [])),
        ]
    parts += ["<h3>Examples</h3>", table(_example_rows(findings))]
    return "".join(parts)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "_none_\n"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cell_text(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        cells = [cell_text(row.get(c)) for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def cell_text(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")


def render_markdown(findings: pl.DataFrame, summary: dict[str, Any]) -> str:
    """The card as Markdown."""
    vocab = summary.get("vocabulary", {})
    flags = {k: v for k, v in summary.get("flags", {}).items() if k in ISSUES}
    parts = [
        "### Data quality\n",
        f"{summary.get('rows', 0):,} rows; vocabulary {vocab.get('types', 0):,} types, "
        f"{vocab.get('tokens', 0):,} tokens (type/token ratio {vocab.get('ttr', 0):.3f}).\n",
        "#### Rows per split and label\n",
        markdown_table(_split_rows(summary)),
        "#### Lengths per label\n",
        markdown_table(summary.get("lengths", [])),
        "#### Duplicates\n",
        markdown_table(summary.get("duplicates", [])),
        "#### Flagged rows\n",
        markdown_table([{"issue": k, "rows": v} for k, v in flags.items()]),
        "#### Typical words per label\n",
        markdown_table(_typical_rows(summary)),
    ]
    noise = summary.get("label_noise")
    if noise:
        parts += ["#### Label noise\n", markdown_table(noise.get("per_label", []))]
    return "\n".join(parts)


def rich_tables(summary: dict[str, Any]):
    """The card as a group of rich tables."""
    from rich.console import Group
    from rich.table import Table

    def build(title: str, rows: list[dict[str, Any]]) -> Table:
        t = Table(title=title, title_justify="left")
        cols = list(rows[0]) if rows else ["none"]
        for c in cols:
            t.add_column(str(c))
        for row in rows:
            t.add_row(*[cell_text(row.get(c)).replace("\\|", "|") for c in cols])
        return t

    flags = {k: v for k, v in summary.get("flags", {}).items() if k in ISSUES}
    return Group(
        build("rows per split and label", _split_rows(summary)),
        build("lengths per label", summary.get("lengths", [])),
        build("duplicates", summary.get("duplicates", [])),
        build("flagged rows", [{"issue": k, "rows": v} for k, v in flags.items()]),
        build("typical words per label", _typical_rows(summary)),
    )
