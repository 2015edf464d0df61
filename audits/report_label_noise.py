"""The report's label-issues section: what each label_noise step flagged, relabelled and
dropped, the evidence it measured (the out-of-fold model's accuracy and the estimated
count of label errors, with their intervals), what its gate decided, and the flags by
label-quality score."""

from __future__ import annotations

from typing import Any

import polars as pl

from assay.audits.report_artifacts import RunArtifacts
from assay.audits.report_charts import score_histogram_chart
from assay.audits.report_sections import Block, Chart, Heading, Rows, Section, Text, short

N_FINDINGS = 10
GATE_TEXT = {
    "refused": "refused: the out-of-fold model's accuracy CI lies under min_oof_accuracy, so "
    "the flagged rows were kept, flagged, instead",
    "refused_held_out": "refused: models trained with the change scored lower on rows that "
    "played no part in choosing it, so the flagged rows were kept, flagged, instead",
    "capped": "capped: acted on the lowest-quality rows up to the estimate's upper bound",
    "forced": "forced (force: true): acted on every flagged row whatever the evidence",
    "acted": "passed: acted on every flagged row",
    "not_destructive": "not needed: flag and review change no row",
}


def _interval(value: dict[str, float] | None, pct: bool = False) -> str:
    if not value:
        return ""
    if pct:
        return (
            f"{100 * value['estimate']:.1f}% ({100 * value['low']:.1f}-{100 * value['high']:.1f})"
        )
    return f"{value['estimate']:.3f} ({value['low']:.3f}-{value['high']:.3f})"


def _count(value: dict[str, float] | None) -> str:
    if not value:
        return ""
    return f"{value['estimate']:.0f} ({value['low']:.0f}-{value['high']:.0f})"


def _judge(summary: dict[str, Any]) -> str:
    judged = summary.get("judged_by") or {}
    name = judged.get("model", "model")
    tried = judged.get("auto")
    if not tried or len(tried) < 2:
        return f"{name} model"
    accs = ", ".join(f"{m} {a['estimate']:.3f}" for m, a in tried.items())
    return f"{name} model (model: auto tried {accs}: accuracy against the given labels)"


def _decision(gate: dict[str, Any]) -> str:
    decision = gate.get("decision", "")
    return f"{decision}_held_out" if gate.get("refused_on") == "held_out" else decision


def _held_out(gate: dict[str, Any]) -> str:
    effect = gate.get("held_out_effect")
    if not effect:
        return ""
    which = f" ({gate['held_out_model']})" if gate.get("held_out_model") else ""
    return (
        f" Held-out check: models{which} trained with the change scored "
        f"{100 * effect['estimate']:+.2f} "
        "points of accuracy or macro-F1, the worse "
        f"({100 * effect['low']:+.2f} to {100 * effect['high']:+.2f}) on rows "
        "that played no part in choosing it."
    )


def evidence_blocks(summary: dict[str, Any]) -> list[Block]:
    """The evidence table, the gate's decision and the score chart of one step's summary
    (nothing for a summary written before the evidence was measured)."""
    if "oof_accuracy" not in summary:
        return []
    gate = summary.get("gate") or {}
    blocks: list[Block] = [
        Rows(
            [
                {
                    "OOF accuracy (95% CI)": _interval(summary["oof_accuracy"]),
                    "OOF macro-F1 (95% CI)": _interval(summary.get("oof_macro_f1")),
                    "estimated errors (95% CI)": _count(summary.get("estimated_errors")),
                    "error rate (95% CI)": _interval(summary.get("estimated_error_rate"), True),
                    "flagged": summary.get("n_flagged"),
                    "acted on": gate.get("n_acted"),
                }
            ]
        ),
        Text(
            f"Judged by the out-of-fold {_judge(summary)}. "
            f"Gate ({summary.get('action')}, min_oof_accuracy {gate.get('min_oof_accuracy')}): "
            f"{GATE_TEXT.get(_decision(gate), gate.get('decision', ''))}."
            f"{_held_out(gate)} Accuracy is against the given labels, noise included; "
            "intervals are bootstrap 95% over rows."
        ),
    ]
    histogram = summary.get("score_histogram")
    if histogram:
        title = "flagged rows by label-quality score"
        blocks.append(
            Chart(
                score_histogram_chart(histogram, title),
                {
                    f"{lo:.2f}-{hi:.2f}": f
                    for lo, hi, f in zip(
                        histogram["edges"],
                        histogram["edges"][1:],
                        histogram["flagged"],
                        strict=False,
                    )
                    if f
                },
                "flagged rows per label-quality bin",
            )
        )
    return blocks


def label_issues(run: RunArtifacts) -> list[Section]:
    """label_noise findings: flagged, relabelled and dropped rows, the evidence and the
    gate, the top flagged."""
    steps = [r for r in run.steps_of(name="label_noise") if "n_flagged" in r["summary"]]
    if not steps:
        return []
    blocks: list[Block] = []
    lineage = run.lineage
    for r in steps:
        summary = r["summary"]
        relabelled = 0
        if lineage is not None and not lineage.is_empty():
            relabelled = lineage.filter(
                (pl.col("step") == r["step"]) & (pl.col("field") == "label")
            ).height
        blocks += [
            Heading(f"Likely label errors (step {r['index']})"),
            Text(
                f"{summary['n_flagged']:,} of {summary.get('n_scored', 0):,} scored rows flagged "
                f"({summary.get('action')}, ranker {summary.get('ranker')})."
            ),
            Rows(
                [
                    {
                        "flagged": summary["n_flagged"],
                        "relabelled": relabelled,
                        "dropped": r["n_dropped"],
                        "scored": summary.get("n_scored", 0),
                    }
                ]
            ),
            *evidence_blocks(summary),
        ]
        top = (summary.get("top_flagged") or [])[:N_FINDINGS]
        texts = run.texts([t["id"] for t in top])
        blocks.append(
            Rows(
                [{**t, "text": short(texts.get(t["id"]))} for t in top],
                ["id", "given", "suggested", "score", "text"],
            )
        )
    return [Section("Label issues", blocks, key="label_issues")]
