"""Inline SVG charts for the run report: horizontal bars and the corpus flow per step.

Charts are plain SVG strings with no external fonts or styles, so a report stays one file.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from assay.html import number

BLUE = "#4C78A8"
RED = "#E45756"
GREEN = "#54A24B"
GREY = "#555"


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
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{BLUE}"/>'
        )
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 13}">{number(v)}</text>')
    if title:
        parts.append(f'<text x="0" y="12" font-weight="bold">{html.escape(title)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def flow_chart(steps: Sequence[Mapping[str, Any]], width: int = 760) -> str:
    """One bar per step: the rows it kept (blue), dropped (red) and added (green)."""
    if not steps:
        return ""
    bar_h, gap, label_w, top = 18, 8, 170, 40
    scale_max = max(max(s["n_in"], s["n_out"]) for s in steps) or 1
    plot_w = width - label_w - 190
    height = top + len(steps) * (bar_h + gap) + 6
    parts = [
        f'<svg width="{width}" height="{height}" role="img" aria-label="corpus flow per step">',
        '<text x="0" y="12" font-weight="bold">rows per step: kept, dropped, added</text>',
    ]
    for i, (name, color) in enumerate((("kept", BLUE), ("dropped", RED), ("added", GREEN))):
        x = label_w + i * 90
        parts.append(
            f'<rect x="{x}" y="20" width="10" height="10" fill="{color}"/>'
            f'<text x="{x + 14}" y="29">{name}</text>'
        )
    for i, s in enumerate(steps):
        y = top + i * (bar_h + gap)
        kept = s["n_in"] - s["n_dropped"]
        segments = ((kept, BLUE), (s["n_dropped"], RED), (s["n_added"], GREEN))
        label = f"{s['index']}. {s['step']}"
        parts.append(f'<text x="0" y="{y + 13}">{html.escape(label[:24])}</text>')
        x = float(label_w)
        for n, color in segments:
            w = plot_w * n / scale_max
            if w > 0:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color}"/>'
                )
            x += w
        parts.append(
            f'<text x="{x + 6:.1f}" y="{y + 13}" fill="{GREY}">'
            f"{s['n_in']:,} → {s['n_out']:,}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def share_colour(share: float) -> str:
    """A cell background from white (0) to red (a share of 0.25 or more)."""
    t = max(0.0, min(1.0, share / 0.25))
    g = round(255 - t * (255 - 120))
    return f"rgb(255,{g},{g})"


def score_histogram_chart(histogram: Mapping[str, Any], title: str, width: int = 640) -> str:
    """Rows per label-quality bin, flagged (red) on not flagged (blue), and a grey band over
    the scores below which the estimated error count's interval puts the worst rows."""
    edges, flagged, kept = histogram["edges"], histogram["flagged"], histogram["kept"]
    if not flagged:
        return ""
    left, top, plot_h = 40, 40, 160
    plot_w = width - left - 10
    height = top + plot_h + 34
    tallest = max(f + k for f, k in zip(flagged, kept, strict=True)) or 1
    bar_w = plot_w / len(flagged)

    def x_of(score: float) -> float:
        return left + plot_w * (score - edges[0]) / ((edges[-1] - edges[0]) or 1)

    parts = [
        f'<svg width="{width}" height="{height}" role="img" aria-label="{html.escape(title)}">',
        f'<text x="0" y="12" font-weight="bold">{html.escape(title)}</text>',
    ]
    cuts = histogram.get("score_at_errors") or {}
    low, high, mid = cuts.get("low"), cuts.get("high"), cuts.get("estimate")
    if high is not None:
        x0 = x_of(low) if low is not None else float(left)
        parts.append(
            f'<rect x="{x0:.1f}" y="{top}" width="{max(x_of(high) - x0, 1):.1f}" '
            f'height="{plot_h}" fill="#999" fill-opacity="0.25"/>'
        )
    if mid is not None:
        parts.append(
            f'<line x1="{x_of(mid):.1f}" x2="{x_of(mid):.1f}" y1="{top}" y2="{top + plot_h}" '
            f'stroke="{GREY}" stroke-dasharray="4 3"/>'
        )
    for i, (f, k) in enumerate(zip(flagged, kept, strict=True)):
        x, base = left + i * bar_w, top + plot_h
        for n, color in ((f, RED), (k, BLUE)):
            h = plot_h * n / tallest
            if h > 0:
                parts.append(
                    f'<rect x="{x + 1:.1f}" y="{base - h:.1f}" width="{bar_w - 2:.1f}" '
                    f'height="{h:.1f}" fill="{color}"/>'
                )
            base -= h
    parts.append(
        f'<text x="{left}" y="{top + plot_h + 14}" fill="{GREY}">0</text>'
        f'<text x="{left + plot_w - 8}" y="{top + plot_h + 14}" fill="{GREY}">1</text>'
        f'<text x="{left + plot_w / 2 - 90:.1f}" y="{top + plot_h + 28}" fill="{GREY}">'
        "label quality (lower = more likely wrong)</text>"
        f'<text x="0" y="{top + 10}" fill="{GREY}">{number(tallest)}</text>'
    )
    for i, (name, color) in enumerate((("flagged", RED), ("not flagged", BLUE))):
        x = left + i * 110
        parts.append(
            f'<rect x="{x}" y="20" width="10" height="10" fill="{color}"/>'
            f'<text x="{x + 14}" y="29">{name}</text>'
        )
    parts.append(
        f'<rect x="{left + 230}" y="20" width="10" height="10" fill="#999" fill-opacity="0.4"/>'
        f'<text x="{left + 244}" y="29">estimated errors, 95% CI</text>'
    )
    parts.append("</svg>")
    return "".join(parts)
