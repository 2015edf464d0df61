"""The ablation's report: per train size, each arm's score, delta, interval and verdict
from the paired comparisons; the statistics in words; the warnings; the files it is written
to; and the result `run_ablation` returns."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from assay import __version__
from assay import corpus as corpus_mod
from assay.recipes.ablation_arms import Arm
from assay.recipes.ablation_cells import Cell
from assay.recipes.ablation_judge import LINEAR, judge
from assay.recipes.ablation_spec import AblationSpec
from assay.recipes.schema import Recipe
from assay.train.compare import ArmRuns, compare_arms, subset_fields
from assay.train.evaluate import LEAKED, with_leaked
from assay.train.metrics import encode

# The ablation's warnings keep the logger name they always had: users filter on it.
log = logging.getLogger("assay.recipes.ablation")


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


def warn_once(warnings: list[str], message: str) -> None:
    """Add `message` to the ablation's warnings and log it, once."""
    if message not in warnings:
        warnings.append(message)
        log.warning(message)


def build_report(
    recipe: Recipe,
    spec: AblationSpec,
    model: str,
    options: dict[str, Any],
    arms: list[Arm],
    cells: list[Cell],
    eval_frame: pl.DataFrame,
    warnings: list[str],
) -> dict[str, Any]:
    """ablation.json's content: the judge, the statistics, and a row per arm (per train size
    with a learning curve), scored on the baseline's eval rows."""
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
    from assay.recipes.judge_record import agreement, caution, measured

    report["judge"]["caution"] = caution(model, len(classes), rows[0]["train_rows"])
    # The study's record for this judge at the nearest size and task kind (None: unmeasured).
    record = agreement(model, len(classes), rows[0]["train_rows"])
    report["judge"]["agreement"] = record
    report["judge"]["measured"] = measured(record) if record else None

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
                warn_once(
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
        warn_once(warnings, message)
    return rows


def write_outputs(out_dir: Path, report: dict[str, Any], table: pl.DataFrame) -> None:
    """The ablation's files (ablation.json, .csv, .html, forest.svg), then the run report."""
    from assay.audits.ablation_report import write_ablation_report
    from assay.audits.report import rebuild_report

    write_ablation_report(out_dir, report, table)
    rebuild_report(out_dir)
