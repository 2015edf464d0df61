"""Forest plot of metric deltas with confidence intervals, and a learning curve of deltas
against training size, as self-contained SVG."""

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

    `rows` are dicts with `name`, `delta`, `low`, `high` and optional `significant` and
    `secondary` (drawn hollow and indented: e.g. a variant minus its control); values are
    multiplied by `scale` (fractions shown as points).
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
        secondary = bool(r.get("secondary"))
        fill = "white" if secondary else color
        indent = 16 if secondary else 4
        grey = ' fill="#555"' if secondary else ""
        dashes = ' stroke-dasharray="5 2"' if secondary else ""
        parts.append(
            f'<text x="{indent}" y="{y + 4:.1f}"{grey}>'
            f"{html.escape(str(r['name'])[:34])}</text>"
            f'<line x1="{x(r["low"]):.1f}" y1="{y:.1f}" x2="{x(r["high"]):.1f}" y2="{y:.1f}" '
            f'stroke="{color}" stroke-width="2"{dashes}/>'
            f'<circle cx="{x(r["delta"]):.1f}" cy="{y:.1f}" r="4.5" fill="{fill}" '
            f'stroke="{color}" stroke-width="1.5"/>'
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


CURVE_W = 520
CURVE_H = 260
COLORS = ("#4C78A8", "#F58518", "#54A24B", "#B279A2", "#E45756", "#72B7B2", "#9D755D")


def curve_svg(
    rows: Sequence[dict[str, Any]], title: str = "", unit: str = "points", scale: float = 100.0
) -> str:
    """Delta against training size, one line per arm, CI as error bars, sizes on a log axis.

    `rows` are dicts with `name`, `size`, `delta`, `low`, `high`.
    """
    import math

    rows = [r for r in rows if r.get("delta") is not None and r.get("size")]
    sizes = sorted({r["size"] for r in rows})
    if len(sizes) < 2:
        return ""
    names = list(dict.fromkeys(r["name"] for r in rows))
    lo = min(min(r["low"] for r in rows) * scale, 0.0)
    hi = max(max(r["high"] for r in rows) * scale, 0.0)
    pad = (hi - lo) * 0.08 or 1.0
    lo, hi = lo - pad, hi + pad
    left, top, legend = 60, 34 if title else 14, 200
    width, height = left + CURVE_W + legend, top + CURVE_H + 44
    log_lo, log_hi = math.log(sizes[0]), math.log(sizes[-1])

    def x(size: float) -> float:
        return left + 20 + (math.log(size) - log_lo) / (log_hi - log_lo) * (CURVE_W - 40)

    def y(v: float) -> float:
        return top + (hi - v * scale) / (hi - lo) * CURVE_H

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{html.escape(title or "learning curve")}">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    if title:
        parts.append(f'<text x="4" y="18" font-weight="bold">{html.escape(title)}</text>')
    parts.append(
        f'<line x1="{left}" y1="{y(0):.1f}" x2="{left + CURVE_W}" y2="{y(0):.1f}" '
        'stroke="#888" stroke-dasharray="4 3"/>'
    )
    for v in _ticks(lo, hi):
        ty = top + (hi - v) / (hi - lo) * CURVE_H
        parts.append(f'<text x="{left - 6}" y="{ty + 4:.1f}" text-anchor="end">{v:g}</text>')
    bottom = top + CURVE_H
    for size in sizes:
        parts.append(
            f'<line x1="{x(size):.1f}" y1="{bottom}" x2="{x(size):.1f}" y2="{bottom + 4}" '
            f'stroke="#444"/><text x="{x(size):.1f}" y="{bottom + 17}" '
            f'text-anchor="middle">{size:,}</text>'
        )
    for i, name in enumerate(names):
        color = COLORS[i % len(COLORS)]
        mine = sorted((r for r in rows if r["name"] == name), key=lambda r: r["size"])
        offset = (i - (len(names) - 1) / 2) * 4  # keep overlapping error bars apart
        points = " ".join(f"{x(r['size']) + offset:.1f},{y(r['delta']):.1f}" for r in mine)
        parts.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>')
        for r in mine:
            cx = x(r["size"]) + offset
            parts.append(
                f'<line x1="{cx:.1f}" y1="{y(r["low"]):.1f}" x2="{cx:.1f}" '
                f'y2="{y(r["high"]):.1f}" stroke="{color}"/>'
                f'<circle cx="{cx:.1f}" cy="{y(r["delta"]):.1f}" r="3.5" fill="{color}"/>'
            )
        ly = top + 10 + i * 18
        parts.append(
            f'<rect x="{left + CURVE_W + 12}" y="{ly - 8}" width="10" height="10" '
            f'fill="{color}"/><text x="{left + CURVE_W + 28}" y="{ly + 1}">'
            f"{html.escape(str(name)[:24])}</text>"
        )
    parts.append(
        f'<text x="{left + CURVE_W / 2}" y="{bottom + 34}" text-anchor="middle" fill="#555">'
        f"train rows (log scale); delta vs baseline in {html.escape(unit)}</text></svg>"
    )
    return "".join(parts)
