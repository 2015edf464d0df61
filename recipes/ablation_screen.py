"""Screen, then confirm: a cheap judge on every arm, then the encoder on the baseline and
only the variants the screen separated from zero."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from assay import atomic
from assay.cache import StepCache
from assay.errors import RecipeError
from assay.progress import Progress
from assay.recipes.ablation_spec import AblationSpec
from assay.recipes.ablation_summary import AblationResult
from assay.recipes.schema import Recipe, load_recipe
from assay.rundir import default_run_dir
from assay.train.evaluate import FAST, PROBE

CONFIRM_MODEL = "minilm"


@dataclasses.dataclass
class ScreenedAblation:
    """A cheap judge's ablation of every arm, and the encoder's of the arms it separated."""

    screen: AblationResult
    confirm: AblationResult | None
    confirmed: list[str]  # the variants the encoder trained (their controls come along)
    summary: dict[str, Any]


def screened_variants(report: dict[str, Any]) -> list[str]:
    """Variants whose delta (against the baseline or against their control) the judge
    separated from zero, and variants whose control it separated: what to confirm."""
    rows = report["arms"]
    chosen = {r["arm"] for r in rows if r["kind"] == "variant"
              and (r.get("significant") or r.get("vs_control_significant"))}  # fmt: skip
    chosen |= {r["control_of"] for r in rows if r["kind"] == "control" and r.get("significant")}
    return [r["arm"] for r in rows if r["arm"] in chosen]


def screen_and_confirm(
    recipe: Recipe | str | Path,
    out: str | Path | None = None,
    *,
    screen_model: str | None = None,
    confirm_model: str = CONFIRM_MODEL,
    seeds: int | None = None,
    confirm_seeds: int | None = None,
    progress: Progress | None = None,
    cache: StepCache | None = None,
) -> ScreenedAblation:
    """Run the cheap judge on every arm (`screen/`), then `confirm_model` on the baseline and
    only the variants the screen separated from zero, with their controls (`confirm/`);
    `confirm.json` sets the two side by side."""
    # At call time: the orchestration module imports this one to offer it to its importers.
    from assay.recipes.ablation import run_ablation

    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    if recipe.ablation is None:
        raise RecipeError(f"recipe {recipe.name!r} has no `ablation:` section to screen")
    spec = AblationSpec.model_validate(recipe.ablation) if not isinstance(
        recipe.ablation, AblationSpec) else recipe.ablation  # fmt: skip
    cheap = screen_model or (spec.model if spec.model in (FAST, PROBE) else FAST)
    root = Path(out or default_run_dir(recipe.name, "-screened"))

    def judged_by(model: str, variants) -> Recipe:
        # The recipe's model_options belong to the recipe's model, not to the other judge.
        options = spec.model_options if model == spec.model else {}
        stage = spec.model_copy(update={"model": model, "model_options": options,
                                        "variants": variants})  # fmt: skip
        return recipe.model_copy(update={"ablation": stage})

    screen = run_ablation(judged_by(cheap, spec.variants), root / "screen", seeds=seeds,
                          progress=progress, cache=cache)  # fmt: skip
    chosen = screened_variants(screen.report)
    confirm = None
    if chosen:
        kept = [v for v in spec.variants if v.name in chosen]
        confirm = run_ablation(judged_by(confirm_model, kept), root / "confirm",
                               seeds=confirm_seeds, progress=progress, cache=cache)  # fmt: skip
    summary = _screen_summary(screen, confirm, chosen)
    atomic.write_json(root / "confirm.json", summary)
    return ScreenedAblation(screen, confirm, chosen, summary)


def _screen_summary(screen: AblationResult, confirm: AblationResult | None,
                    chosen: list[str]) -> dict[str, Any]:  # fmt: skip
    def row(r: dict[str, Any]) -> dict[str, Any]:
        return {k: r.get(k) for k in ("arm", "kind", "delta", "delta_low", "delta_high",
                                      "verdict")}  # fmt: skip

    confirmed = {r["arm"]: r for r in confirm.report["arms"]} if confirm else {}
    arms = []
    for r in screen.report["arms"]:
        entry = {"arm": r["arm"], "kind": r["kind"], "screen": row(r)}
        if r["arm"] in confirmed and r["kind"] != "baseline":
            c = confirmed[r["arm"]]
            entry["confirm"] = row(c)
            entry["agreement"] = _agreement(r, c)
        arms.append(entry)
    return {
        "screen_judge": screen.report["judge"],
        "confirm_judge": confirm.report["judge"] if confirm else None,
        "screened_in": chosen,
        "arms": arms,
        "note": (
            f"{len(chosen)} variant(s) separated from zero by {screen.report['model']} went "
            f"to {confirm.report['model']}"
            if confirm
            else f"{screen.report['model']} separated no variant from zero: nothing to confirm"
        ),
    }


def _agreement(screen_row: dict[str, Any], confirm_row: dict[str, Any]) -> str:
    """The confirming judge's word on the screen's delta against the baseline."""
    if not confirm_row.get("significant"):
        return "not confirmed: no detectable change"
    if not screen_row.get("significant"):
        return "confirmed only by the encoder (the screen separated its control comparison)"
    if (screen_row["delta"] > 0) == (confirm_row["delta"] > 0):
        return "same"
    return "opposite"
