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

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from assay import __version__, atomic
from assay import corpus as corpus_mod
from assay.cache import StepCache
from assay.context import RunContext
from assay.errors import RecipeError
from assay.hashing import frame_hash, json_hash
from assay.progress import Progress, SilentProgress
from assay.recipes.ablation_spec import BASELINE, AblationSpec, VariantSpec
from assay.recipes.runner import build_steps, given_input, load_input, run_steps
from assay.recipes.schema import Recipe, StepSpec, dump_recipe, load_recipe
from assay.recipes.tracking import ablation_tracking, check_tracking, track_ablation
from assay.rundir import default_run_dir
from assay.step import StepReport
from assay.train.ablation_data import duplicate_control, subsample_train
from assay.train.compare import ArmRuns, arms_table, compare_arms, subset_fields
from assay.train.evaluate import (
    FAST,
    LEAKED,
    PROBE,
    TRAIN_VERSION,
    Job,
    TrainMany,
    TrainOutcome,
    evaluation_rows,
    train_and_evaluate_many,
    trainer_of,
    with_leaked,
)
from assay.train.fast import DEFAULTS as FAST_DEFAULTS
from assay.train.metrics import encode
from assay.train.probe import DEFAULTS as PROBE_DEFAULTS

log = logging.getLogger(__name__)

CELL_VERSION = "1"
# The judges that are a logistic regression: no optimiser budget, device or tokenizer
# terms; C can be scaled per arm.
LINEAR = (FAST, PROBE)


@dataclasses.dataclass
class Arm:
    name: str
    kind: str  # baseline | variant | control
    prefix: list[StepSpec]  # run once, with the recipe seed (splits stay put)
    suffix: list[StepSpec]  # run per seed
    control_of: str | None = None
    description: str | None = None


@dataclasses.dataclass
class Cell:
    arm: str
    seed: int
    key: str
    outcome: dict[str, Any]  # TrainOutcome.summary() plus pipeline seconds
    predictions: pl.DataFrame  # id, split, pred
    cached: bool = False
    size: int | None = None  # the train-row cap of this cell (None: the whole train split)


@dataclasses.dataclass
class _Pending:
    """A cell whose corpus is built and whose model is still to train."""

    arm: str
    seed: int
    size: int | None
    key: str
    frame: pl.DataFrame
    options: dict[str, Any]
    trainer: dict[str, Any]
    pipeline_seconds: float


@dataclasses.dataclass
class AblationResult:
    out_dir: Path
    report: dict[str, Any]
    table: pl.DataFrame
    warnings: list[str]

    def __repr__(self) -> str:
        from assay.recipes.results import ablation_lines

        lines = [f"AblationResult({str(self.out_dir)!r})", *ablation_lines(self.report)]
        return "\n".join([*lines, "  tables: .table .report; .out_dir"])

    def _repr_html_(self) -> str:
        from assay.html import html_table

        r = self.report
        title = (
            f"{r['name']}: {r['metric']} on {r['eval_split']} ({r['model']}, seeds {r['seeds']})"
        )
        columns = ("arm", "kind", "train_rows", "score", "score_low", "score_high", "delta",
                   "delta_low", "delta_high", "p_value", "verdict")  # fmt: skip
        return html_table(r["arms"], columns, title=title, notes=self.warnings)


# -- planning -------------------------------------------------------------------------------


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


def pipeline_seed(recipe_seed: int, seed: int) -> int:
    """The step seed of training seed `seed`: distinct streams, stable across runs."""
    return int(np.random.SeedSequence([recipe_seed, seed]).generate_state(1)[0] >> 1)


# -- running --------------------------------------------------------------------------------


