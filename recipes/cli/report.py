"""`assay report RUN_DIR`: rebuild a run's (or an ablation's) report.html and report.md."""

from __future__ import annotations

from pathlib import Path

import click

from assay.recipes.cli.examples import examples


@click.command("report", epilog=examples("assay report runs/quickstart"))
@click.argument("run_dir", type=click.Path(path_type=Path))
def report(run_dir: Path) -> None:
    """Rebuild report.html and report.md of RUN_DIR (a run directory or an ablation's
    folder) from its files; prints their paths."""
    from assay.audits.report import rebuild_report

    for path in rebuild_report(run_dir):
        click.echo(str(path))
