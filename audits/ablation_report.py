"""The ablation report: the table, the forest plot, the learning curve and the page, from an
ablation's results."""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from assay import atomic
from assay.audits.forest_plot import curve_svg, forest_svg
from assay.audits.report import page
from assay.audits.report import table as html_table
from assay.audits.report_markdown import judge_label

CURVE_SCHEMA = {
    "train_rows_cap": pl.Int64, "arm": pl.String, "kind": pl.String, "train_rows": pl.Float64,
    "score": pl.Float64, "delta": pl.Float64, "delta_low": pl.Float64,
    "delta_high": pl.Float64, "p_value": pl.Float64, "p_value_raw": pl.Float64,
    "verdict": pl.String,
}  # fmt: skip


def write_ablation_report(out_dir: Path, report: dict[str, Any], table: pl.DataFrame) -> None:
    """ablation.json, ablation.csv, forest.svg and ablation.html in `out_dir`; with several
    train sizes also learning_curve.csv and learning_curve.svg."""
    atomic.write_json(out_dir / "ablation.json", report)
    atomic.write_with(out_dir / "ablation.csv", lambda p: table.write_csv(p))
    svg = forest_svg(forest_rows(report), forest_title(report))
    atomic.write_text(out_dir / "forest.svg", svg)
    if report.get("by_lang"):
        frame = pl.DataFrame(report["by_lang"], schema=LANG_SCHEMA)
        atomic.write_with(out_dir / "ablation_lang.csv", lambda p: frame.write_csv(p))
    curve = ""
    if report.get("learning_curve"):
        frame = curve_table(report)
        atomic.write_with(out_dir / "learning_curve.csv", lambda p: frame.write_csv(p))
        curve = curve_svg(
            [
                {"name": r["arm"], "size": r["train_rows_cap"], "delta": r["delta"],
                 "low": r["delta_low"], "high": r["delta_high"]}
                for r in report["learning_curve"]
                if r["kind"] != "baseline"
            ],
            f"{report['metric']} on {report['eval_split']}: delta vs baseline by train rows",
        )  # fmt: skip
        atomic.write_text(out_dir / "learning_curve.svg", curve)
    atomic.write_text(out_dir / "ablation.html", render_html(report, table, svg, curve))


def forest_title(report: dict[str, Any]) -> str:
    return (
        f"{report['metric']} on {report['eval_split']}: delta vs baseline, "
        f"{report['confidence']:.0%} CI over {len(report['seeds'])} seeds"
    )