class _Cells:
    """Finished (arm, seed) cells on disk: predictions parquet + summary json per key."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def get(self, key: str) -> tuple[dict[str, Any], pl.DataFrame] | None:
        meta, preds = self.root / f"{key}.json", self.root / f"{key}.parquet"
        if not (meta.exists() and preds.exists()):
            return None
        import json

        try:
            return json.loads(meta.read_text()), pl.read_parquet(preds)
        except (OSError, ValueError, pl.exceptions.PolarsError):
            return None

    def put(self, key: str, summary: dict[str, Any], predictions: pl.DataFrame) -> None:
        atomic.write_parquet(self.root / f"{key}.parquet", predictions)
        atomic.write_json(self.root / f"{key}.json", summary)  # last: marks the cell done


def _model_options(spec: AblationSpec, model: str) -> dict[str, Any]:
    options = dict(spec.model_options)
    if model in LINEAR:
        return options
    if spec.budget.steps is not None:
        # Every arm takes the same number of steps: no early stop cuts one arm short.
        options.update(max_steps=spec.budget.steps, early_stopping_patience=None)
    elif spec.budget.epochs is not None:
        options["epochs"] = spec.budget.epochs
    return options


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
    options = _model_options(spec, model)
    if device is not None and model not in LINEAR:
        options["device"] = device
    progress = progress or SilentProgress()
    cache = cache if cache is not None else StepCache(enabled=recipe.cache)
    default = recipe.name if recipe.name.endswith("ablation") else f"{recipe.name}-ablation"
    out_dir = Path(out or default_run_dir(default))
    out_dir.mkdir(parents=True, exist_ok=True)
    cells_store = _Cells(out_dir / "cells")
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
    pending: list[_Pending] = []
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
                        _warn(
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
                arm_frame, leaked = _train_only(arm_frame, eval_ids)
                if leaked:
                    _warn(
                        warnings,
                        f"{arm.name}: {leaked} train rows are baseline dev/test rows "
                        "(the variant changed the split); they were left out of training",
                    )
                if arm.prefix != arms[0].prefix:
                    _warn(
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
                        _Pending(
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
        # Every cell's corpus is ready: train the missing ones together (a GPU stacks them).
        outcomes = (train or train_and_evaluate_many)(
            [Job(p.frame, p.seed, p.options, p.key) for p in pending],
            model=model,
            eval_corpus=eval_frame,
            progress=progress,
        )
        for p, outcome in zip(pending, outcomes, strict=True):
            summary = _cell_summary(outcome, p.pipeline_seconds)
            summary["trainer"] = p.trainer
            if model in LINEAR:
                summary["C"] = float(p.options.get("C", default_c(model)))
            preds = outcome.predictions.select("id", "split", "pred")
            cells_store.put(p.key, summary, preds)
            cells.append(Cell(p.arm, p.seed, p.key, summary, preds, size=p.size))
            task.advance(1)

    report = _report(recipe, spec, model, options, arms, cells, eval_frame, warnings)
    _note_refusals(report, refused, n_draws=len(jobs))
    report["cells"] = len(cells)
    report["seconds"] = round(time.perf_counter() - started, 2)
    report["cells_cached"] = sum(c.cached for c in cells)
    table = arms_table(report["arms"])
    _write(out_dir, report, table)
    resolved = dump_recipe(recipe.model_copy(update={"ablation": spec}))
    track_ablation(tracking, report, out_dir, resolved, base_frame)  # a failure: one warning
    return AblationResult(out_dir, report, table, report["warnings"])


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


def train_draw_seed(recipe_seed: int, seed: int, resample_train: str) -> int:
    """The seed of the train subsample: its own per training seed, or the recipe's."""
    return recipe_seed if resample_train == "once" else pipeline_seed(recipe_seed, seed)


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


def domain_terms(reports: list[StepReport]) -> list[str]:
    """Terms a step chose for the tokenizer (`<step>__terms` in its report summary): an
    encoder arm adds them as whole tokens."""
    terms: list[str] = []
    for report in reports:
        for term in report.summary.get(f"{report.step}__terms") or []:
            if term not in terms:
                terms.append(term)
    return terms


def gate_refusals(reports: list[StepReport]) -> list[tuple[str, str]]:
    """(step, action) of every step whose evidence gate refused its destructive action."""
    return [
        (r.step, str(r.summary.get("action")))
        for r in reports
        if (r.summary.get("gate") or {}).get("decision") == "refused"
    ]


def _note_refusals(
    report: dict[str, Any],
    refused: dict[tuple[str, str, str], set[tuple[int | None, int]]],
    n_draws: int,
) -> None:
    """Say in the table, not only in a log line, that an arm's change did not happen."""
    for (arm, step, action), draws in sorted(refused.items()):
        note = (
            f"{step}'s gate refused to {action} in {len(draws)} of {n_draws} cells "
            "(out-of-fold model too weak); the rows were kept"
        )
        _warn(report["warnings"], f"{arm}: {note}, so the arm measures little or nothing")
        for row in report["arms"]:
            if row["arm"] == arm:
                row["gate"] = note
                # Short in the verdict, so a table cell stays readable; `gate` has it all.
                mark = f"(gate refused in {len(draws)} of {n_draws} cells; rows kept)"
                row["verdict"] = f"{row.get('verdict') or ''} {mark}".strip()


