"""Which model judges an ablation and how each arm's model is set: `model: auto`, the
optimiser budget, and C scaled to an arm's row weight for the logistic-regression judges."""

from __future__ import annotations

from typing import Any

import polars as pl

from assay.recipes.ablation_spec import AblationSpec
from assay.train.evaluate import FAST, PROBE, trainer_of
from assay.train.fast import DEFAULTS as FAST_DEFAULTS
from assay.train.probe import DEFAULTS as PROBE_DEFAULTS

# The judges that are a logistic regression: no optimiser budget, device or tokenizer
# terms; C can be scaled per arm.
LINEAR = (FAST, PROBE)

AUTO = "auto"
AUTO_ENCODER = "minilm"
AUTO_GPU_SEEDS = 10


def resolve_auto(spec: AblationSpec, seeds_given: bool = False) -> tuple[str, AblationSpec]:
    """`model: auto`: the fine-tuned encoder with at least 10 seeds where a GPU is present
    (its cells train as one stack), the fast model on CPU."""
    try:
        import torch

        gpu = torch.cuda.is_available()
    except ImportError:
        gpu = False
    if not gpu:
        return FAST, spec
    if not seeds_given and isinstance(spec.seeds, int) and spec.seeds < AUTO_GPU_SEEDS:
        spec = spec.model_copy(update={"seeds": AUTO_GPU_SEEDS})
    return AUTO_ENCODER, spec


def judge(model: str, options: dict[str, Any], seeds: list[int]) -> dict[str, Any]:
    """The model that gave the verdicts, and how it was trained: for the report's header."""
    return {"model": model, "seeds": len(seeds), **trainer_of(model, options)}


def model_options(spec: AblationSpec, model: str) -> dict[str, Any]:
    """The judge's options for every arm: the recipe's, with the optimiser budget for an encoder."""
    options = dict(spec.model_options)
    if model in LINEAR:
        return options
    if spec.budget.steps is not None:
        # Every arm takes the same number of steps: no early stop cuts one arm short.
        options.update(max_steps=spec.budget.steps, early_stopping_patience=None)
    elif spec.budget.epochs is not None:
        options["epochs"] = spec.budget.epochs
    return options


def train_weight(frame: pl.DataFrame) -> float:
    """Total sample weight of the labelled train rows (their count when unweighted)."""
    train = frame.filter((pl.col("split") == "train") & pl.col("label").is_not_null())
    if "weight" not in train.columns:
        return float(train.height)
    return float(train["weight"].fill_null(1.0).sum())


def default_c(model: str) -> float:
    """The C a logistic-regression judge uses when the options give none."""
    return float((PROBE_DEFAULTS if model == PROBE else FAST_DEFAULTS)["C"])


def scaled_c(
    options: dict[str, Any], baseline_weight: float, arm_weight: float, default: float
) -> float:
    """C for an arm of `arm_weight` total row weight that regularises like the baseline.

    Logistic regression minimises |w|^2 / 2 + C * sum(weight * loss): repeating every row k
    times is the same as multiplying C by k, so C x baseline / arm keeps the balance fixed.
    """
    c = float(options.get("C", default))
    return c * baseline_weight / max(arm_weight, 1e-12)
