"""The Python entry points behind `assay.run`, `assay.ablate` and `assay.load`: a recipe (a
YAML path, a mapping or a `Recipe`) in, the run's or the ablation's result out, quiet by
default. `assay run` calls `run` too, so the shell and a notebook do the same thing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assay.cache import StepCache
from assay.progress import Progress
from assay.recipes.ablation import AblationResult, run_ablation
from assay.recipes.results import RunResult, load
from assay.recipes.runner import IN_MEMORY, run_recipe
from assay.recipes.schema import Recipe, load_recipe
from assay.recipes.tracking import with_mlflow

__all__ = ["ablate", "load", "run"]


def _recipe(recipe: Recipe | str | Path | dict[str, Any], corpus: Any = None) -> Recipe:
    if corpus is not None and isinstance(recipe, dict):
        # The corpus is the input; the recipe's input may still map its columns.
        recipe = {**recipe, "input": {**(recipe.get("input") or {}), "source": IN_MEMORY}}
    return recipe if isinstance(recipe, Recipe) else load_recipe(recipe)


def run(
    recipe: Recipe | str | Path | dict[str, Any],
    out: str | Path | None = None,
    *,
    seed: int | None = None,
    corpus: Any = None,
    ablation: bool = True,
    progress: Progress | None = None,
    cache: StepCache | None = None,
) -> RunResult:
    """Run a recipe and write its run directory (default runs/<name>); a recipe with an
    `ablation:` section then runs its ablation into the same folder (`ablation=False` skips
    it, as `assay run --no-ablation` does).

    `corpus` is the input instead of the recipe's `input` (which may then be left out, or
    only map columns): a polars, pandas or Arrow table, or a Hugging Face Dataset or
    DatasetDict, of raw rows (`text`, `label`, ...) or a corpus. The result holds the tables
    (`.corpus`, `.dropped`, `.lineage`) and `.ablation`; `.to_pandas()`, `.to_hf()`."""
    parsed = _recipe(recipe, corpus)
    result = run_recipe(parsed, out, seed=seed, progress=progress, cache=cache, corpus=corpus)
    if ablation and parsed.ablation is not None:
        if seed is not None:
            parsed = parsed.model_copy(update={"seed": seed})
        result.ablation = run_ablation(
            parsed, result.path, progress=progress, cache=cache, corpus=corpus
        )
    return result


def ablate(
    recipe: Recipe | str | Path | dict[str, Any],
    out: str | Path | None = None,
    *,
    model: str | None = None,
    seeds: int | None = None,
    mlflow: str | None = None,
    corpus: Any = None,
    progress: Progress | None = None,
) -> AblationResult:
    """Run a recipe's ablation; `mlflow` (a tracking URI) also logs every arm and seed, and
    `corpus` (any table `run` takes) replaces the recipe's input."""
    parsed = _recipe(recipe, corpus)
    if mlflow is not None:
        parsed = with_mlflow(parsed, mlflow)
    return run_ablation(parsed, out, model=model, seeds=seeds, progress=progress, corpus=corpus)
