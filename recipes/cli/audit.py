"""`assay audit`: audits of a corpus outside a recipe: train/dev/test leakage, the data
quality card, and a model audit (slices, counterfactual bias, errors)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from assay.audits.leakage_methods import METHODS
from assay.context import DEFAULT_SEED
from assay.recipes.cli.examples import examples
from assay.recipes.cli.group import AssayGroup
from assay.recipes.cli.options import json_option, model_option, quiet_option, seed_option


@click.group(
    "audit",
    cls=AssayGroup,
    epilog=examples(
        "assay audit leakage runs/quickstart",
        "assay audit quality runs/quickstart --json",
        "assay audit model runs/quickstart --slice origin",
    ),
)
def audit() -> None:
    """Audit a corpus without a recipe: leaks between splits, data quality, a model's errors."""


@audit.command(
    "leakage",
    epilog=examples(
        "assay audit leakage runs/quickstart",
        "assay audit leakage data/splits/ --method exact --benchmark test.jsonl --json",
    ),
)
@click.argument("data", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--method",
    "methods",
    multiple=True,
    type=click.Choice(METHODS),
    help="Run only this method (repeat for several; default all).",
)
@click.option(
    "--findings",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the findings table (Parquet) to this file.",
)
@click.option(
    "--benchmark",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Also report contamination of every split by this benchmark file's texts.",
)
@json_option
@quiet_option
def leakage_cmd(
    data: Path,
    methods: tuple[str, ...],
    findings: Path | None,
    benchmark: Path | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Leaks between splits of DATA (a corpus file, a run directory, or a folder of
    train/dev/test files): each method's share of eval rows affected, per pair of splits."""
    from assay import atomic
    from assay.audits.leakage import LeakageConfig, load
    from assay.audits.leakage import audit as run_audit

    options = {"benchmark": str(benchmark)} if benchmark else {}
    cfg = LeakageConfig(methods=list(methods), **options) if methods else LeakageConfig(**options)
    result = run_audit(load(data), cfg)
    if findings is not None:
        atomic.write_parquet(findings, result["findings"])
    summary = result["summary"]
    if as_json:
        click.echo(
            json.dumps({"summary": summary.to_dicts(), "n_findings": result["findings"].height})
        )
        return
    if quiet:
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("pair", "method", "eval rows", "affected", "share")
    for row in summary.iter_rows(named=True):
        table.add_row(
            row["pair"],
            row["method"],
            f"{row['eval_rows']:,}",
            f"{row['affected']:,}",
            f"{100 * row['share']:.2f}%",
        )
    Console().print(table)


@audit.command(
    "quality",
    epilog=examples(
        "assay audit quality runs/quickstart",
        "assay audit quality corpus.parquet --min-words 5 --json",
    ),
)
@click.argument("data", type=click.Path(exists=True, path_type=Path))
@click.option("--min-words", type=click.IntRange(min=1), default=3, show_default=True,
              help="Rows with fewer words are short.")  # fmt: skip
@click.option("--max-words", type=click.IntRange(min=1), default=512, show_default=True,
              help="Rows with more words are long.")  # fmt: skip
@click.option(
    "--findings",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the flagged rows (Parquet) to this file.",
)
@json_option
@quiet_option
def quality_cmd(
    data: Path, min_words: int, max_words: int, findings: Path | None, as_json: bool, quiet: bool
) -> None:
    """The data quality card of DATA (a corpus file, a run directory, or a folder of
    train/dev/test files): rows per split and label, imbalance, lengths, duplicates,
    empty/short/long/other-language rows, vocabulary and typical words per label."""
    from assay import atomic
    from assay.audits.leakage import load
    from assay.audits.quality import QualityConfig, quality_card

    card = quality_card(load(data), QualityConfig(min_words=min_words, max_words=max_words))
    if findings is not None:
        atomic.write_parquet(findings, card.findings)
    if as_json:
        click.echo(json.dumps(card.to_dict()))
        return
    if not quiet:
        from rich.console import Console

        Console().print(card.rich())


@audit.command(
    "model",
    epilog=examples(
        "assay audit model runs/quickstart",
        "assay audit model runs/quickstart --slice origin --terms terms.txt --json",
    ),
)
@click.argument("data", type=click.Path(exists=True, path_type=Path))
@model_option("fast")
@click.option(
    "--split",
    type=click.Choice(["dev", "test"]),
    default="test",
    show_default=True,
    help="The split predicted and audited.",
)
@click.option(
    "--terms",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Term pairs to swap (.json or .txt; default: gendered words and first names).",
)
@click.option(
    "--slice",
    "slice_by",
    multiple=True,
    help="Slice by this column (repeat for several; default: length, origin, lang, group "
    "and every column with a few values).",
)
@click.option(
    "--min-size",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Slices with fewer rows are not ranked.",
)
@seed_option(DEFAULT_SEED)
@click.option(
    "--findings",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the findings table (Parquet) to this file.",
)
@json_option
@quiet_option
def model_cmd(
    data: Path,
    model: str,
    split: str,
    terms: Path | None,
    slice_by: tuple[str, ...],
    min_size: int,
    seed: int,
    findings: Path | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Train a model on the train rows of DATA and audit its predictions of the test rows:
    metrics per slice with 95% CIs and the worst slices, counterfactual flip rates for
    gendered words and names, confident mistakes, confusion pairs and feature weights."""
    from assay import atomic
    from assay.audits.leakage import load
    from assay.audits.model_audit import ModelAuditConfig, audit_model, rich_tables
    from assay.context import RunContext

    cfg = ModelAuditConfig(
        model=model,
        split=split,
        terms=str(terms) if terms else None,
        slice_by=list(slice_by) or None,
        min_size=min_size,
    )
    ctx = RunContext(seed=seed).for_step(0, "model_audit")
    found, summary, _ = audit_model(load(data), cfg, ctx)
    if findings is not None:
        atomic.write_parquet(findings, found)
    if as_json:
        click.echo(json.dumps(summary))
        return
    if not quiet:
        from rich.console import Console

        Console().print(rich_tables(found, summary))
