"""What a run gives back, from `assay.run` or read again with `assay.load`.

A `RunResult` names its tables as a notebook user looks for them: `corpus`, `dropped`,
`lineage`, `findings`, and the `ablation` when the recipe had one; `to_pandas()` and
`to_hf()` hand the corpus to the library the user works in next. Its repr is a few lines
(the folder, rows per split, what was dropped, the ablation's verdicts), not the manifest.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from assay import corpus as corpus_mod
from assay.books import StepReport
from assay.errors import InputError
from assay.rundir import CORPUS, DROPPED, LINEAGE, MANIFEST, RunDirectory

if TYPE_CHECKING:
    from assay.recipes.ablation import AblationResult
    from assay.recipes.runner import PipelineResult

ABLATION = "ablation.json"
TABLES = ("corpus", "dropped", "lineage")
# Arms named in the repr; the rest are counted.
REPR_ARMS = 6


@dataclasses.dataclass
class RunResult:
    """A run: its folder (`path`), manifest, tables and, when it ran one, its ablation."""

    run_dir: RunDirectory
    manifest: dict[str, Any]
    pipeline: PipelineResult
    ablation: AblationResult | None = None

    @property
    def path(self) -> Path:
        """The run folder."""
        return self.run_dir.path

    @property
    def corpus(self) -> pl.DataFrame:
        """The resulting corpus (corpus.parquet): one row per example, with its split."""
        return self.pipeline.corpus

    @property
    def dropped(self) -> pl.DataFrame:
        """Every removed input row and rejected generated row, with `step` and `reason`."""
        return self.pipeline.dropped

    @property
    def lineage(self) -> pl.DataFrame:
        """What steps changed in kept rows: id, step, field, before, after."""
        return self.pipeline.lineage

    @property
    def findings(self) -> dict[str, pl.DataFrame]:
        """Each step's findings table, keyed `NN_<step>` (duplicate clusters, leaks...)."""
        return self.pipeline.findings

    @property
    def reports(self) -> list[StepReport]:
        """Each step's report: rows in and out, drop reasons, seconds, its summary."""
        return self.pipeline.reports

    @property
    def labels(self) -> list[str]:
        """The label set: the recipe's declared `labels`, else the labels the corpus holds."""
        declared = ((self.manifest.get("recipe") or {}).get("input") or {}).get("labels")
        return list(declared) if declared else corpus_mod.label_set(self.corpus)

    def to_pandas(self, table: str = "corpus") -> Any:
        """`table` (corpus, dropped or lineage) as a pandas DataFrame."""
        if table not in TABLES:
            raise InputError(f"to_pandas: no table {table!r}; choose one of {list(TABLES)}")
        from assay.errors import require

        require("pandas", "hf", "to_pandas")
        return getattr(self, table).to_pandas()

    def to_hf(self, all_columns: bool = False) -> Any:
        """The corpus as a `datasets.DatasetDict`: one split per corpus split (dev is
        `validation`), the label a ClassLabel with the label names; only id, text and label
        unless `all_columns`."""
        from assay.curate.io import to_dataset_dict

        return to_dataset_dict(self.corpus, all_columns)

    def __repr__(self) -> str:
        return "\n".join(summary_lines(self))

    def _repr_html_(self) -> str:
        from assay.html import STEP_COLUMNS, html_table

        acc = self.manifest["accounting"]
        title = f"{self.manifest['name']}: {acc['rows_read']} rows read, {acc['rows_out']} out"
        html = html_table(self.manifest["steps"], STEP_COLUMNS, title=title, notes=[str(self.path)])
        return html + (self.ablation._repr_html_() if self.ablation is not None else "")


