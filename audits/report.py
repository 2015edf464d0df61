"""The run report: report.html (self-contained: tables and inline SVG charts, no external
assets) and report.md beside it, built from the sections a run has data for."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from assay import atomic
from assay.audits.report_artifacts import ABLATION, RunArtifacts
from assay.audits.report_charts import bar_chart
from assay.audits.report_sections import Section, build_sections
from assay.errors import InputError
from assay.html import number
from assay.rundir import CORPUS, MANIFEST, REPORT, RunDirectory

REPORT_MARKDOWN = "report.md"
__all__ = ["bar_chart", "page", "rebuild_report", "render_run_report", "table", "write_report"]

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
h3{font-size:1rem;margin-top:1.2rem}nav a{margin-right:.8rem}
table{border-collapse:collapse;margin:.5rem 0;display:block;max-width:100%;overflow-x:auto}td,th{padding:.25rem .6rem;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
th{background:#f6f6f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#1a7f37}.bad{color:#b42318}.muted{color:#777}svg{display:block;margin:.5rem 0}svg text{font:12px system-ui,sans-serif}
"""


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    if not rows:
        return '<p class="muted">none</p>'
    columns = list(columns or rows[0].keys())
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for c in columns:
            v = row.get(c)
            cls = ' class="num"' if isinstance(v, (int, float)) and not isinstance(v, bool) else ""
            text = (
                number(v)
                if isinstance(v, float)
                else (
                    f"{v:,}"
                    if isinstance(v, int) and not isinstance(v, bool)
                    else str(v if v is not None else "")
                )
            )
            cells.append(f"<td{cls}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def page(title: str, sections: Sequence[tuple[str, str]]) -> str:
    body = "".join(f"<h2>{html.escape(h)}</h2>{content}" for h, content in sections)
    return _document(title, body)


def _document(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def render_html(title: str, sections: Sequence[Section]) -> str:
    nav = "".join(f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in sections)
    body = (f"<nav>{nav}</nav>" if nav else "") + "".join(s.html() for s in sections)
    return _document(title, body)


def render_markdown(title: str, sections: Sequence[Section]) -> str:
    return "\n\n".join([f"# {title}", *(s.markdown() for s in sections)]) + "\n"


def write_report(run: RunArtifacts, title: str) -> tuple[Path, Path]:
    """report.html and report.md of every section the run has data for; returns both paths."""
    sections = build_sections(run)
    html_path, md_path = run.path / REPORT, run.path / REPORT_MARKDOWN
    atomic.write_text(html_path, render_html(title, sections))
    atomic.write_text(md_path, render_markdown(title, sections))
    return html_path, md_path


def render_run_report(
    run_dir: RunDirectory, manifest: dict[str, Any], corpus: pl.DataFrame, dropped: pl.DataFrame
) -> str:
    """Write the run's report.html and report.md (with the run, before its manifest) and
    return the HTML."""
    run = RunArtifacts(run_dir.path, manifest, corpus, dropped)
    html_path, _ = write_report(run, f"assay run: {manifest['name']}")
    return html_path.read_text()


def rebuild_report(path: str | Path) -> tuple[Path, Path]:
    """Rebuild report.html and report.md of a run directory or an ablation's folder."""
    import json

    folder = Path(path)
    if not folder.is_dir():
        raise InputError(
            f"expected a run directory (with {MANIFEST}) or an ablation's folder (with "
            f"{ABLATION}), but {str(folder)!r} is not a folder; pass the --out of `assay run` "
            "or `assay ablate`"
        )
    if (folder / MANIFEST).exists():
        if not (folder / CORPUS).exists():
            raise InputError(
                f"the run directory {str(folder)!r} has {MANIFEST} but no {CORPUS}; "
                "rerun the recipe to write it whole"
            )
        manifest = json.loads((folder / MANIFEST).read_text())
        return write_report(RunArtifacts(folder, manifest), f"assay run: {manifest['name']}")
    if (folder / ABLATION).exists():
        run = RunArtifacts(folder)
        name = (run.ablation or {}).get("name", folder.name)
        return write_report(run, f"{name}: ablation")
    raise InputError(
        f"expected a run directory (with {MANIFEST}) or an ablation's folder (with "
        f"{ABLATION}), but {str(folder)!r} has neither; pass the --out of `assay run` or "
        "`assay ablate`"
    )
