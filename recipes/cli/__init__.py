"""The `assay` command line: a thin layer over the library. This module holds the group and
the run, validate, steps, data, recipe and doctor commands; each other command group has a
module of its own in this package.

Every command body calls library functions; an `AssayError` becomes one line on stderr and
a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from assay.errors import EXIT_BAD_INPUT, EXIT_FAILED
from assay.recipes.cli.completion import DatasetName, complete_step_names
from assay.recipes.cli.examples import examples
from assay.recipes.cli.group import AssayGroup
from assay.recipes.cli.options import (
    QUIET_HELP,
    json_option,
    mlflow_options,
    no_cache_option,
    out_dir_option,
    out_file_option,
    quiet_option,
    seed_option,
)
from assay.rundir import REPORT


def _console(quiet: bool):
    from rich.console import Console

    return Console(stderr=True, quiet=quiet)


MAIN_EPILOG = "\n\n".join(
    [
        examples(
            "assay data get vader-movies",
            "assay run recipes/quickstart.yaml --out runs/quickstart",
            "assay steps show synonyms",
        ),
        "\b\nExit codes:\n"
        "  0  success\n"
        f"  {EXIT_FAILED}  the work failed: a step, a missing model or package, an output that\n"
        "     cannot be written, an unreachable service\n"
        f"  {EXIT_BAD_INPUT}  what was given is wrong: the command line, a bad recipe, missing or\n"
        "     unreadable input data",
        "\b\nShell completion (bash; zsh and fish: docs/cli.md):\n"
        '  eval "$(_ASSAY_COMPLETE=bash_source assay)"',
        "Environment variables (ASSAY_HOME, ASSAY_CACHE_DIR, ASSAY_LS_*...): docs/cli.md.",
    ]
)


@click.group(
    cls=AssayGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=MAIN_EPILOG,
)
@click.version_option(package_name="assay")
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug).")
@click.option("-q", "--quiet", is_flag=True, help=QUIET_HELP)
def main(verbose: int, quiet: bool) -> None:
    """assay: curate, augment and audit labelled text, and measure every data change."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


@main.command(
    epilog=examples(
        "assay run recipes/quickstart.yaml --out runs/quickstart",
        "assay run recipes/quickstart.yaml --no-ablation --seed 7 -q",
    )
)
@click.argument("recipe", type=click.Path(dir_okay=False, path_type=Path))
@out_dir_option("runs/<name>")
@seed_option()
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    help="Where row-parallel work runs (overrides the recipe's engine).",
)
@click.option(
    "--ray-address",
    help="Address of a running Ray cluster, e.g. ray://head:10001 or auto (implies --engine ray).",
)
@no_cache_option
@quiet_option
@click.option(
    "--no-ablation", is_flag=True, help="Run the steps only, not the recipe's `ablation:`."
)
@mlflow_options("the run (and its ablation, nested under it)")
def run(
    recipe: Path,
    out: Path | None,
    seed: int | None,
    engine: str | None,
    ray_address: str | None,
    no_cache: bool,
    quiet: bool,
    no_ablation: bool,
    mlflow: str | None,
    mlflow_experiment: str | None,
) -> None:
    """Run a recipe and write its run directory; a recipe with an `ablation:` section then
    runs its ablation into the same directory, and the report shows both."""
    from assay.cache import StepCache
    from assay.progress import RichProgress, SilentProgress
    from assay.recipes.api import run as run_api
    from assay.recipes.schema import load_recipe, with_engine

    console = _console(quiet)
    from assay.recipes.tracking import with_mlflow

    parsed = with_engine(load_recipe(recipe), engine, ray_address)
    parsed = with_mlflow(parsed, mlflow, mlflow_experiment) if mlflow else parsed
    progress = SilentProgress() if quiet else RichProgress(console)
    cache = StepCache(enabled=parsed.cache and not no_cache)
    # The same call as assay.run from Python: the steps, then the recipe's ablation.
    result = run_api(
        parsed, out, seed=seed, ablation=not no_ablation, progress=progress, cache=cache
    )
    path = result.path
    if not quiet:
        _print_run_summary(console, result.manifest, path)
        if result.ablation is not None:
            from assay.recipes.cli.ablate import print_table

            console.width = max(console.width, 200)  # a piped table keeps its cells
            print_table(console, result.ablation.report)
    click.echo(str(path / REPORT))


def _print_run_summary(console, manifest: dict[str, Any], path: Path) -> None:
    from rich.table import Table

    table = Table(title=f"{manifest['name']} (seed {manifest['seed']})")
    for col in ("step", "in", "out", "dropped", "added", "modified", "s", "cached"):
        table.add_column(col, justify="right" if col not in ("step", "cached") else "left")
    for r in manifest["steps"]:
        table.add_row(
            r["step"], f"{r['n_in']:,}", f"{r['n_out']:,}", f"{r['n_dropped']:,}", f"{r['n_added']:,}",
            f"{r['n_modified']:,}", f"{r['seconds']:.2f}", "yes" if r["cached"] else "",
        )  # fmt: skip
    console.print(table)
    acc = manifest["accounting"]
    console.print(
        f"{acc['rows_read']:,} read, {acc['dropped_at_load'] + acc['dropped_by_steps']:,} dropped, "
        f"{acc['added']:,} added -> {acc['rows_out']:,} rows in {path}"
    )
    # A step's one-line verdict (label_noise: its evidence and what its gate decided).
    for r in manifest["steps"]:
        headline = (r.get("summary") or {}).get("headline")
        if headline:
            console.print(headline, markup=False, highlight=False, soft_wrap=True)


