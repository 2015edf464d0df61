"""`assay train CORPUS`: fit one model on a corpus's train rows and score dev and test."""

from __future__ import annotations

from pathlib import Path

import click

from assay.recipes.cli.examples import examples
from assay.recipes.cli.options import (
    corpus_argument,
    model_option,
    out_dir_option,
    quiet_option,
    seed_option,
)


@click.command(
    epilog=examples(
        "assay train runs/quickstart",
        "assay train runs/quickstart/corpus.parquet --model minilm --slice origin --save-model",
    )
)
@corpus_argument()
@model_option(default="fast")
@seed_option(default=0, of="the training run")
@out_dir_option("<run>/train-<model>, beside a corpus file")
@click.option(
    "--slice",
    "slice_by",
    multiple=True,
    help="Also report metrics per value of this column (repeat).",
)
@click.option("--save-model", is_flag=True, help="Save the fine-tuned model or adapter.")
@quiet_option
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
    from rich.console import Console
    from rich.table import Table

    from assay.curate.io import read_corpus
    from assay.progress import RichProgress, SilentProgress
    from assay.train.evaluate import train_and_evaluate

    frame = read_corpus(corpus)
    console = Console(stderr=True, quiet=quiet)
    out = out or (corpus if corpus.is_dir() else corpus.parent) / f"train-{model.replace('/', '_')}"
    outcome = train_and_evaluate(
        frame,
        model=model,
        seed=seed,
        progress=SilentProgress() if quiet else RichProgress(console),
        out_dir=out,
        save_model=save_model,
        slice_by=slice_by,
    )
    table = Table(
        title=f"{model} on {corpus} (seed {seed}, {outcome.train_rows:,} train rows, {outcome.seconds:.1f} s)"
    )
    for col in ("split", "n", "accuracy [95% CI]", "macro-F1 [95% CI]", "ECE"):
        table.add_column(col, justify="left" if col == "split" else "right")
    for name, ci in outcome.intervals.items():
        split, _, subset = name.partition(":")
        m = outcome.metrics[split][subset] if subset else outcome.metrics[split]
        cells = [
            f"{100 * ci[k]['estimate']:.2f} [{100 * ci[k]['low']:.2f}, {100 * ci[k]['high']:.2f}]"
            for k in ("accuracy", "macro_f1")
        ]
        # The clean subset leaves out the eval rows a leakage audit marked as leaked.
        label = f"{split} clean ({m['n_leaked']:,} leaked left out)" if subset else split
        ece = f"{m['ece']:.3f}" if "ece" in m else "-"
        table.add_row(label, f"{m['n']:,}", *cells, ece)
    console.print(table)
    console.print(f"predictions and metrics in {out}")
