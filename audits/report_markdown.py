"""Markdown rendering for the run report: tables, text bars and the page."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from assay.html import number

BAR_WIDTH = 30


def cell(value: Any) -> str:
    """A value as one Markdown table cell: no newlines, pipes escaped."""
    if value is None:
        return ""
    if isinstance(value, float):
        text = number(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        text = f"{value:,}"
    else:
        text = str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def md_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    if not rows:
        return "_none_"
    columns = list(columns or rows[0].keys())
    lines = [
        "| " + " | ".join(cell(c) for c in columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    lines.extend("| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows)
    return "\n".join(lines)


def text_bars(values: Mapping[str, float], title: str = "") -> str:
    """Bars drawn with characters, in a code block (a chart's Markdown stand-in)."""
    if not values:
        return ""
    top = max(values.values()) or 1
    width = max(len(str(k)) for k in values)
    lines = [f"{title}:"] if title else []
    for name, v in values.items():
        bar = "#" * max(0, round(BAR_WIDTH * v / top))
        lines.append(f"{name!s:<{width}}  {bar} {number(v)}")
    return "```\n" + "\n".join(lines) + "\n```"


def judge_label(report: dict) -> str:
    """The model that gave the verdicts and how it ran: 'minilm (stacked, cuda bfloat16,
    batch 16)'; a cheap judge with its measured agreement with the fine-tuned encoder where
    the study measured it; or the model alone (older reports)."""
    judge = report.get("judge") or {}
    if "device" not in judge:
        measured = judge.get("measured")
        return f"{report['model']} ({measured})" if measured else str(report["model"])
    return (
        f"{report['model']} ({judge['trainer']}, {judge['device']} {judge['dtype']}, "
        f"batch {judge['batch_size']})"
    )
