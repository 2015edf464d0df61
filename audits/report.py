"""Self-contained HTML reports: tables and inline SVG charts, no external assets."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from assay import atomic
from assay.rundir import REPORT, RunDirectory

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.25rem .6rem;border-bottom:1px solid #eee;text-align:left}
th{background:#f6f6f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#1a7f37}.bad{color:#b42318}.muted{color:#777}svg text{font:12px system-ui,sans-serif}
"""


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    if not rows:
        return '<p class="muted">none</p>'
    columns = list(columns or rows[0].keys())
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for c in columns:
            v = row.get(c)
            cls = ' class="num"' if isinstance(v, (int, float)) and not isinstance(v, bool) else ""
            text = (
                f"{v:,.4g}"
                if isinstance(v, float)
                else (
                    f"{v:,}"
                    if isinstance(v, int) and not isinstance(v, bool)
                    else str(v if v is not None else "")
                )
            )
            cells.append(f"<td{cls}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def bar_chart(values: Mapping[str, float], title: str = "", width: int = 520) -> str:
    """Horizontal bars as inline SVG."""
    if not values:
        return ""
    bar_h, gap, label_w = 18, 6, 160
    top = max(values.values()) or 1
    height = len(values) * (bar_h + gap) + 24
    parts = [
        f'<svg width="{width}" height="{height}" role="img" aria-label="{html.escape(title)}">'
    ]
    for i, (name, v) in enumerate(values.items()):
        y = 20 + i * (bar_h + gap)
        w = (width - label_w - 70) * (v / top)
        parts.append(f'<text x="0" y="{y + 13}">{html.escape(str(name))[:24]}</text>')
        parts.append(
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="#4C78A8"/>'
        )
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 13}">{v:,.4g}</text>')
    if title:
        parts.append(f'<text x="0" y="12" font-weight="bold">{html.escape(title)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def page(title: str, sections: Sequence[tuple[str, str]]) -> str:
    body = "".join(f"<h2>{html.escape(h)}</h2>{content}" for h, content in sections)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def render_run_report(
    run_dir: RunDirectory, manifest: dict[str, Any], corpus: pl.DataFrame, dropped: pl.DataFrame
) -> str:
    acc = manifest["accounting"]
    status = (
        '<span class="ok">balanced</span>'
        if acc["balanced"]
        else '<span class="bad">NOT balanced</span>'
    )
    sections = [
        (
            "Accounting",
            f"<p>{status}: {acc['rows_read']:,} read − {acc['dropped_at_load'] + acc['dropped_by_steps']:,} dropped + {acc['added']:,} added = {acc['rows_out']:,} rows.</p>"
            + table([acc]),
        ),
        (
            "Labels and splits",
            bar_chart(manifest["labels"], "rows per label")
            + bar_chart(manifest["splits"], "rows per split")
            + _label_split_table(corpus),
        ),
        (
            "Steps",
            table(
                [
                    {
                        "#": r["index"],
                        "step": r["step"],
                        "kind": r["kind"],
                        "in": r["n_in"],
                        "out": r["n_out"],
                        "dropped": r["n_dropped"],
                        "added": r["n_added"],
                        "modified": r["n_modified"],
                        "seconds": r["seconds"],
                        "cached": r["cached"],
                    }
                    for r in manifest["steps"]
                ]
            ),
        ),
        ("Drops by step and reason", table(manifest["drop_reasons"])),
        (
            "Examples",
            "".join(
                f"<h3>{html.escape(r['step'])}</h3>" + table(r["examples"])
                for r in manifest["steps"]
                if r["examples"]
            ),
        ),
    ]
    sections.extend(_class_balance_sections(manifest["steps"]))
    for r in manifest["steps"]:
        summary = {k: v for k, v in r["summary"].items() if isinstance(v, (int, float, str))}
        if summary:
            sections.append((f"{r['step']} summary", table([summary])))
    doc = page(f"assay run: {manifest['name']}", sections)
    atomic.write_text(run_dir / REPORT, doc)
    return doc


def _label_split_table(corpus: pl.DataFrame) -> str:
    from assay.corpus import is_multilabel

    frame = corpus.explode("label") if is_multilabel(corpus) else corpus
    counts = frame.with_columns(
        pl.col("label").fill_null("<unlabelled>"), pl.col("split").fill_null("<none>")
    )
    pivot = (
        counts.group_by("label", "split")
        .len()
        .pivot(on="split", index="label", values="len")
        .sort("label")
        .fill_null(0)
    )
    return table(pivot.to_dicts())


def _class_balance_sections(steps: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """The label_noise and balance steps' findings: class distribution before and after,
    the top flagged rows (given label, suggested label, score)."""
    out = []
    for r in steps:
        summary = r.get("summary") or {}
        if r["step"] == "balance" and summary.get("distribution_before"):
            before, after = summary["distribution_before"], summary.get("distribution_after") or {}
            ratio = f"imbalance ratio {summary.get('imbalance_before')} -> {summary.get('imbalance_after')}"
            out.append(
                (
                    f"Class balance ({summary.get('strategy')}, step {r['index']})",
                    f"<p>{html.escape(ratio)}</p>"
                    + bar_chart(
                        {f"{k} before": v for k, v in before.items()},
                        "train rows per label, before",
                    )
                    + bar_chart(
                        {f"{k} after": v for k, v in after.items()}, "after (rows, or total weight)"
                    ),
                )
            )
        if r["step"] == "label_noise" and "n_flagged" in summary:
            head = (
                f"<p>{summary['n_flagged']:,} of {summary.get('n_scored', 0):,} scored rows "
                f"flagged ({summary.get('action')}, ranker {summary.get('ranker')}).</p>"
            )
            out.append(
                (
                    f"Likely label errors (step {r['index']})",
                    head
                    + table(
                        summary.get("top_flagged") or [], ["id", "given", "suggested", "score"]
                    ),
                )
            )
    return out
