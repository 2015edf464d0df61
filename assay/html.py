"""One small HTML table for notebooks: results render as a summary in Jupyter
(`_repr_html_`), built from plain dicts so every result type shares it."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

STEP_COLUMNS = (
    "step", "kind", "n_in", "n_out", "n_dropped", "n_added", "n_modified", "n_rejected",
    "seconds", "cached",
)  # fmt: skip


def html_table(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[str],
    *,
    title: str | None = None,
    notes: Iterable[str] = (),
) -> str:
    """An escaped HTML table of `columns` from each row (missing values left blank)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(row.get(c))}</td>" for c in columns) + "</tr>" for row in rows
    )
    caption = f"<caption><b>{html.escape(title)}</b></caption>" if title else ""
    extra = "".join(f"<br><i>{html.escape(str(n))}</i>" for n in notes)
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{extra}"


def number(value: float) -> str:
    """A number for people: 29,190 rather than 2.919e+04, 0.8123 for fractions."""
    if math.isfinite(value) and (float(value).is_integer() or abs(value) >= 1e4):
        return f"{value:,.0f}"
    return f"{value:,.4g}"


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return number(value)
    if isinstance(value, (list, tuple)):
        return html.escape(", ".join(map(str, value)))
    return html.escape(str(value))
