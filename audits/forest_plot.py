"""Forest plot of metric deltas with confidence intervals, as self-contained SVG."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

ROW_H = 26
LABEL_W = 220
PLOT_W = 420
VALUE_W = 190


def forest_svg(
    rows: Sequence[dict[str, Any]], title: str = "", unit: str = "points", scale: float = 100.0
) -> str:
    """One row per arm: a point at `delta` and a line from `low` to `high`, a zero line.

    `rows` are dicts with `name`, `delta`, `low`, `high` and optional `significant`; values
    are multiplied by `scale` (fractions shown as points).
    """
    rows = [r for r in rows if r.get("delta") is not None]
    if not rows:
        return ""
    lo = min(min(r["low"], r["delta"]) for r in rows) * scale
    hi = max(max(r["high"], r["delta"]) for r in rows) * scale
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    pad = (hi - lo) * 0.08 or 1.0
    lo, hi = lo - pad, hi + pad
    top = 34 if title else 14
    height = top + len(rows) * ROW_H + 30
    width = LABEL_W + PLOT_W + VALUE_W

    def x(v: float) -> float:
        return LABEL_W + (v * scale - lo) / (hi - lo) * PLOT_W

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{html.escape(title or "forest plot")}">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    if title:
        parts.append(f'<text x="4" y="18" font-weight="bold">{html.escape(title)}</text>')
    zero = LABEL_W + (0 - lo) / (hi - lo) * PLOT_W
    bottom = top + len(rows) * ROW_H
    parts.append(
        f'<line x1="{zero:.1f}" y1="{top - 6}" x2="{zero:.1f}" y2="{bottom}" '
        'stroke="#888" stroke-dasharray="4 3"/>'
    )
    for i, r in enumerate(rows):
        y = top + i * ROW_H + ROW_H / 2
        sig = r.get("significant")
        color = "#1a7f37" if sig and r["delta"] > 0 else "#b42318" if sig else "#4C78A8"
        parts.append(
            f'<text x="4" y="{y + 4:.1f}">{html.escape(str(r["name"]))[:32]}</text>'
            f'<line x1="{x(r["low"]):.1f}" y1="{y:.1f}" x2="{x(r["high"]):.1f}" y2="{y:.1f}" '
            f'stroke="{color}" stroke-width="2"/>'
            f'<circle cx="{x(r["delta"]):.1f}" cy="{y:.1f}" r="4.5" fill="{color}"/>'
            f'<text x="{LABEL_W + PLOT_W + 10}" y="{y + 4:.1f}">'
            f"{r['delta'] * scale:+.2f} [{r['low'] * scale:+.2f}, {r['high'] * scale:+.2f}]"
            "</text>"
        )
    for v in _ticks(lo, hi):
        tx = LABEL_W + (v - lo) / (hi - lo) * PLOT_W
        parts.append(
            f'<line x1="{tx:.1f}" y1="{bottom}" x2="{tx:.1f}" y2="{bottom + 4}" stroke="#444"/>'
            f'<text x="{tx:.1f}" y="{bottom + 17}" text-anchor="middle">{v:g}</text>'
        )
    parts.append(
        f'<text x="{LABEL_W + PLOT_W / 2}" y="{bottom + 29}" text-anchor="middle" '
        f'fill="#555">delta vs baseline ({html.escape(unit)})</text></svg>'
    )
    return "".join(parts)


def _ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    import math

    span = hi - lo
    step = 10 ** math.floor(math.log10(span / n)) if span > 0 else 1.0
    for mult in (1, 2, 5, 10):
        if span / (step * mult) <= n:
            step *= mult
            break
    start = math.ceil(lo / step) * step
    out = []
    v = start
    while v <= hi + 1e-9:
        out.append(round(v, 10))
        v += step
    return out