@main.command(epilog=examples("assay validate recipes/quickstart.yaml"))
@click.argument("recipe", type=click.Path(dir_okay=False, path_type=Path))
def validate(recipe: Path) -> None:
    """Check a recipe without running it."""
    from assay.recipes.schema import load_recipe

    parsed = load_recipe(recipe)
    click.echo(
        f"ok: {recipe} ({len(parsed.steps)} steps: {', '.join(s.name for s in parsed.steps) or 'none'})"
    )


@main.group(epilog=examples("assay steps list", "assay steps show synonyms"))
def steps() -> None:
    """List registered steps and show their parameters."""


@steps.command("list", epilog=examples("assay steps list"))
def steps_list() -> None:
    """List every registered step with its kind and summary."""
    from assay import registry
    from assay.recipes.catalog import load_steps

    load_steps()
    width = max((len(n) for n in registry.names()), default=0)
    for name in registry.names():
        cls = registry.get(name)
        click.echo(f"{name:<{width}}  {cls.kind:<9}  {registry.summary(cls)}")


@steps.command("show", epilog=examples("assay steps show split", "assay steps show dedup --json"))
@click.argument("name", shell_complete=complete_step_names)
@json_option
def steps_show(name: str, as_json: bool) -> None:
    """Show a step's documentation and the JSON schema of its Config."""
    from assay import registry
    from assay.recipes.catalog import load_steps

    load_steps()
    info = registry.describe(name)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"{info['name']} ({info['kind']}, code {info['code'][:12]})\n")
    click.echo(info["doc"] + "\n")
    click.echo("parameters:")
    schema = info["config_schema"]
    for key, prop in schema.get("properties", {}).items():
        kind = " | ".join(_type_name(p) for p in prop.get("anyOf", [prop]))
        if key in schema.get("required", []):
            default = "required"
        else:
            default = f"default {json.dumps(prop['default'])}" if "default" in prop else "optional"
        click.echo(f"  {key} ({kind}, {default}): {prop.get('description', '')}")


def _type_name(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[-1]
    if "enum" in prop:
        return "|".join(json.dumps(v) for v in prop["enum"])
    if prop.get("type") == "array":
        return f"list[{_type_name(prop.get('items', {}))}]"
    return str(prop.get("type", "any"))


@main.group(epilog=examples("assay data list", "assay data get vader-movies"))
def data() -> None:
    """Real labelled datasets that assay can fetch."""


@data.command("list", epilog=examples("assay data list"))
def data_list() -> None:
    """List the datasets `assay data get` can fetch."""
    from assay.curate.datasets import list_datasets

    for d in list_datasets():
        mark = "cached" if d["cached"] else "-"
        click.echo(f"{d['name']:<14} {d['rows']:>6,} rows  {mark:<6}  {d['description']}")


@data.command("get", epilog=examples("assay data get vader-movies"))
@click.argument("name", type=DatasetName())
@click.option("--force", is_flag=True, help="Download again even if cached.")
def data_get(name: str, force: bool) -> None:
    """Fetch and cache a dataset; prints the path of its parquet file."""
    from assay.curate.datasets import get

    click.echo(str(get(name, force=force)))


@main.group(epilog=examples("assay recipe schema --out recipe.schema.json"))
def recipe() -> None:
    """Recipe tools."""


@recipe.command(
    "schema",
    epilog=examples("assay recipe schema", "assay recipe schema --out recipe.schema.json"),
)
@out_file_option("the schema (instead of stdout)")
def recipe_schema(out: Path | None) -> None:
    """Print the JSON Schema of recipes (for editor completion)."""
    from assay import atomic
    from assay.recipes.schema import json_schema

    text = json.dumps(json_schema(), indent=2)
    if out:
        atomic.write_text(out, text + "\n")
        click.echo(str(out))
    else:
        click.echo(text)


@main.command(epilog=examples("assay doctor", "assay doctor --ray-address auto"))
@click.option(
    "--ray-address", help="Report this Ray cluster (default: $RAY_ADDRESS or a local one)."
)
@click.option("--start-ray", is_flag=True, help="Start a local Ray cluster if none is running.")
def doctor(ray_address: str | None, start_ray: bool) -> None:
    """Show which optional resources are installed, with the command to add each."""
    from assay.resource_checks import doctor as run_doctor

    missing = 0
    for check in run_doctor(ray_address, start_ray):
        mark = click.style("ok  ", fg="green") if check.ok else click.style("miss", fg="yellow")
        line = f"{mark} {check.name:<22} {check.detail}"
        if not check.ok:
            missing += 1
            line += f"\n     {'':<22} add with: {check.fix}"
        click.echo(line)
    click.echo(f"{missing} optional resource(s) missing" if missing else "everything is installed")


# Command groups of other areas, each in a module of this package. Imported as modules so
# that `assay.recipes.cli.cache` (and the rest) names the module, not the command in it.
from assay.recipes.cli import ablate, audit, cache, labelstudio, report, train  # noqa: E402

main.add_command(ablate.ablate)
main.add_command(audit.audit)
main.add_command(cache.cache)
main.add_command(labelstudio.ls)
main.add_command(report.report)
main.add_command(train.train)