def _warn(warnings: list[str], message: str) -> None:
    if message not in warnings:
        warnings.append(message)
        log.warning(message)


def _train_only(frame: pl.DataFrame, eval_ids: pl.Series) -> tuple[pl.DataFrame, int]:
    """The arm's train rows (its own dev/test are ignored), minus any baseline eval row."""
    train = frame.filter(pl.col("split") == "train")
    leak = train.filter(pl.col("id").is_in(eval_ids.implode()))
    if leak.height:
        train = train.filter(~pl.col("id").is_in(eval_ids.implode()))
    return train, leak.height


def _cell_summary(outcome: TrainOutcome, pipeline_seconds: float) -> dict[str, Any]:
    summary = outcome.summary()
    summary["pipeline_seconds"] = round(pipeline_seconds, 3)
    summary["seconds_total"] = round(pipeline_seconds + outcome.seconds, 3)
    return summary


# -- reporting ------------------------------------------------------------------------------


def _report(
    recipe: Recipe,
    spec: AblationSpec,
    model: str,
    options: dict[str, Any],
    arms: list[Arm],
    cells: list[Cell],
    eval_frame: pl.DataFrame,
    warnings: list[str],
) -> dict[str, Any]:
    evaluated = eval_frame.filter(pl.col("split") == spec.eval_split)
    classes = sorted(
        set(corpus_mod.label_set(evaluated))
        | {c for cell in cells for c in cell.outcome.get("classes", [])}
    )
    by_size = {
        size: _size_rows(recipe, spec, arms, cells, size, evaluated, classes, warnings)
        for size in spec.train_sizes
    }
    sizes = spec.train_sizes
    rows = by_size[sizes[-1]]
    report = {
        "name": recipe.name,
        "assay_version": __version__,
        "model": model,
        "judge": judge(model, options, spec.seed_list),
        "model_options": options,
        "metric": spec.metric,
        "eval_split": spec.eval_split,
        "eval_rows": evaluated.height,
        "eval_rows_leaked": _leaked_rows(evaluated),
        "classes": classes,
        "seeds": spec.seed_list,
        "confidence": 1 - spec.alpha,
        "bootstrap": spec.bootstrap,
        "permutations": spec.permutations,
        "budget": spec.budget.model_dump(),
        "train_rows_cap": sizes[-1],
        "statistics": statistics(spec, model, rows),
        "spec": spec.model_dump(mode="json"),
        "arms": rows,
        "warnings": warnings,
    }
    from assay.audits.ablation_report import language_rows
    from assay.recipes.judge_record import caution

    report["judge"]["caution"] = caution(model, len(classes), rows[0]["train_rows"])

    # Metric per eval language (translated dev/test copies carry their own `lang`).
    report["by_lang"] = language_rows(
        [(c.arm, c.seed, c.predictions) for c in cells if c.size == sizes[-1]],
        eval_frame,
        spec.eval_split,
        spec.metric,
        classes,
    )
    if len(sizes) > 1:
        report["learning_curve"] = [
            {"train_rows_cap": size, **{c: r.get(c) for c in CURVE_FIELDS}}
            for size in sizes
            for r in by_size[size]
        ]
    return report


def _leaked_rows(evaluated: pl.DataFrame) -> int:
    marked = with_leaked(evaluated.select("id"), evaluated)
    return int(marked[LEAKED].sum()) if LEAKED in marked.columns else 0


CURVE_FIELDS = ("arm", "kind", "train_rows", "score", "delta", "delta_low", "delta_high",
                "p_value", "p_value_raw", "verdict")  # fmt: skip


