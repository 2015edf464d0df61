"""An ablation's arms: the baseline, one arm per variant and the controls, each as the steps
run once (with the recipe seed) and the steps run per training seed."""

from __future__ import annotations

import dataclasses
from typing import Any

from assay.errors import RecipeError
from assay.recipes.ablation_spec import BASELINE, AblationSpec, VariantSpec
from assay.recipes.schema import Recipe, StepSpec


@dataclasses.dataclass
class Arm:
    name: str
    kind: str  # baseline | variant | control
    prefix: list[StepSpec]  # run once, with the recipe seed (splits stay put)
    suffix: list[StepSpec]  # run per seed
    control_of: str | None = None
    description: str | None = None


def plan_arms(recipe: Recipe, spec: AblationSpec) -> list[Arm]:
    """The baseline arm, one arm per variant, and a control arm per requested control."""
    steps = baseline_steps(recipe, spec)
    arms = [Arm(BASELINE, "baseline", steps, list(spec.baseline), description="reference")]
    for variant in spec.variants:
        prefix, suffix = _apply_variant(list(steps), list(spec.baseline), variant)
        arms.append(Arm(variant.name, "variant", prefix, suffix, description=variant.description))
        for control in variant.controls:
            arms.append(
                Arm(
                    f"{variant.name} [{control} control]",
                    "control",
                    prefix,
                    suffix,
                    control_of=variant.name,
                    description=f"size-matched control of {variant.name}: parents repeated",
                )
            )
    return arms


def baseline_steps(recipe: Recipe, spec: AblationSpec) -> list[StepSpec]:
    """The recipe's steps every arm starts from: all, or up to `baseline_until`."""
    steps = list(recipe.steps)
    if spec.baseline_until is None:
        return steps
    hits = [i for i, s in enumerate(steps) if s.name == spec.baseline_until]
    if not hits:
        raise RecipeError(
            f"ablation.baseline_until: step {spec.baseline_until!r} is not in the pipeline "
            f"(steps: {[s.name for s in steps]})"
        )
    return steps[: hits[-1] + 1]


def _apply_variant(
    prefix: list[StepSpec], suffix: list[StepSpec], variant: VariantSpec
) -> tuple[list[StepSpec], list[StepSpec]]:
    where = f"ablation.variants[{variant.name}]"
    names = {s.name for s in prefix + suffix}
    for name in variant.remove:
        if name not in names:
            raise RecipeError(
                f"{where}.remove: step {name!r} is not in the pipeline (steps: {sorted(names)})"
            )
    prefix = [s for s in prefix if s.name not in variant.remove]
    suffix = [s for s in suffix if s.name not in variant.remove]
    for name, overrides in variant.set.items():
        if name not in names:
            raise RecipeError(
                f"{where}.set: step {name!r} is not in the pipeline (steps: {sorted(names)})"
            )
        prefix = [_override(s, overrides, where) if s.name == name else s for s in prefix]
        suffix = [_override(s, overrides, where) if s.name == name else s for s in suffix]
    if variant.add:
        if variant.after is None:
            suffix = suffix + list(variant.add)
        else:
            for steps in (suffix, prefix):
                hits = [i for i, s in enumerate(steps) if s.name == variant.after]
                if hits:
                    steps[hits[-1] + 1 : hits[-1] + 1] = list(variant.add)
                    break
            else:
                raise RecipeError(
                    f"{where}.after: step {variant.after!r} is not in the pipeline "
                    f"(steps: {sorted(names)})"
                )
    return prefix, suffix


def _override(step: StepSpec, overrides: dict[str, Any], where: str) -> StepSpec:
    from pydantic import ValidationError

    from assay import registry

    # The step's own Config (not the variant already built): `set: {dedup: {method: ..}}`
    # may switch a per-method config to another method.
    params = {**step.config.model_dump(exclude_unset=True), **overrides}
    try:
        return StepSpec(name=step.name, config=registry.get(step.name).Config(**params))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise RecipeError(f"{where}.set.{step.name}.{loc}: {err['msg']}") from None


# -- corpora --------------------------------------------------------------------------------
