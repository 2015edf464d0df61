"""Report sections for what audits found: duplicates, label issues, the leakage matrix, and
every other audit step's findings (through the step's own renderer when it has one)."""

from __future__ import annotations

import html
import importlib
import json
import logging
from typing import Any

import polars as pl

from assay.audits.report_artifacts import RunArtifacts
from assay.audits.report_charts import share_colour
from assay.audits.report_markdown import md_table
from assay.audits.report_sections import Block, Heading, Raw, Rows, Section, Text, scalars, short

log = logging.getLogger(__name__)

N_EXAMPLES = 5
N_FINDINGS = 10
# Steps with a section of their own above; every other audit gets a findings section.
OWN_SECTIONS = ("dedup", "label_noise", "leakage", "balance")
# Steps whose module renders its own findings: `render_html(findings, summary) -> str` and
# `render_markdown(findings, summary) -> str`, looked up when the step is in the run.
STEP_RENDERERS: dict[str, tuple[str, str]] = {
    "quality": ("Quality", "assay.audits.quality"),
    "model_audit": ("Slices and errors", "assay.audits.model_audit"),
}


# -- duplicates -----------------------------------------------------------------------------


def duplicates(run: RunArtifacts) -> list[Section]:
    """Per dedup step: clusters found by its method, rows dropped, example clusters."""
    steps = run.steps_of(name="dedup")
    if not steps:
        return []
    blocks: list[Block] = [
        Rows(
            [
                {
                    "step": r["index"],
                    "method": r["summary"].get("method"),
                    "clusters": r["summary"].get("clusters"),
                    "rows in clusters": r["summary"].get("rows_in_clusters"),
                    "duplicates": r["summary"].get("duplicates"),
                    "dropped": r["n_dropped"],
                    "cross-split pairs": r["summary"].get("cross_split_pairs"),
                    "label conflicts": r["summary"].get("label_conflict_clusters"),
                }
                for r in steps
            ]
        )
    ]
    clusters = _example_clusters(run)
    if clusters:
        blocks += [
            Heading("Example clusters"),
            Rows(clusters, ["cluster", "id", "split", "label", "kept", "text"]),
        ]
    for r in steps:
        if r["examples"]:
            blocks += [
                Heading(f"Dropped as duplicates ({r['summary'].get('method')}, step {r['index']})"),
                Rows([{**e, "text": short(e.get("text"))} for e in r["examples"]]),
            ]
    return [Section("Duplicates", blocks, key="duplicates")]


def _example_clusters(run: RunArtifacts, n: int = 3) -> list[dict[str, Any]]:
    """Members of the first `n` clusters with more than one row, kept and dropped."""
    frames = []
    for frame, kept in ((run.corpus, True), (run.dropped, False)):
        if frame is not None and "dedup__cluster_size" in frame.columns:
            frames.append(
                frame.filter(pl.col("dedup__cluster_size") > 1)
                .select("id", "text", "label", "split", cluster="dedup__cluster")
                .with_columns(label_text(frame), kept=pl.lit(kept))
            )
    if not frames:
        return []
    members = pl.concat(frames, how="vertical_relaxed").sort("cluster", "id")
    chosen = members["cluster"].unique(maintain_order=True).head(n)
    rows = members.filter(pl.col("cluster").is_in(chosen)).to_dicts()
    return [{**r, "text": short(r["text"])} for r in rows]


def label_text(frame: pl.DataFrame) -> pl.Expr:
    """The label as one string: a multi-label list joined with commas."""
    if isinstance(frame.schema["label"], pl.List):
        return pl.col("label").list.join(", ")
    return pl.col("label").cast(pl.String)


# -- leakage --------------------------------------------------------------------------------


def leakage_matrix(run: RunArtifacts) -> list[Section]:
    """Per split pair and method, the share of eval rows affected; example spans."""
    steps = [r for r in run.steps_of(name="leakage") if r["summary"].get("by_pair")]
    if not steps:
        return []
    blocks: list[Block] = []
    for r in steps:
        by_pair = r["summary"]["by_pair"]
        methods = list(dict.fromkeys(p["method"] for p in by_pair))
        pairs = list(dict.fromkeys(p["pair"] for p in by_pair))
        cells = {(p["pair"], p["method"]): p for p in by_pair}
        blocks += [
            Heading(
                f"Share of eval rows affected (step {r['index']}, action {r['summary'].get('action')})"
            ),
            Raw(_matrix_html(pairs, methods, cells), _matrix_markdown(pairs, methods, cells)),
        ]
        findings = run.findings(r)
        if findings is not None and not findings.is_empty():
            blocks += [Heading("Examples"), Rows(_leak_examples(run, findings))]
    return [Section("Leakage matrix", blocks, key="leakage")]


