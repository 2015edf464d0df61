"""The ablation report: the table, the forest plot and the page, from an ablation's results."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import polars as pl

from assay import atomic
from assay.audits.forest_plot import forest_svg
from assay.audits.report import page
from assay.audits.report import table as html_table


def write_ablation_report(out_dir: Path, report: dict[str, Any], table: pl.DataFrame) -> None:
    """ablation.json, ablation.csv, forest.svg and ablation.html in `out_dir`."""
    atomic.write_json(out_dir / "ablation.json", report)
    atomic.write_with(out_dir / "ablation.csv", lambda p: table.write_csv(p))
    metric = report["metric"]
    forest_rows = [
        {
            "name": r["arm"],
            "delta": r.get("delta"),
            "low": r.get("delta_low"),
            "high": r.get("delta_high"),
            "significant": r.get("significant"),
        }
        for r in report["arms"]
        if r["kind"] != "baseline"
    ]
    svg = forest_svg(
        forest_rows,
        f"{metric} on {report['eval_split']}: delta vs baseline, "
        f"{report['confidence']:.0%} CI over {len(report['seeds'])} seeds",
    )
    atomic.write_text(out_dir / "forest.svg", svg)
    atomic.write_text(out_dir / "ablation.html", render_html(report, table, svg))


def render_html(report: dict[str, Any], table: pl.DataFrame, svg: str) -> str:
    """The ablation section: forest plot, table and warnings, as a standalone page."""
    shown = []
    for r in table.to_dicts():
        row = {
            "arm": r["arm"],
            "train rows": int(r["train_rows"]),
            "steps": None if r["optimizer_steps"] is None else int(r["optimizer_steps"]),
            "s / seed": round(r["seconds"], 2),
            report["metric"]: _pct(r["score"]),
            "CI": f"{_pct(r['score_low'])}..{_pct(r['score_high'])}",
        }
        if r["delta"] is not None:
            row["delta"] = f"{100 * r['delta']:+.2f}"
            row["delta CI"] = f"{100 * r['delta_low']:+.2f}..{100 * r['delta_high']:+.2f}"
            row["p"] = f"{r['p_value']:.3g}"
            row["verdict"] = r["verdict"]
        if r["vs_control_delta"] is not None:
            row["vs control"] = (
                f"{100 * r['vs_control_delta']:+.2f} "
                f"({100 * r['vs_control_delta_low']:+.2f}..{100 * r['vs_control_delta_high']:+.2f})"
            )
        shown.append(row)
    columns = ["arm", "train rows", "steps", "s / seed", report["metric"], "CI", "delta",
               "delta CI", "p", "verdict", "vs control"]  # fmt: skip
    notes = "".join(f"<li>{html.escape(w)}</li>" for w in report["warnings"])
    intro = (
        f"<p>Model <b>{html.escape(report['model'])}</b>, seeds {report['seeds']}, "
        f"{report['eval_rows']:,} {report['eval_split']} rows. Deltas in points with "
        f"{report['confidence']:.0%} CI from a paired bootstrap over examples and seeds; p from "
        "a paired permutation test on per-example correctness. <i>vs control</i>: the "
        "variant minus its size-matched duplicate control, i.e. what the new text did beyond "
        "adding (re-weighting) rows.</p>"
    )
    sections = [
        ("Ablation", intro + svg + html_table(shown, columns)),
    ]
    if notes:
        sections.append(("Warnings", f"<ul>{notes}</ul>"))
    return page(f"{report['name']}: ablation", sections)


def _pct(v: float | None) -> str:
    return "" if v is None else f"{100 * v:.2f}"
