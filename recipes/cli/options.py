"""Options that several `assay` commands share, declared once with one help text each."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

MODEL_HELP = (
    "fast (TF-IDF + logistic regression), probe (MiniLM embeddings + logistic regression), "
    "minilm, a Hugging Face id or a path"
)


QUIET_HELP = "No progress bars, tables or summaries."


def quiet_option(fn: F) -> F:
    """`-q`: also on when given before the command (`assay -q ablate ...`)."""
    return click.option(
        "-q", "--quiet", is_flag=True, help=QUIET_HELP, callback=_quiet_from_the_group
    )(fn)


def _quiet_from_the_group(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    return value or bool(ctx.find_root().params.get("quiet"))


def no_cache_option(fn: F) -> F:
    return click.option(
        "--no-cache", is_flag=True, help="Recompute every step instead of reading the step cache."
    )(fn)


def mlflow_options(what: str) -> Callable[[F], F]:
    """`--mlflow URI` and `--mlflow-experiment NAME`; `what` says what is logged."""

    def wrap(fn: F) -> F:
        fn = click.option(
            "--mlflow-experiment",
            metavar="NAME",
            help="MLflow experiment (default the recipe's, else its name).",
        )(fn)
        return click.option(
            "--mlflow",
            metavar="URI",
            help=f"Also log {what} to this MLflow tracking URI (e.g. sqlite:///mlruns.db).",
        )(fn)

    return wrap


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(fn)


def out_dir_option(default: str) -> Callable[[F], F]:
    """`--out DIR`; `default` says where output goes without it."""
    return click.option(
        "--out",
        type=click.Path(file_okay=False, path_type=Path),
        help=f"Output directory (default {default}).",
    )


def out_file_option(what: str) -> Callable[[F], F]:
    """`--out FILE`; `what` says what is written there."""
    return click.option(
        "--out", type=click.Path(dir_okay=False, path_type=Path), help=f"Write {what} to this file."
    )


def model_option(default: str | None = None) -> Callable[[F], F]:
    """`--model`; without a default the recipe's model is used."""
    if default is None:
        return click.option("--model", help=f"{MODEL_HELP}; overrides the recipe.")
    return click.option("--model", default=default, show_default=True, help=f"{MODEL_HELP}.")


def seed_option(default: int | None = None, of: str = "the run") -> Callable[[F], F]:
    """`--seed`; without a default the recipe's seed is used."""
    if default is None:
        return click.option(
            "--seed", type=click.IntRange(min=0), help="Seed (overrides the recipe's)."
        )
    return click.option(
        "--seed",
        type=click.IntRange(min=0),
        default=default,
        show_default=True,
        help=f"Seed of {of}.",
    )


def batch_option(help: str) -> Callable[[F], F]:
    """`--batch`: rows chosen per active-learning batch (`help` says what they become)."""
    return click.option(
        "--batch", type=click.IntRange(min=1), default=100, show_default=True, help=help
    )


def overlap_option(fn: F) -> F:
    return click.option(
        "--overlap",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="The k most uncertain rows of the batch go to two annotators.",
    )(fn)


def corpus_argument(required: bool = True) -> Callable[[F], F]:
    """A CORPUS argument: a corpus file or a run directory (its corpus.parquet)."""
    return click.argument("corpus", type=click.Path(exists=True, path_type=Path), required=required)