def summary_lines(result: RunResult) -> list[str]:
    """The repr: folder, rows per split, drops, and the ablation's verdicts."""
    acc = result.manifest.get("accounting", {})
    splits = result.corpus.group_by("split").len().sort("split", nulls_last=True).iter_rows()
    per_split = ", ".join(f"{s or 'unsplit'} {n:,}" for s, n in splits)
    lines = [
        f"RunResult({str(result.path)!r})",
        f"  rows: {acc.get('rows_read', 0):,} read -> {result.corpus.height:,} out ({per_split})",
    ]
    inputs = result.dropped.filter(~pl.col("generated").fill_null(False))
    reasons = (
        inputs.group_by("step", "reason").len().sort(["len", "step"], descending=[True, False])
    )
    shown = ", ".join(f"{s} {r} {n:,}" for s, r, n in reasons.head(3).iter_rows())
    more = f", ... {reasons.height - 3} more reasons" if reasons.height > 3 else ""
    lines.append(f"  dropped: {inputs.height:,}" + (f" ({shown}{more})" if shown else ""))
    rejected = result.dropped.height - inputs.height
    if rejected:
        lines.append(f"  generated rows rejected: {rejected:,}")
    if result.ablation is not None:
        lines.extend(ablation_lines(result.ablation.report))
    lines.append("  tables: .corpus .dropped .lineage .findings; .to_pandas() .to_hf()")
    return lines


def ablation_lines(report: dict[str, Any]) -> list[str]:
    """One line for the ablation and one per arm: its delta, interval and verdict."""
    seeds = report.get("seeds") or []
    lines = [
        f"  ablation: {report.get('metric')} on {report.get('eval_split')}, "
        f"{report.get('model')}, {len(seeds)} seed(s) (.ablation)"
    ]
    arms = [a for a in report.get("arms", []) if a.get("kind") != "baseline"]
    for arm in arms[:REPR_ARMS]:
        delta, low, high = arm.get("delta"), arm.get("delta_low"), arm.get("delta_high")
        interval = "" if low is None or high is None else f" [{low:+.3f}, {high:+.3f}]"
        value = "n/a" if delta is None else f"{delta:+.3f}"
        lines.append(f"    {arm['arm']}: {value}{interval} {arm.get('verdict') or ''}".rstrip())
    if len(arms) > REPR_ARMS:
        lines.append(f"    ... {len(arms) - REPR_ARMS} more arms")
    return lines


def load(path: str | os.PathLike[str]) -> RunResult:
    """A finished run read back from its folder (or any file in it, e.g. corpus.parquet):
    the corpus with its splits and labels, dropped rows, lineage, findings, step reports,
    and the ablation when the run has one."""
    from assay.recipes.runner import PipelineResult

    given = Path(path).expanduser()
    folder = given.parent if given.is_file() else given
    if not (folder / MANIFEST).is_file():
        what = "does not exist" if not given.exists() else "is not in a finished run folder"
        raise InputError(
            f"{str(given)!r} {what} (no {MANIFEST} beside {CORPUS}); pass the folder "
            "`assay run` wrote, or read a corpus file alone with assay.read(path)"
        )
    run_dir = RunDirectory(folder)
    manifest = run_dir.read_manifest()
    corpus = corpus_mod.conform(_table(folder / CORPUS))
    multilabel = corpus_mod.is_multilabel(corpus)
    dropped = _table(folder / DROPPED, corpus_mod.empty(multilabel))
    lineage = _table(folder / LINEAGE, _empty_lineage())
    findings = {p.stem: pl.read_parquet(p) for p in sorted((folder / "findings").glob("*.parquet"))}
    known = {f.name for f in dataclasses.fields(StepReport)}
    reports = [
        StepReport.from_dict({k: v for k, v in r.items() if k in known})
        for r in manifest.get("steps", [])
    ]
    pipeline = PipelineResult(corpus, dropped, lineage, reports, findings, key="")
    return RunResult(run_dir, manifest, pipeline, load_ablation(folder))


def load_ablation(folder: Path) -> AblationResult | None:
    """The ablation a run folder holds (ablation.json), or None."""
    import json

    if not (folder / ABLATION).is_file():
        return None
    from assay.recipes.ablation import AblationResult
    from assay.train.compare import arms_table

    report = json.loads((folder / ABLATION).read_text())
    return AblationResult(folder, report, arms_table(report["arms"]), report.get("warnings", []))


def _table(path: Path, empty: pl.DataFrame | None = None) -> pl.DataFrame:
    if not path.is_file() and empty is not None:
        return empty
    try:
        return pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot read {str(path)!r} of the run: {first}") from None


def _empty_lineage() -> pl.DataFrame:
    from assay.books import LINEAGE_SCHEMA

    return pl.DataFrame(schema=LINEAGE_SCHEMA)
