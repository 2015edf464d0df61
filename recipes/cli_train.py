"""`assay train CORPUS`: fit one model on a corpus's train rows and score dev and test."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("corpus", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--model",
    default="fast",
    show_default=True,
    help="fast (TF-IDF + logistic regression), minilm, a HF id or a path.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the training run.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where predictions and metrics go (default <run>/train-<model>).",
)
@click.option(
    "--slice",
    "slice_by",
    multiple=True,
    help="Also report metrics per value of this column (repeat).",
)
@click.option("--save-model", is_flag=True, help="Save the fine-tuned model or adapter.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or table.")
def train(
    corpus: Path,
    model: str,
    seed: int,
    out: Path | None,
    slice_by: tuple[str, ...],
    save_model: bool,
    quiet: bool,
) -> None:
    """Train on CORPUS (a corpus parquet or a run directory) and report dev/test metrics with 95% CIs."""
    import polars as pl
    from rich.console import Console
    from rich.table import Table

    from assay import atomic
    from assay.errors import InputError
    from assay.progress import RichProgress, SilentProgress
    from assay.train.evaluate import metric_intervals, train_and_evaluate

    path = corpus / "corpus.parquet" if corpus.is_dir() else corpus
    if not path.exists():
        raise InputError(
            f"{str(corpus)!r} is neither a corpus parquet nor a run directory with corpus.parquet"
        )
    console = Console(stderr=True, quiet=quiet)
    name = model.replace("/", "_")
    out = out or (corpus if corpus.is_dir() else path.parent) / f"train-{name}"
    outcome = train_and_evaluate(
        pl.read_parquet(path),
        model=model,
        seed=seed,
        progress=SilentProgress() if quiet else RichProgress(console),
        out_dir=out,
        save_model=save_model,
        slice_by=slice_by,
    )
    intervals = metric_intervals(outcome, seed)
    summary = outcome.summary()
    summary["intervals"] = intervals
    atomic.write_json(out / "metrics.json", summary)
    table = Table(
        title=f"{model} on {path} (seed {seed}, {outcome.train_rows:,} train rows, {outcome.seconds:.1f} s)"
    )
    for col in ("split", "n", "accuracy [95% CI]", "macro-F1 [95% CI]", "ECE"):
        table.add_column(col, justify="left" if col == "split" else "right")
    for split, ci in intervals.items():
        m = outcome.metrics[split]
        cells = [
            f"{100 * ci[k]['estimate']:.2f} [{100 * ci[k]['low']:.2f}, {100 * ci[k]['high']:.2f}]"
            for k in ("accuracy", "macro_f1")
        ]
        table.add_row(split, f"{m['n']:,}", *cells, f"{m['ece']:.3f}")
    console.print(table)
    console.print(f"predictions and metrics in {out}")
