"""The report's sections: each is built from a run's artifacts and renders to HTML and to
Markdown. A section builder returns nothing when the run produced no data for it, so a
report shows only what the run did.

Sections are made of blocks (text, tables, charts, pre-rendered HTML/Markdown pairs);
the two renderings come from the same blocks, so report.html and report.md agree.
"""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from assay.audits.report_artifacts import RunArtifacts
from assay.audits.report_markdown import judge_label, md_table, text_bars

MAX_TEXT = 160


@dataclasses.dataclass(frozen=True)
class Text:
    text: str

    def html(self) -> str:
        return f"<p>{html.escape(self.text)}</p>"

    def markdown(self) -> str:
        return self.text


@dataclasses.dataclass(frozen=True)
class Heading:
    text: str

    def html(self) -> str:
        return f"<h3>{html.escape(self.text)}</h3>"

    def markdown(self) -> str:
        return f"### {self.text}"


@dataclasses.dataclass(frozen=True)
class Rows:
    rows: Sequence[Mapping[str, Any]]
    columns: Sequence[str] | None = None

    def html(self) -> str:
        from assay.audits.report import table

        return table(self.rows, self.columns)

    def markdown(self) -> str:
        return md_table(self.rows, self.columns)


@dataclasses.dataclass(frozen=True)
class Chart:
    """An inline SVG; in Markdown, text bars of `values` (or nothing)."""

    svg: str
    values: Mapping[str, float] | None = None
    title: str = ""

    def html(self) -> str:
        return self.svg

    def markdown(self) -> str:
        return text_bars(self.values, self.title) if self.values else ""


@dataclasses.dataclass(frozen=True)
class Raw:
    """Content already rendered in both formats (a step's own renderer, the ablation)."""

    html_text: str
    markdown_text: str

    def html(self) -> str:
        return self.html_text

    def markdown(self) -> str:
        return self.markdown_text


Block = Text | Heading | Rows | Chart | Raw


@dataclasses.dataclass(frozen=True)
class Section:
    title: str
    blocks: Sequence[Block]
    key: str = ""

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", (self.key or self.title).lower()).strip("-")

    def html(self) -> str:
        body = "".join(b.html() for b in self.blocks)
        return f'<section id="{self.anchor}"><h2>{html.escape(self.title)}</h2>{body}</section>'

    def markdown(self) -> str:
        parts = [f"## {self.title}", *(b.markdown() for b in self.blocks)]
        return "\n\n".join(p for p in parts if p)


SectionBuilder = Callable[[RunArtifacts], list[Section]]


def _registry() -> list[tuple[str, SectionBuilder]]:
    # Imported here: the builders import this module for the block types.
    from assay.audits import report_audits, report_augment, report_corpus, report_label_noise

    return [
        ("corpus_flow", report_corpus.corpus_flow),
        ("class_balance", report_corpus.class_balance),
        ("duplicates", report_audits.duplicates),
        ("label_issues", report_label_noise.label_issues),
        ("leakage", report_audits.leakage_matrix),
        ("augmentation", report_augment.augmentation),
        ("ablation", ablation),
        ("step_findings", report_audits.step_findings),
    ]


def section_names() -> list[str]:
    """The registry's section keys, in report order."""
    return [name for name, _ in _registry()]


def build_sections(run: RunArtifacts) -> list[Section]:
    """Every section the run has data for, in report order."""
    out: list[Section] = []
    for _, builder in _registry():
        out.extend(builder(run))
    return out


def short(text: Any, limit: int = MAX_TEXT) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def scalars(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The summary values that fit in one table cell."""
    return {k: v for k, v in summary.items() if isinstance(v, (int, float, str, bool)) or v is None}


# -- ablation -------------------------------------------------------------------------------


def ablation(run: RunArtifacts) -> list[Section]:
    """The ablation's forest plot and table, when the folder holds an ablation's results."""
    report, table = run.ablation, run.ablation_table
    if report is None or table is None:
        return []
    from assay.audits.ablation_report import curve_table, forest_rows, forest_title, render_html
    from assay.audits.forest_plot import curve_svg, forest_svg

    svg = forest_svg(forest_rows(report), forest_title(report))
    curve = ""
    if report.get("learning_curve"):
        frame = curve_table(report)
        curve = curve_svg(
            [
                {"name": r["arm"], "size": r["train_rows_cap"], "delta": r["delta"],
                 "low": r["delta_low"], "high": r["delta_high"]}
                for r in frame.to_dicts()
                if r["kind"] != "baseline"
            ],
            f"{report['metric']} on {report['eval_split']}: delta vs baseline by train rows",
        )  # fmt: skip
    page = render_html(report, table, svg, curve)
    # The ablation page's sections, one level down inside this one.
    body = page.split("</h1>", 1)[-1].rsplit("</body>", 1)[0]
    body = body.replace("<h2>Ablation</h2>", "", 1)
    body = body.replace("<h2>", "<h3>").replace("</h2>", "</h3>")
    return [Section("Ablation", [Raw(body, _ablation_markdown(report))], key="ablation")]


def _ablation_markdown(report: dict[str, Any]) -> str:
    def pts(v: float | None) -> str:
        return "" if v is None else f"{100 * v:+.2f}"

    rows = [
        {
            "arm": r["arm"],
            "kind": r["kind"],
            report["metric"]: None if r.get("score") is None else round(100 * r["score"], 2),
            "delta": pts(r.get("delta")),
            "delta CI": ""
            if r.get("delta") is None
            else f"{pts(r.get('delta_low'))}..{pts(r.get('delta_high'))}",
            "verdict": r.get("verdict") or "",
        }
        for r in report["arms"]
    ]
    intro = (
        f"Judge {judge_label(report)}, seeds {report['seeds']}, {report['eval_rows']:,} "
        f"{report['eval_split']} rows; deltas in points vs the baseline."
        + (
            f" Caution: {report['judge']['caution']}"
            if (report.get("judge") or {}).get("caution")
            else ""
        )
    )
    warnings = "\n".join(f"- {w}" for w in report.get("warnings") or [])
    return "\n\n".join(p for p in (intro, md_table(rows), warnings) if p)
