"""Shell completion of the names `assay` commands take: step names (the registry's) and
dataset names (the ones `assay data get` knows).

Completion runs on every TAB, so it imports only the registry's step modules and the
dataset table, never torch, transformers or scikit-learn (which those modules load lazily).
"""

from __future__ import annotations

from typing import Any

import click
from click.shell_completion import CompletionItem


def step_names() -> list[str]:
    from assay import registry
    from assay.recipes.catalog import load_steps

    load_steps()
    return registry.names()


def dataset_names() -> list[str]:
    from assay.curate.datasets import DATASETS

    return sorted(DATASETS)


def complete_step_names(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    return [CompletionItem(n) for n in step_names() if n.startswith(incomplete)]


class DatasetName(click.ParamType):
    """A dataset `assay data get` knows: an unknown one is a usage error naming the nearest."""

    name = "dataset"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from assay.registry import suggest

        names = dataset_names()
        if value in names:
            return value
        self.fail(
            f"unknown dataset {value!r}{suggest(str(value), names)}; see `assay data list`",
            param,
            ctx,
        )

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        return [CompletionItem(n) for n in dataset_names() if n.startswith(incomplete)]
