"""`assay ablate RECIPE`: train every variant on k seeds and report deltas with CIs."""

from __future__ import annotations

from pathlib import Path

import click

from assay.recipes.cli.examples import examples
from assay.recipes.cli.options import (
    mlflow_options,
    model_option,
    no_cache_option,
    out_dir_option,
    quiet_option,
)


@click.command(
    epilog=examples(
        "assay ablate recipes/ablation.yaml",
        "assay ablate recipes/ablation.yaml --model probe --seeds 5",
        "assay ablate recipes/ablation.yaml --confirm minilm --mlflow sqlite:///mlruns.db",
    )
)
@click.argument("recipe", type=click.Path(dir_okay=False, path_type=Path))
@out_dir_option("runs/<name>-ablation, or runs/<name> if the name ends so")
@model_option()
@click.option("--seeds", type=click.IntRange(min=1), help="Number of seeds (overrides the recipe).")
@no_cache_option
@quiet_option
@mlflow_options("every arm and seed")
@click.option(
    "--confirm",
    "confirm_model",
    is_flag=False,
    flag_value="minilm",
    default=None,
    metavar="ENCODER",
    help="Screen every arm with the cheap judge (--model, default the recipe's fast/probe or "
    "fast), then train ENCODER (default minilm) only on the variants it separated from zero.",
)
@click.option("--confirm-seeds", type=click.IntRange(min=1), help="Seeds of the confirmation.")
def ablate(
    recipe: Path,
    out: Path | None,
    model: str | None,
    seeds: int | None,
    no_cache: bool,
    quiet: bool,
    mlflow: str | None,
    mlflow_experiment: str | None,
    confirm_model: str | None,
    confirm_seeds: int | None,
) -> None:
    """Compare a recipe's data variants: mean metric, delta vs baseline with a 95% CI.

    Finished (variant, seed) cells resume even with --no-cache."""
    from rich.console import Console

    from assay.cache import StepCache
    from assay.progress import RichProgress, SilentProgress
    from assay.recipes.ablation import run_ablation
    from assay.recipes.schema import load_recipe
    from assay.recipes.tracking import with_mlflow

    console = Console(stderr=True, quiet=quiet)
    if not console.is_terminal:
        console.width = max(console.width, 200)  # a piped table should not wrap its cells
    parsed = load_recipe(recipe)
    parsed = with_mlflow(parsed, mlflow, mlflow_experiment) if mlflow else parsed
    progress = SilentProgress() if quiet else RichProgress(console)
    cache = StepCache(enabled=parsed.cache and not no_cache)
    if confirm_model is not None:
        from assay.recipes.ablation import screen_and_confirm

        screened = screen_and_confirm(parsed, out, screen_model=model, confirm_model=confirm_model,
                                      seeds=seeds, confirm_seeds=confirm_seeds,
                                      progress=progress, cache=cache)  # fmt: skip
        if not quiet:
            print_table(console, screened.screen.report)
            if screened.confirm is not None:
                print_table(console, screened.confirm.report)
            console.print(screened.summary["note"])
        click.echo(str(screened.screen.out_dir.parent / "confirm.json"))
        return
    result = run_ablation(parsed, out, model=model, seeds=seeds, progress=progress, cache=cache)
    if not quiet:
        print_table(console, result.report)
    click.echo(str(result.out_dir / "ablation.json"))


def print_table(console, report: dict) -> None:
    from rich.markup import escape
    from rich.table import Table

    from assay.audits.report_markdown import judge_label

    metric = report["metric"]
    table = Table(
        title=f"{report['name']}: {metric} on {report['eval_split']} "
        f"({judge_label(report)}, seeds {report['seeds']})"
    )
    for col in (
        "arm",
        "train rows",
        "steps",
        "s/seed",
        metric,
        "delta [95% CI]",
        "p (Holm)",
        "vs control",
        "verdict",
    ):
        left = col in ("arm", "verdict")
        table.add_column(col, justify="left" if left else "right", no_wrap=True)
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
            f"{100 * r['score']:.2f}", delta + mark, p, control, escape(r.get("verdict") or ""),
        )  # fmt: skip
    console.print(table)
    if (report.get("judge") or {}).get("caution"):
        console.print(f"[yellow]caution[/]: {escape(report['judge']['caution'])}")
    if report.get("eval_rows_leaked"):
        console.print(
            f"clean {report['eval_split']} subset ({report['eval_rows_leaked']:,} leaked rows "
            "left out): what the leak was worth"
        )
        for r in report["arms"]:
            delta = (
                f"  delta {100 * r['clean_delta']:+.2f} [{100 * r['clean_delta_low']:+.2f}, "
                f"{100 * r['clean_delta_high']:+.2f}]"
                if "clean_delta" in r
                else ""
            )
            console.print(
                f"  {escape(r['arm'])}: {100 * r['clean_score']:.2f} "
                f"(full {100 * r['score']:.2f}){delta}"
            )
    for r in report.get("learning_curve") or []:
        if r["kind"] != "baseline":
            console.print(
                f"  {r['train_rows_cap']:>7,} rows  {escape(r['arm'])}: "
                f"{100 * r['delta']:+.2f} [{100 * r['delta_low']:+.2f}, "
                f"{100 * r['delta_high']:+.2f}]  {escape(r['verdict'])}"
            )
    note = report.get("statistics", {}).get("note")
    if note:
        console.print(f"[dim]{escape(note)}[/dim]")
    for w in report["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {escape(w)}")