def statistics(spec: AblationSpec, model: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """How the intervals and p-values were computed, in words and as fields."""
    seeds = len(spec.seed_list)
    per_seed = spec.train_rows is not None and spec.resample_train == "per_seed"
    if spec.train_rows is None:
        draw = "every seed trains on the whole train split"
    elif per_seed:
        draw = "each seed draws its own train rows (shared by every arm of that seed)"
    else:
        draw = "one train draw (recipe seed) is shared by every seed"
    covers = "test examples and seeds" + (" (so train draws)" if per_seed else "")
    test = (
        "the share of bootstrap deltas on the far side of zero (raw p < alpha when the CI excludes 0)"
        if spec.p_test == "bootstrap"
        else "a paired permutation test swapping the arms' predictions per example and seed"
    )
    if model not in LINEAR:
        regularisation = "not applicable (encoder)"
    elif spec.fast_regularisation == "scale_c":
        regularisation = "C scaled by baseline rows / arm rows in every arm"
    else:
        regularisation = "the same C in every arm"
    comparisons = max((r.get("comparisons", 0) for r in rows), default=0)
    note = (
        f"{draw[0].upper() + draw[1:]}. {1 - spec.alpha:.0%} CIs from a paired bootstrap over {covers}"
        + (f", the seed part a t distribution with {seeds - 1} df" if seeds > 1
           else "; one seed: examples only")
        + f". p on {spec.metric} itself: {test}; Holm-adjusted over {comparisons} comparisons "
        f"(raw p kept). Fast-model regularisation: {regularisation}."
    )  # fmt: skip
    return {
        "train_draw": spec.resample_train if spec.train_rows is not None else "whole",
        "ci_covers": covers,
        "seed_part": f"t, {seeds - 1} df" if seeds > 1 else None,
        "p_test": spec.p_test,
        "p_metric": spec.metric,
        "p_adjustment": "holm",
        "comparisons": comparisons,
        "fast_regularisation": spec.fast_regularisation if model in LINEAR else None,
        "note": note,
    }


def _size_rows(
    recipe: Recipe,
    spec: AblationSpec,
    arms: list[Arm],
    cells: list[Cell],
    size: int | None,
    evaluated: pl.DataFrame,
    classes: list[str],
    warnings: list[str],
) -> list[dict[str, Any]]:
    ids = evaluated["id"].to_list()
    runs = []
    for arm in arms:
        preds, summaries = [], []
        for seed in spec.seed_list:
            cell = next(c for c in cells if c.arm == arm.name and c.seed == seed and c.size == size)
            frame = cell.predictions.filter(pl.col("split") == spec.eval_split)
            by_id = dict(zip(frame["id"].to_list(), frame["pred"].to_list(), strict=True))
            pred = encode([by_id[i] for i in ids], classes)
            if pred.ndim == 1 and len(classes) > 1 and len(np.unique(pred)) == 1:
                _warn(
                    warnings,
                    f"{arm.name} (seed {seed}) predicted {classes[pred[0]]!r} for every "
                    f"{spec.eval_split} example: the model collapsed to one class; give it "
                    "more optimiser steps (budget) or rows",
                )
            preds.append(pred)
            summaries.append(cell.outcome)
        runs.append(ArmRuns(arm.name, arm.kind, preds, summaries, arm.control_of))
    rows, more = compare_arms(
        runs,
        encode(evaluated["label"].to_list(), classes),
        len(classes),
        metric=spec.metric,
        eval_split=spec.eval_split,
        rng=np.random.default_rng(np.random.SeedSequence([recipe.seed, 0xAB1A])),
        n_resamples=spec.bootstrap,
        n_permutations=spec.permutations,
        alpha=spec.alpha,
        p_test=spec.p_test,
    )
    leaked = with_leaked(evaluated.select("id"), evaluated)
    if 0 < _leaked_rows(evaluated) < evaluated.height:
        # A leakage audit marked eval rows: every arm is also scored on the clean rest.
        clean = subset_fields(
            runs,
            encode(evaluated["label"].to_list(), classes),
            ~leaked[LEAKED].to_numpy(),
            len(classes),
            metric=spec.metric,
            rng=np.random.default_rng(np.random.SeedSequence([recipe.seed, 0xC1EA])),
            n_resamples=spec.bootstrap,
            alpha=spec.alpha,
        )
        for row, extra in zip(rows, clean, strict=True):
            row.update(extra)
    for arm, row, run in zip(arms, rows, runs, strict=True):
        row["description"] = arm.description
        row["steps_added"] = [s.name for s in arm.suffix if s not in arms[0].suffix]
        row["train_rows_cap"] = size
        cs = [c for c in (r.get("C") for r in run.runs) if c is not None]
        if cs:
            row["fast_c"] = float(np.mean(cs))  # the fast model's C (scaled per arm or not)
    for message in more:
        _warn(warnings, message)
    return rows


def _write(out_dir: Path, report: dict[str, Any], table: pl.DataFrame) -> None:
    from assay.audits.ablation_report import write_ablation_report
    from assay.audits.report import rebuild_report

    write_ablation_report(out_dir, report, table)
    rebuild_report(out_dir)


# -- screen, then confirm -------------------------------------------------------------------

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
