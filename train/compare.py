"""Compare trained arms on one evaluation set: scores, paired deltas with CIs, p-values.

Each arm is a data variant trained on the same seeds and evaluated on the same examples.
Every comparison is paired (same seeds, same examples): a bootstrap over examples and
seeds for the CI, a permutation test on per-example correctness for the p-value.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import polars as pl

from assay.train.bootstrap import PairedComparison, paired_bootstrap

STEP_RATIO_WARNING = 2.0


@dataclasses.dataclass
class ArmRuns:
    name: str
    kind: str  # baseline | variant | control
    predictions: list[np.ndarray]  # one encoded prediction array per seed, aligned to truth
    runs: list[dict[str, Any]]  # per seed: train_rows, steps, seconds_total, metrics
    control_of: str | None = None


def compare_arms(
    arms: list[ArmRuns],
    y_true: np.ndarray,
    k: int,
    *,
    metric: str,
    eval_split: str,
    rng: np.random.Generator,
    n_resamples: int,
    n_permutations: int,
    alpha: float,
) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per arm (the first arm is the baseline) and the warnings they raise."""
    by_name = {a.name: a for a in arms}
    baseline = arms[0]

    def compare(a: ArmRuns, b: ArmRuns) -> PairedComparison:
        return paired_bootstrap(
            y_true,
            a.predictions,
            b.predictions,
            k,
            metric,
            rng=rng,
            n_resamples=n_resamples,
            confidence=1 - alpha,
            n_permutations=n_permutations,
        )

    rows = []
    for arm in arms:
        cmp = compare(arm, baseline)
        steps = [r.get("steps") for r in arm.runs]
        scores = [r["metrics"].get(eval_split, {}) for r in arm.runs]
        row: dict[str, Any] = {
            "arm": arm.name,
            "kind": arm.kind,
            "control_of": arm.control_of,
            "train_rows": float(np.mean([r["train_rows"] for r in arm.runs])),
            "optimizer_steps": float(np.mean(steps)) if all(s is not None for s in steps) else None,
            "seconds": float(np.mean([r["seconds_total"] for r in arm.runs])),
            "metric": metric,
            "score": cmp.variant.estimate,
            "score_low": cmp.variant.low,
            "score_high": cmp.variant.high,
            "per_seed": [s.get(metric) for s in scores],
            "accuracy": float(np.mean([s.get("accuracy", np.nan) for s in scores])),
        }
        if arm is not baseline:
            row.update(delta_fields("", cmp, alpha))
        rows.append(row)
    rows_by_name = {r["arm"]: r for r in rows}
    for row in rows:
        row["rows_vs_baseline"] = row["train_rows"] - rows[0]["train_rows"]
    for arm in arms:
        if arm.kind == "control" and arm.control_of in by_name:
            variant = rows_by_name[arm.control_of]
            variant.update(
                delta_fields("vs_control_", compare(by_name[arm.control_of], arm), alpha)
            )
            variant["control"] = arm.name
    warning = step_warning(rows)
    return rows, [warning] if warning else []


def delta_fields(prefix: str, cmp: PairedComparison, alpha: float) -> dict[str, Any]:
    significant = cmp.p_value < alpha
    d = cmp.delta
    verdict = "better" if d.estimate > 0 else "worse"
    if not significant:
        verdict = "no detectable change"
    return {
        f"{prefix}delta": d.estimate,
        f"{prefix}delta_low": d.low,
        f"{prefix}delta_high": d.high,
        f"{prefix}p_value": cmp.p_value,
        f"{prefix}significant": significant,
        f"{prefix}verdict": verdict,
    }


def step_warning(rows: list[dict[str, Any]]) -> str | None:
    """A warning when arms took more than 2x different numbers of optimiser steps."""
    steps = {r["arm"]: r["optimizer_steps"] for r in rows if r["optimizer_steps"]}
    if not steps:
        return None
    few = min(steps, key=steps.__getitem__)
    many = max(steps, key=steps.__getitem__)
    if steps[many] <= STEP_RATIO_WARNING * steps[few]:
        return None
    return (
        f"arms took very different numbers of optimiser steps ({few}: {steps[few]:.0f}, "
        f"{many}: {steps[many]:.0f}); part of a delta may be more training, not better data. "
        "Set `budget: {steps: N}` to give every arm the same steps."
    )


TABLE_COLUMNS = [
    "arm", "kind", "train_rows", "rows_vs_baseline", "optimizer_steps", "seconds", "score",
    "score_low", "score_high", "delta", "delta_low", "delta_high", "p_value", "significant",
    "verdict", "vs_control_delta", "vs_control_delta_low", "vs_control_delta_high",
    "vs_control_p_value",
]  # fmt: skip


def arms_table(rows: list[dict[str, Any]]) -> pl.DataFrame:
    schema: dict[str, Any] = {c: pl.Float64 for c in TABLE_COLUMNS}
    schema.update(arm=pl.String, kind=pl.String, verdict=pl.String, significant=pl.Boolean)
    return pl.DataFrame([{c: r.get(c) for c in TABLE_COLUMNS} for r in rows], schema=schema)
