"""Ablation: build every variant's corpus, train each on k seeds, and report what changed.

Every arm is evaluated on the same untouched dev/test rows (those of the baseline after
the recipe's own steps) with the same seeds, so deltas are paired. With `train_rows`, each
seed draws its own stratified train subsample, shared by every arm of that seed: the
seed-to-seed spread then includes which rows happened to be labelled. A paired bootstrap
over test examples and seeds gives the CI; the p-value tests the headline metric (from the
same bootstrap, or a paired permutation test), Holm-adjusted across the ablation's
comparisons. A list of `train_rows` repeats everything per size (a learning curve).
Finished (arm, seed) cells are stored in the output directory and skipped on rerun; step
outputs are shared between arms through the step cache.

A `duplicate` control repeats each generated row's parent instead of adding the new text:
same rows per parent, per label and in total. The variant-vs-control delta is what the new
content did; the control-vs-baseline delta is what more (re-weighted) rows did.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import polars as pl

from assay import __version__
from assay import corpus as corpus_mod
from assay.cache import StepCache
from assay.context import RunContext
from assay.errors import RecipeError
from assay.hashing import frame_hash, json_hash
from assay.progress import Progress, SilentProgress
from assay.recipes.ablation_arms import Arm, plan_arms
from assay.recipes.ablation_cells import (
    CELL_VERSION,
    Cell,
    CellStore,
    PendingCell,
    cell_summary,
    domain_terms,
    pipeline_seed,
    train_draw_seed,
    train_only,
)
from assay.recipes.ablation_gate import gate_refusals, note_refusals
from assay.recipes.ablation_judge import (
    AUTO,
    LINEAR,
    default_c,
    model_options,
    resolve_auto,
    scaled_c,
    train_weight,
)
from assay.recipes.ablation_screen import ScreenedAblation, screen_and_confirm
from assay.recipes.ablation_spec import AblationSpec
from assay.recipes.ablation_summary import AblationResult, build_report, warn_once, write_outputs
from assay.recipes.runner import build_steps, given_input, load_input, run_steps
from assay.recipes.schema import Recipe, dump_recipe, load_recipe
from assay.recipes.tracking import ablation_tracking, check_tracking, track_ablation
from assay.rundir import default_run_dir
from assay.train.ablation_data import duplicate_control, subsample_train
from assay.train.compare import arms_table
from assay.train.evaluate import (
    FAST,
    TRAIN_VERSION,
    Job,
    TrainMany,
    TrainOutcome,
    evaluation_rows,
    train_and_evaluate_many,
    trainer_of,
)

# What this module has always offered its importers; each lives in the module of its concept.
__all__ = ["AblationResult", "ScreenedAblation", "gate_refusals", "run_ablation",
           "screen_and_confirm"]  # fmt: skip


def run_ablation(
    recipe: Recipe | str | Path,
    out: str | Path | None = None,
    *,
    model: str | None = None,
    seeds: int | None = None,
    progress: Progress | None = None,
    cache: StepCache | None = None,
    device: str | None = None,
    train: TrainMany | None = None,
    corpus: Any = None,
) -> AblationResult:
    """Run the recipe's ablation and write ablation.json, ablation.csv and ablation.html.
    `corpus` (a corpus from Python) replaces reading the recipe's input.

    `device` pins the encoder's device ("cuda", "cpu"); `train` trains the cells no earlier
    run finished (default `train_and_evaluate_many`; `assay.train.cells_io.CellsElsewhere`
    hands them to another machine)."""
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    spec = recipe.ablation
    if spec is None:
        raise RecipeError(
            f"recipe {recipe.name!r} has no `ablation:` section; add baseline and variants "
            "(see recipes/ablation.yaml)"
        )
    if not isinstance(spec, AblationSpec):
        spec = AblationSpec.model_validate(spec)
    tracking = ablation_tracking(recipe, spec)
    check_tracking(tracking)
    if seeds is not None:
        spec = spec.model_copy(update={"seeds": seeds})
    model = model or spec.model
    if model == AUTO:
        model, spec = resolve_auto(spec, seeds_given=seeds is not None)
    options = model_options(spec, model)
    if device is not None and model not in LINEAR:
        options["device"] = device
    progress = progress or SilentProgress()
    cache = cache if cache is not None else StepCache(enabled=recipe.cache)
    default = recipe.name if recipe.name.endswith("ablation") else f"{recipe.name}-ablation"
    out_dir = Path(out or default_run_dir(default))
    out_dir.mkdir(parents=True, exist_ok=True)
    cells_store = CellStore(out_dir / "cells")
    started = time.perf_counter()

    arms = plan_arms(recipe, spec)
    loaded = load_input(recipe) if corpus is None else given_input(corpus, recipe.input)
    corpus, input_key = loaded.corpus, loaded.input_hash
    seed_list = spec.seed_list
    warnings: list[str] = []
    base_ctx = RunContext(
        seed=recipe.seed,
        run_dir=out_dir,
        engine=recipe.engine_name,
        options=recipe.engine_options,
        progress=progress,
    )

    prefixes: dict[str, tuple[pl.DataFrame, str, list[str]]] = {}
    draws: dict[tuple[str, int | None, int], tuple[pl.DataFrame, str, list[str]]] = {}

    def prefix_of(arm: Arm) -> tuple[pl.DataFrame, str, list[str]]:
        sig = json_hash([s.to_yaml() for s in arm.prefix])
        if sig not in prefixes:
            res = run_steps(
                corpus,
                build_steps(arm.prefix),
                base_ctx,
                cache=cache,
                input_key=input_key,
                protect_eval=recipe.protect_eval,
            )
            prefixes[sig] = (res.corpus, res.key, domain_terms(res.reports))
        return prefixes[sig]

    def draw_of(arm: Arm, size: int | None, seed: int) -> tuple[pl.DataFrame, str, list[str]]:
        """The arm's prepared corpus with this seed's train draw (shared by every arm)."""
        frame, key, terms = prefix_of(arm)
        if size is None:
            return frame, key, terms
        draw_seed = train_draw_seed(recipe.seed, seed, spec.resample_train)
        sig = (key, size, draw_seed)
        if sig not in draws:
            draws[sig] = (
                subsample_train(frame, size, draw_seed),
                json_hash([key, "train_rows", size, draw_seed]),
                terms,
            )
        return draws[sig]

    base_frame = prefix_of(arms[0])[0]
    eval_frame = evaluation_rows(base_frame)
    if eval_frame.filter(pl.col("split") == spec.eval_split).height == 0:
        raise RecipeError(
            f"the baseline corpus has no labelled {spec.eval_split!r} rows to evaluate on; "
            "add a split step to the recipe (e.g. - split: {dev: 0.1, test: 0.2})"
        )
    eval_key = frame_hash(eval_frame.select("id", "text", "label", "split"))
    eval_ids = eval_frame["id"]

    cells: list[Cell] = []
    pending: list[PendingCell] = []
    # (arm, step, action) -> the (size, seed) draws whose evidence gate kept the rows.
    refused: dict[tuple[str, str, str], set[tuple[int | None, int]]] = {}
    sizes = spec.train_sizes
    jobs = [(size, seed) for size in sizes for seed in seed_list]
    with progress.task("ablation cells", total=len(arms) * len(jobs)) as task:
        for size, seed in jobs:
            step_ctx = RunContext(
                seed=pipeline_seed(recipe.seed, seed) if spec.vary_pipeline_seed else recipe.seed,
                run_dir=out_dir,
                engine=recipe.engine_name,
                options=recipe.engine_options,
                progress=progress,
            )
            variant_corpora: dict[str, tuple[pl.DataFrame, str, pl.DataFrame, list[str]]] = {}
            baseline_weight: float | None = None
            for arm in arms:
                t0 = time.perf_counter()
                frame, key, terms = draw_of(arm, size, seed)
                if arm.kind == "control":
                    variant_frame, variant_key, source, terms = variant_corpora[arm.control_of]
                    arm_frame, replaced = duplicate_control(variant_frame, source)
                    arm_key = json_hash([variant_key, "duplicate-control", CELL_VERSION])
                    if replaced == 0:
                        warn_once(
                            warnings,
                            f"{arm.name}: the variant added no train rows, so its control "
                            "equals the baseline pipeline",
                        )
                else:
                    res = run_steps(
                        frame,
                        build_steps(arm.suffix),
                        step_ctx,
                        cache=cache,
                        input_key=key,
                        protect_eval=recipe.protect_eval,
                    )
                    arm_frame, arm_key = res.corpus, res.key
                    for refusal in gate_refusals(res.reports):
                        refused.setdefault((arm.name, *refusal), set()).add((size, seed))
                    terms = terms + [t for t in domain_terms(res.reports) if t not in terms]
                    variant_corpora[arm.name] = (arm_frame, arm_key, frame, terms)
                pipeline_seconds = time.perf_counter() - t0
                arm_frame, leaked = train_only(arm_frame, eval_ids)
                if leaked:
                    warn_once(
                        warnings,
                        f"{arm.name}: {leaked} train rows are baseline dev/test rows "
                        "(the variant changed the split); they were left out of training",
                    )
                if arm.prefix != arms[0].prefix:
                    warn_once(
                        warnings,
                        f"{arm.name}: changes a data-preparation step; it is still evaluated "
                        "on the baseline's dev/test rows",
                    )
                arm_options = options
                if terms and model not in LINEAR and "domain_terms" not in options:
                    arm_options = {**options, "domain_terms": terms}
                weight = train_weight(arm_frame)
                if baseline_weight is None:
                    baseline_weight = weight
                if model in LINEAR and spec.fast_regularisation == "scale_c":
                    arm_options = {
                        **arm_options,
                        "C": scaled_c(options, baseline_weight, weight, default_c(model)),
                    }
                trainer = trainer_of(model, arm_options, corpus_mod.is_multilabel(arm_frame))
                cell_key = json_hash(
                    {
                        "corpus": arm_key,
                        "eval": eval_key,
                        "model": model,
                        "options": arm_options,
                        "seed": seed,
                        "cell": CELL_VERSION,
                        "train": TRAIN_VERSION,
                        "assay": __version__,
                        # Device, dtype, batch size, stack or loop (the fast model: none).
                        **({} if model == FAST else {"trainer": trainer}),
                    }
                )
                stored = cells_store.get(cell_key)
                if stored is not None:
                    summary, preds = stored
                    cells.append(
                        Cell(arm.name, seed, cell_key, summary, preds, cached=True, size=size)
                    )
                    task.advance(1)
                else:
                    pending.append(
                        PendingCell(
                            arm.name,
                            seed,
                            size,
                            cell_key,
                            arm_frame,
                            arm_options,
                            trainer,
                            pipeline_seconds,
                        )
                    )

        # Every cell's corpus is ready: train the missing ones together (a GPU stacks them),
        # keeping each cell as soon as it is trained so an interrupted run resumes.
        def keep(i: int, outcome: TrainOutcome) -> None:
            p = pending[i]
            summary = cell_summary(outcome, p.pipeline_seconds)
            summary["trainer"] = p.trainer
            if model in LINEAR:
                summary["C"] = float(p.options.get("C", default_c(model)))
            preds = outcome.predictions.select("id", "split", "pred")
            cells_store.put(p.key, summary, preds)
            trained[i] = Cell(p.arm, p.seed, p.key, summary, preds, size=p.size)
            task.advance(1)

        trained: dict[int, Cell] = {}
        (train or train_and_evaluate_many)(
            [Job(p.frame, p.seed, p.options, p.key) for p in pending],
            model=model,
            eval_corpus=eval_frame,
            progress=progress,
            on_outcome=keep,
        )
        cells += [trained[i] for i in range(len(pending))]  # the order they were asked in

    report = build_report(recipe, spec, model, options, arms, cells, eval_frame, warnings)
    note_refusals(report, refused, n_draws=len(jobs))
    report["cells"] = len(cells)
    report["seconds"] = round(time.perf_counter() - started, 2)
    report["cells_cached"] = sum(c.cached for c in cells)
    table = arms_table(report["arms"])
    write_outputs(out_dir, report, table)
    resolved = dump_recipe(recipe.model_copy(update={"ablation": spec}))
    track_ablation(tracking, report, out_dir, resolved, base_frame)  # a failure: one warning
    return AblationResult(out_dir, report, table, report["warnings"])