def forest_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per non-baseline arm; under a variant with a control, variant minus control."""
    rows = []
    for r in report["arms"]:
        if r["kind"] == "baseline":
            continue
        rows.append(
            {"name": r["arm"], "delta": r.get("delta"), "low": r.get("delta_low"),
             "high": r.get("delta_high"), "significant": r.get("significant")}
        )  # fmt: skip
        if r.get("vs_control_delta") is not None:
            rows.append(
                {"name": f"{r['arm']} minus control", "delta": r["vs_control_delta"],
                 "low": r["vs_control_delta_low"], "high": r["vs_control_delta_high"],
                 "significant": r.get("vs_control_significant"), "secondary": True}
            )  # fmt: skip
    return rows


def curve_table(report: dict[str, Any]) -> pl.DataFrame:
    """The learning curve as a table: one row per (train-row cap, arm)."""
    return pl.DataFrame(
        [{c: r.get(c) for c in CURVE_SCHEMA} for r in report.get("learning_curve", [])],
        schema=CURVE_SCHEMA,
    )


def render_html(report: dict[str, Any], table: pl.DataFrame, svg: str, curve: str = "") -> str:
    """The ablation section: forest plot, table, learning curve and warnings, as a page."""
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
            row["p (Holm)"] = f"{r['p_value']:.3g}"
            row["p (raw)"] = f"{r['p_value_raw']:.3g}"
            row["verdict"] = r["verdict"]
        if r["vs_control_delta"] is not None:
            row["vs control"] = (
                f"{100 * r['vs_control_delta']:+.2f} "
                f"({100 * r['vs_control_delta_low']:+.2f}..{100 * r['vs_control_delta_high']:+.2f}"
                f", p {r['vs_control_p_value']:.3g})"
            )
        if r.get("clean_score") is not None:
            row["clean"] = _pct(r["clean_score"])
            if r["clean_delta"] is not None:
                row["clean delta"] = (
                    f"{100 * r['clean_delta']:+.2f} "
                    f"({100 * r['clean_delta_low']:+.2f}..{100 * r['clean_delta_high']:+.2f})"
                )
        shown.append(row)
    columns = ["arm", "train rows", "steps", "s / seed", report["metric"], "CI", "delta",
               "delta CI", "p (Holm)", "p (raw)", "verdict", "vs control"]  # fmt: skip
    if any("clean" in row for row in shown):
        columns += ["clean", "clean delta"]
    notes = "".join(f"<li>{html.escape(w)}</li>" for w in report["warnings"])
    stats = report.get("statistics", {})
    intro = (
        f"<p>Judge <b>{html.escape(judge_label(report))}</b>, seeds {report['seeds']}, "
        f"{report['eval_rows']:,} {report['eval_split']} rows. Deltas in points. "
        + _leak_note(report)
        + f"{html.escape(stats.get('note', ''))} <i>vs control</i>: the variant minus its "
        "size-matched duplicate control (hollow in the plot), i.e. what the new text did "
        + "beyond adding (re-weighting) rows; the verdict reads both.</p>"
    )
    warning = (report.get("judge") or {}).get("caution")
    if warning:
        intro += f'<p class="caution"><b>Caution</b>: {html.escape(warning)}</p>'
    sections = [("Ablation", intro + svg + html_table(shown, columns))]
    if curve:
        points = [
            {"train rows cap": r["train_rows_cap"], "arm": r["arm"],
             report["metric"]: _pct(r["score"]),
             "delta": "" if r["delta"] is None else f"{100 * r['delta']:+.2f}",
             "delta CI": "" if r["delta"] is None
             else f"{100 * r['delta_low']:+.2f}..{100 * r['delta_high']:+.2f}",
             "verdict": r["verdict"] or ""}
            for r in report["learning_curve"]
        ]  # fmt: skip
        sections.append(
            ("Learning curve", curve + html_table(points, list(points[0]) if points else []))
        )
    if report.get("by_lang"):
        sections.append(("Per language", language_html(report)))
    if notes:
        sections.append(("Warnings", f"<ul>{notes}</ul>"))
    return page(f"{report['name']}: ablation", sections)


def _leak_note(report: dict[str, Any]) -> str:
    leaked = report.get("eval_rows_leaked")
    if not leaked:
        return ""
    return (
        f"{leaked:,} {report['eval_split']} rows were marked as leaked by the leakage audit: "
        "<i>clean</i> scores and deltas leave them out, so the gap to the full score is what "
        "the leak was worth. "
    )


def _pct(v: float | None) -> str:
    return "" if v is None else f"{100 * v:.2f}"


# -- per language ---------------------------------------------------------------------------

LANG_SCHEMA = {
    "arm": pl.String, "lang": pl.String, "rows": pl.Int64, "score": pl.Float64,
    "score_low": pl.Float64, "score_high": pl.Float64, "delta": pl.Float64,
    "delta_low": pl.Float64, "delta_high": pl.Float64,
}  # fmt: skip


def language_rows(
    cells: Iterable[tuple[str, int, pl.DataFrame]],
    eval_frame: pl.DataFrame,
    eval_split: str,
    metric: str,
    classes: list[str],
    baseline: str = "baseline",
) -> list[dict[str, Any]]:
    """The headline metric per arm and `lang` of the eval rows (translated dev/test copies
    carry their own `lang`): the mean over seeds with the seed range, and the delta vs the
    baseline paired by seed (mean and range of the per-seed deltas).

    `cells` are (arm, seed, predictions with `id`, `split`, `pred`); with one language in
    the eval split there is nothing to break down and the answer is empty."""
    from assay.train.metrics import classification_report

    evaluated = eval_frame.filter(pl.col("split") == eval_split)
    if "lang" not in evaluated.columns or evaluated["lang"].n_unique() < 2:
        return []
    truth = evaluated.select("id", "label", pl.col("lang").fill_null(""))
    scores: dict[tuple[str, str], dict[int, float]] = {}
    sizes = dict(truth.group_by("lang").len().iter_rows())
    arms: list[str] = []
    for arm, seed, predictions in cells:
        if arm not in arms:
            arms.append(arm)
        scored = truth.join(
            predictions.filter(pl.col("split") == eval_split).select("id", "pred"), on="id"
        )
        for (lang,), part in scored.group_by("lang", maintain_order=True):
            rep = classification_report(part["label"].to_list(), part["pred"].to_list(), classes)
            scores.setdefault((arm, str(lang)), {})[seed] = float(rep[metric])
    rows = []
    for arm in arms:
        for lang in sorted(sizes):
            mine = scores.get((arm, lang), {})
            if not mine:
                continue
            values = np.array(list(mine.values()))
            row: dict[str, Any] = {
                "arm": arm, "lang": lang, "rows": int(sizes[lang]),
                "score": float(values.mean()), "score_low": float(values.min()),
                "score_high": float(values.max()),
                "delta": None, "delta_low": None, "delta_high": None,
            }  # fmt: skip
            base = scores.get((baseline, lang), {})
            paired = [mine[s] - base[s] for s in mine if s in base]
            if arm != baseline and paired:
                row.update(
                    delta=float(np.mean(paired)),
                    delta_low=float(np.min(paired)),
                    delta_high=float(np.max(paired)),
                )
            rows.append(row)
    return rows


def language_html(report: dict[str, Any]) -> str:
    """The per-language table: metric per arm and eval `lang`, delta vs baseline by seed."""
    shown = [
        {"arm": r["arm"], "lang": r["lang"], "rows": r["rows"],
         report["metric"]: _pct(r["score"]),
         "seed range": f"{_pct(r['score_low'])}..{_pct(r['score_high'])}",
         "delta": "" if r["delta"] is None else f"{100 * r['delta']:+.2f}",
         "delta seed range": "" if r["delta"] is None
         else f"{100 * r['delta_low']:+.2f}..{100 * r['delta_high']:+.2f}"}
        for r in report["by_lang"]
    ]  # fmt: skip
    intro = (
        f"<p>{html.escape(report['metric'])} on the {html.escape(report['eval_split'])} rows "
        "of each language (translated copies carry their own <code>lang</code>), mean over "
        "seeds; the delta is paired by seed against the baseline; ranges are the lowest and "
        "highest seed, not confidence intervals.</p>"
    )
    columns = ["arm", "lang", "rows", report["metric"], "seed range", "delta", "delta seed range"]
    return intro + html_table(shown, columns)