def _cell_text(p: dict[str, Any] | None) -> str:
    if p is None:
        return ""
    return f"{100 * p['share']:.1f}% ({p['affected']:,}/{p['eval_rows']:,})"


def _matrix_html(pairs: list[str], methods: list[str], cells: dict) -> str:
    head = "".join(f"<th>{html.escape(m)}</th>" for m in methods)
    body = []
    for pair in pairs:
        tds = []
        for m in methods:
            p = cells.get((pair, m))
            style = f' style="background:{share_colour(p["share"])}"' if p else ""
            tds.append(f'<td class="num"{style}>{html.escape(_cell_text(p))}</td>')
        body.append(f"<tr><th>{html.escape(pair)}</th>{''.join(tds)}</tr>")
    return f'<table class="matrix"><tr><th>pair</th>{head}</tr>{"".join(body)}</table>'


def _matrix_markdown(pairs: list[str], methods: list[str], cells: dict) -> str:
    rows = [
        {"pair": pair, **{m: _cell_text(cells.get((pair, m))) for m in methods}} for pair in pairs
    ]
    return md_table(rows, ["pair", *methods])


def _leak_examples(run: RunArtifacts, findings: pl.DataFrame) -> list[dict[str, Any]]:
    """A few findings per method: the eval row, the row it leaks from, the shared span."""
    picked = findings.group_by("method", maintain_order=True).head(3)
    rows = picked.to_dicts()
    texts = run.texts([r["eval_id"] for r in rows] + [r["other_id"] for r in rows])
    return [
        {
            "pair": r.get("pair"),
            "method": r["method"],
            "score": r.get("score"),
            "eval text": short(texts.get(r["eval_id"], r["eval_id"])),
            "other text": short(texts.get(r["other_id"], r["other_id"])),
            "span": short(r.get("span")),
        }
        for r in rows
    ]


# -- other audit steps ----------------------------------------------------------------------


def step_findings(run: RunArtifacts) -> list[Section]:
    """A section per audit step without one of its own: the step's renderer if its module
    has one, otherwise the summary and the head of the findings table."""
    out = []
    for r in run.steps:
        if r["step"] in OWN_SECTIONS:
            continue
        findings = run.findings(r)
        renderer = STEP_RENDERERS.get(r["step"])
        if renderer is None and r["kind"] not in ("audit", "sync") and findings is None:
            continue
        if renderer is None and r["kind"] == "augmenter":
            continue  # the augmentation section shows what an augmenter stored
        findings = findings if findings is not None else pl.DataFrame()
        title = f"{renderer[0] if renderer else r['step']} (step {r['index']})"
        own = _rendered(renderer[1], findings, r["summary"]) if renderer else None
        blocks = [own] if own is not None else generic_blocks(findings, r["summary"])
        out.append(Section(title, blocks, key=f"step-{r['index']}-{r['step']}"))
    return out


def _rendered(module_name: str, findings: pl.DataFrame, summary: dict[str, Any]) -> Raw | None:
    """The step module's own rendering, or None when it has no renderer (yet)."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            return None
        raise
    render_html = getattr(module, "render_html", None)
    if render_html is None:
        return None
    render_markdown = getattr(module, "render_markdown", None)
    markdown = (
        render_markdown(findings, summary)
        if render_markdown is not None
        else "\n\n".join(b.markdown() for b in generic_blocks(findings, summary))
    )
    return Raw(render_html(findings, summary), markdown)


def generic_blocks(findings: pl.DataFrame, summary: dict[str, Any]) -> list[Block]:
    """The summary as a table (nested values as JSON) and the first findings."""
    blocks: list[Block] = []
    if summary:
        flat = scalars(summary)
        nested = {
            k: short(json.dumps(v, default=str), 200) for k, v in summary.items() if k not in flat
        }
        blocks.append(Rows([{"key": k, "value": v} for k, v in {**flat, **nested}.items()]))
    if findings.height:
        head = findings.head(N_FINDINGS)
        rows = [
            {k: short(v) if isinstance(v, str) else _cell(v) for k, v in row.items()}
            for row in head.to_dicts()
        ]
        blocks += [
            Text(f"{findings.height:,} findings; the first {head.height}:"),
            Rows(rows, head.columns),
        ]
    elif not summary:
        blocks.append(Text("no findings"))
    return blocks


def _cell(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return short(json.dumps(value, default=str))
    return value
