"""`assay cache`: inspect and prune the step cache (ASSAY_CACHE_DIR)."""

from __future__ import annotations

import json

import click

from assay.errors import InputError
from assay.recipes.cli.examples import examples
from assay.recipes.cli.group import AssayGroup
from assay.recipes.cli.options import json_option, quiet_option


@click.group(
    "cache",
    cls=AssayGroup,
    epilog=examples("assay cache info", "assay cache prune --older-than 30d"),
)
def cache() -> None:
    """Inspect and prune the step cache (set ASSAY_CACHE_DIR to move it)."""


@cache.command("info", epilog=examples("assay cache info", "assay cache info --json"))
@json_option
def info_cmd(as_json: bool) -> None:
    """Where the cache is, its size, entries, and the ages of the oldest and newest entry."""
    from assay.cache import StepCache, format_age, format_size

    info = StepCache().info().to_dict()
    if as_json:
        click.echo(json.dumps(info))
        return
    click.echo(f"root     {info['root']}")
    click.echo(f"size     {format_size(info['size'])}")
    click.echo(f"entries  {info['entries']:,}")
    click.echo(f"oldest   {format_age(info['oldest_age_s'])}")
    click.echo(f"newest   {format_age(info['newest_age_s'])}")


@cache.command(
    "prune",
    epilog=examples("assay cache prune --older-than 30d", "assay cache prune --all"),
)
@click.option(
    "--older-than", metavar="AGE", help="Remove entries not used for AGE (e.g. 12h, 30d, 2w)."
)
@click.option("--all", "everything", is_flag=True, help="Remove every entry.")
@quiet_option
def prune_cmd(older_than: str | None, everything: bool, quiet: bool) -> None:
    """Remove cache entries not used lately (a hit counts as a use), or all of them."""
    from assay.cache import StepCache, format_size, parse_duration

    if (older_than is None) == (not everything):
        raise InputError("give one of --older-than AGE (e.g. 30d) or --all")
    age = parse_duration(older_than) if older_than is not None else None
    cache_ = StepCache()
    result = cache_.prune(age, everything=everything)
    if not quiet:
        click.echo(
            f"removed {result.removed:,} entries ({format_size(result.freed)}) from {cache_.root}"
        )
