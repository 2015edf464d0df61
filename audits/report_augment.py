"""The augmentation section: what each augmenter wrote (parent -> child), how synthetic
each class has become, and which generated rows the checks and guards turned away."""

from __future__ import annotations

from typing import Any

import polars as pl

from assay.audits.report_artifacts import RunArtifacts
from assay.audits.report_charts import bar_chart
from assay.audits.report_sections import Block, Chart, Heading, Rows, Section, Text, short

N_SAMPLES = 5
N_DROP_EXAMPLES = 2


def augmentation(run: RunArtifacts) -> list[Section]:
    steps = run.steps_of(kind="augmenter")
    corpus, dropped = run.corpus, run.dropped
    generated_drops = (
        dropped.filter(pl.col("generated").fill_null(False))
        if dropped is not None and "generated" in dropped.columns
        else None
    )
    synthetic = (
        corpus.filter(pl.col("origin") != "source")
        if corpus is not None and "origin" in corpus.columns
        else None
    )
    has_drops = generated_drops is not None and generated_drops.height > 0
    if not steps and not has_drops and (synthetic is None or synthetic.is_empty()):
        return []
    blocks: list[Block] = []
    for r in steps:
        blocks += [
            Heading(f"{r['step']} (step {r['index']})"),
            Text(
                f"{r['n_added']:,} rows added from {r['summary'].get('n_selected', 0):,} "
                f"selected rows; {r.get('n_rejected', 0):,} generated rows rejected."
            ),
            Rows(samples(run, r), ["id", "parent", "child"]),
        ]
    if corpus is not None and "origin" in corpus.columns:
        ratio = synthetic_ratio(corpus)
        if ratio:
            shares = {r["label"]: r["synthetic share"] for r in ratio}
            blocks += [
                Heading("Real and synthetic rows per class"),
                Text("A row is synthetic when its origin is not the source."),
                Rows(ratio),
                Chart(bar_chart(shares, "synthetic share per label"), shares, "synthetic share"),
            ]
    if generated_drops is not None and has_drops:
        blocks += [
            Heading("Generated rows dropped, per step and reason"),
            Rows(
                generated_drops.group_by("step", "reason")
                .len()
                .rename({"len": "rows"})
                .sort(["step", "rows"], descending=[False, True])
                .to_dicts()
            ),
            Heading("Examples of dropped generated rows"),
            Rows(drop_examples(run, generated_drops), ["step", "reason", "parent", "child"]),
        ]
    return [Section("Augmentation", blocks, key="augmentation")]


def samples(run: RunArtifacts, step: dict[str, Any]) -> list[dict[str, Any]]:
    """Up to N_SAMPLES parent -> child pairs: the step's examples, else its corpus rows."""
    examples = [e for e in step.get("examples") or [] if "parent_text" in e]
    if examples:
        return [
            {"id": e.get("id"), "parent": short(e["parent_text"]), "child": short(e.get("text"))}
            for e in examples[:N_SAMPLES]
        ]
    corpus = run.corpus
    if corpus is None or "origin" not in corpus.columns:
        return []
    # `augment.<step>`, or with the detail the step gave: `augment.<step>:<detail>`.
    base = f"augment.{step['step']}"
    ours = (pl.col("origin") == base) | pl.col("origin").str.starts_with(f"{base}:")
    rows = corpus.filter(ours).head(N_SAMPLES).to_dicts()
    parents = run.texts([r["parent_id"] for r in rows])
    return [
        {"id": r["id"], "parent": short(parents.get(r["parent_id"])), "child": short(r["text"])}
        for r in rows
    ]


def synthetic_ratio(corpus: pl.DataFrame) -> list[dict[str, Any]]:
    """Per label: real rows, synthetic rows, synthetic per real and the synthetic share."""
    from assay.corpus import is_multilabel

    frame = corpus.explode("label") if is_multilabel(corpus) else corpus
    counts = (
        frame.with_columns(
            pl.col("label").cast(pl.String).fill_null("<unlabelled>"),
            synthetic=pl.col("origin") != "source",
        )
        .group_by("label")
        .agg(real=(~pl.col("synthetic")).sum(), synthetic=pl.col("synthetic").sum())
        .sort("label")
    )
    out = []
    for label, real, synth in counts.iter_rows():
        out.append(
            {
                "label": label,
                "real": int(real),
                "synthetic": int(synth),
                "synthetic per real": round(synth / real, 2) if real else "inf",
                "synthetic share": round(synth / (real + synth), 3) if real + synth else 0.0,
            }
        )
    return out


def drop_examples(run: RunArtifacts, drops: pl.DataFrame) -> list[dict[str, Any]]:
    picked = drops.group_by("step", "reason", maintain_order=True).head(N_DROP_EXAMPLES).to_dicts()
    parents = run.texts([r.get("parent_id") for r in picked])
    return [
        {
            "step": r["step"],
            "reason": r["reason"],
            "parent": short(parents.get(r.get("parent_id"))),
            "child": short(r["text"]),
        }
        for r in picked
    ]
