"""Report sections about the corpus as a whole: how rows flowed through the steps, and the
balance of labels per split."""

from __future__ import annotations

import html
from typing import Any

import polars as pl

from assay.audits.report_artifacts import RunArtifacts
from assay.audits.report_audits import OWN_SECTIONS
from assay.audits.report_charts import bar_chart, flow_chart
from assay.audits.report_sections import Block, Chart, Heading, Raw, Rows, Section, Text, scalars

SPLIT_ORDER = ("train", "dev", "test", "unlabeled")


def corpus_flow(run: RunArtifacts) -> list[Section]:
    """Accounting, rows in/out/dropped/added per step (table and chart), drop reasons."""
    manifest = run.manifest
    if manifest is None:
        return []
    blocks: list[Block] = []
    acc = manifest.get("accounting")
    if acc:
        dropped = acc["dropped_at_load"] + acc["dropped_by_steps"]
        sentence = (
            f"{acc['rows_read']:,} read − {dropped:,} dropped + {acc['added']:,} added = "
            f"{acc['rows_out']:,} rows."
        )
        ok = acc["balanced"]
        status = (
            '<span class="ok">balanced</span>' if ok else '<span class="bad">NOT balanced</span>'
        )
        word = "balanced" if ok else "NOT balanced"
        blocks += [
            Raw(f"<p>{status}: {html.escape(sentence)}</p>", f"**{word}**: {sentence}"),
            Rows([acc]),
        ]
    steps = manifest.get("steps") or []
    if steps:
        blocks += [
            Chart(flow_chart(steps)),
            Rows([_flow_row(r) for r in steps]),
        ]
    if manifest.get("drop_reasons"):
        blocks += [Heading("Drops by step and reason"), Rows(manifest["drop_reasons"])]
    for r in steps:
        if r["examples"] and r["kind"] != "augmenter" and r["step"] not in OWN_SECTIONS:
            blocks += [Heading(f"Examples: {r['step']} (step {r['index']})"), Rows(r["examples"])]
    summaries = [
        {"step": f"{r['index']}. {r['step']}", **scalars(r["summary"])}
        for r in steps
        if scalars(r["summary"])
        and r["kind"] not in ("audit", "sync", "augmenter")
        and r["step"] not in OWN_SECTIONS
    ]
    for row in summaries:
        blocks += [Heading(f"{row['step']} summary"), Rows([row])]
    return [Section("Corpus flow", blocks, key="corpus_flow")] if blocks else []


def _flow_row(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "#": r["index"], "step": r["step"], "kind": r["kind"], "in": r["n_in"],
        "out": r["n_out"], "dropped": r["n_dropped"], "added": r["n_added"],
        "modified": r["n_modified"], "rejected": r.get("n_rejected", 0),
        "seconds": r["seconds"], "cached": r["cached"],
    }  # fmt: skip


def class_balance(run: RunArtifacts) -> list[Section]:
    """Rows per label and split, the imbalance ratio per split, and any balance step's
    distribution before and after."""
    corpus, manifest = run.corpus, run.manifest or {}
    if corpus is None or corpus.is_empty():
        return []
    blocks: list[Block] = []
    if manifest.get("labels"):
        blocks.append(
            Chart(
                bar_chart(manifest["labels"], "rows per label"),
                manifest["labels"],
                "rows per label",
            )
        )
    if manifest.get("splits"):
        splits = {str(k): v for k, v in manifest["splits"].items()}
        blocks.append(Chart(bar_chart(splits, "rows per split"), splits, "rows per split"))
    pivot = label_split_counts(corpus)
    blocks.append(Rows(pivot.to_dicts()))
    ratios = imbalance_ratios(pivot)
    if ratios:
        blocks += [
            Text(
                "Imbalance ratio: rows of the largest label over rows of the smallest, per split."
            ),
            Rows(ratios),
        ]
    for r in run.steps_of(name="balance"):
        summary = r.get("summary") or {}
        if not summary.get("distribution_before"):
            continue
        before, after = summary["distribution_before"], summary.get("distribution_after") or {}
        ratio = (
            f"imbalance ratio {summary.get('imbalance_before')} -> {summary.get('imbalance_after')}"
        )
        before_bars = {f"{k} before": v for k, v in before.items()}
        after_bars = {f"{k} after": v for k, v in after.items()}
        blocks += [
            Heading(f"Class balance ({summary.get('strategy')}, step {r['index']})"),
            Text(ratio),
            Chart(
                bar_chart(before_bars, "train rows per label, before"),
                before_bars,
                "train rows per label, before",
            ),
            Chart(bar_chart(after_bars, "after (rows, or total weight)"), after_bars, "after"),
        ]
    return [Section("Class balance", blocks, key="class_balance")]


def label_split_counts(corpus: pl.DataFrame) -> pl.DataFrame:
    """Rows per label (one row each) and split (one column each)."""
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
    order = {s: i for i, s in enumerate(SPLIT_ORDER)}
    splits = sorted(pivot.columns[1:], key=lambda s: (order.get(s, len(order)), s))
    return pivot.select("label", *splits)


def imbalance_ratios(pivot: pl.DataFrame) -> list[dict[str, Any]]:
    """Per split: the largest and smallest labelled class and their ratio (inf when a
    label of the corpus has no row in that split)."""
    labelled = pivot.filter(pl.col("label") != "<unlabelled>")
    out = []
    if labelled.height < 2:
        return out
    for split in [c for c in labelled.columns if c != "label"]:
        counts = dict(zip(labelled["label"], labelled[split], strict=True))
        if not any(counts.values()):
            continue
        largest = max(counts, key=lambda k: counts[k])
        smallest = min(counts, key=lambda k: counts[k])
        low = counts[smallest]
        out.append(
            {
                "split": split,
                "largest": f"{largest} ({counts[largest]:,})",
                "smallest": f"{smallest} ({low:,})",
                "ratio": round(counts[largest] / low, 2) if low else "inf",
            }
        )
    return out
