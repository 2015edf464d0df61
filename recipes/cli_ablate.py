"""`assay ablate RECIPE`: train every variant on k seeds and report deltas with CIs."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("recipe", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output directory (default runs/<name>-ablation, or runs/<name> if it ends so).",
)
@click.option(
    "--model",
    help="fast (TF-IDF + logistic regression) or an encoder (minilm, a HF id or a path); "
    "overrides the recipe.",
)
@click.option("--seeds", type=click.IntRange(min=1), help="Number of seeds (overrides the recipe).")
@click.option(
    "--no-cache", is_flag=True, help="Recompute every step (finished cells still resume)."
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or table.")
@click.option("--mlflow", metavar="URI", help="Also log every arm and seed to this MLflow URI.")
def ablate(
    recipe: Path,
    out: Path | None,
    model: str | None,
    seeds: int | None,
    no_cache: bool,
    quiet: bool,
    mlflow: str | None,
) -> None:
    """Compare a recipe's data variants: mean metric, delta vs baseline with a 95% CI."""
    from rich.console import Console

    from assay.cache import StepCache
    from assay.progress import RichProgress, SilentProgress
    from assay.recipes.ablation import run_ablation
    from assay.recipes.schema import load_recipe
    from assay.recipes.tracking import with_mlflow

    console = Console(stderr=True, quiet=quiet)
    if not console.is_terminal:
        console.width = max(console.width, 150)  # a piped table should not wrap its cells
    parsed = load_recipe(recipe)
    parsed = with_mlflow(parsed, mlflow) if mlflow else parsed
    progress = SilentProgress() if quiet else RichProgress(console)
    cache = StepCache(enabled=parsed.cache and not no_cache)
    result = run_ablation(parsed, out, model=model, seeds=seeds, progress=progress, cache=cache)
    if not quiet:
        print_table(console, result.report)
    click.echo(str(result.out_dir / "ablation.json"))


def print_table(console, report: dict) -> None:
    from rich.markup import escape
    from rich.table import Table

    metric = report["metric"]
    table = Table(
        title=f"{report['name']}: {metric} on {report['eval_split']} "
        f"({report['model']}, seeds {report['seeds']})"
    )
    for col in (
        "arm",
        "train rows",
        "steps",
        "s/seed",
        metric,
        "delta [95% CI]",
        "p",
        "vs control",
    ):
        table.add_column(col, justify="left" if col == "arm" else "right", no_wrap=True)
    for r in report["arms"]:
        delta = (
            f"{100 * r['delta']:+.2f} [{100 * r['delta_low']:+.2f}, {100 * r['delta_high']:+.2f}]"
            if "delta" in r
            else ""
        )
        control = (
            f"{100 * r['vs_control_delta']:+.2f} (p {r['vs_control_p_value']:.2g})"
            if "vs_control_delta" in r
            else ""
        )
        steps = "" if r["optimizer_steps"] is None else f"{r['optimizer_steps']:.0f}"
        p = f"{r['p_value']:.2g}" if "p_value" in r else ""
        mark = " *" if r.get("significant") else ""
        table.add_row(
            escape(r["arm"]), f"{r['train_rows']:,.0f}", steps, f"{r['seconds']:.2f}",
            f"{100 * r['score']:.2f}", delta + mark, p, control,
        )  # fmt: skip
    console.print(table)
    for w in report["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {escape(w)}")
