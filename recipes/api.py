"""The Python entry points behind `assay.run` and `assay.ablate`: a recipe (a YAML path, a
mapping or a `Recipe`) in, the run's or the ablation's result out, quiet by default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assay.progress import Progress
from assay.recipes.ablation import AblationResult, run_ablation
from assay.recipes.runner import IN_MEMORY, RunResult, run_recipe
from assay.recipes.schema import Recipe, load_recipe
from assay.recipes.tracking import with_mlflow


def _recipe(recipe: Recipe | str | Path | dict[str, Any], corpus: Any = None) -> Recipe:
    if corpus is not None and isinstance(recipe, dict) and "input" not in recipe:
        recipe = {**recipe, "input": {"source": IN_MEMORY}}  # the corpus is the input
    return recipe if isinstance(recipe, Recipe) else load_recipe(recipe)


def run(
    recipe: Recipe | str | Path | dict[str, Any],
    out: str | Path | None = None,
    *,
    seed: int | None = None,
    progress: Progress | None = None,
    corpus: Any = None,
) -> RunResult:
    """Run a recipe and write its run directory (default runs/<name>). `corpus` (from
    `assay.from_frame`) is the input instead of the recipe's `input`, which may be left out."""
    return run_recipe(_recipe(recipe, corpus), out, seed=seed, progress=progress, corpus=corpus)


def ablate(
    recipe: Recipe | str | Path | dict[str, Any],
    out: str | Path | None = None,
    *,
    model: str | None = None,
    seeds: int | None = None,
    mlflow: str | None = None,
    progress: Progress | None = None,
) -> AblationResult:
    """Run a recipe's ablation; `mlflow` (a tracking URI) also logs every arm and seed."""
    parsed = _recipe(recipe)
    if mlflow is not None:
        parsed = with_mlflow(parsed, mlflow)
    return run_ablation(parsed, out, model=model, seeds=seeds, progress=progress)
