"""Compare trained arms on one evaluation set: scores, paired deltas with CIs, p-values.

Each arm is a data variant trained on the same seeds and evaluated on the same examples.
Every comparison is paired (same seeds, same examples): a bootstrap over examples and
seeds for the CI, a test of the headline metric itself for the p-value. The p-values of
one ablation (every arm against the baseline, every variant against its control) are
Holm-adjusted together; verdicts read the adjusted p, the raw p is kept beside it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import numpy as np
import polars as pl

from assay.train.bootstrap import PairedComparison, paired_bootstrap

STEP_RATIO_WARNING = 2.0


def comparison_rng(base: int, *names: str) -> np.random.Generator:
    """The resampling stream of one comparison, keyed by the arms it compares: an arm's
    interval does not depend on which arms were compared before it, so it survives a
    rerun with arms added, removed or reordered."""
    keys = [int.from_bytes(hashlib.blake2b(n.encode(), digest_size=8).digest(), "little")
            for n in names]  # fmt: skip
    return np.random.default_rng(np.random.SeedSequence([base, *keys]))


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
    p_test: str = "permutation",
    seed_t: bool = True,
) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per arm (the first arm is the baseline) and the warnings they raise."""
    by_name = {a.name: a for a in arms}
    baseline = arms[0]
    base = int(rng.integers(2**63))

    def compare(a: ArmRuns, b: ArmRuns) -> PairedComparison:
        return paired_bootstrap(
            y_true,
            a.predictions,
            b.predictions,
            k,
            metric,
            rng=comparison_rng(base, a.name, b.name),
            n_resamples=n_resamples,
            confidence=1 - alpha,
            n_permutations=n_permutations,
            p_test=p_test,
            seed_t=seed_t,
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
    adjust_and_judge(rows, alpha)
    warning = step_warning(rows)
    return rows, [warning] if warning else []


def subset_fields(
    arms: list[ArmRuns],
    y_true: np.ndarray,
    keep: np.ndarray,
    k: int,
    *,
    metric: str,
    rng: np.random.Generator,
    n_resamples: int,
    alpha: float,
    prefix: str = "clean_",
) -> list[dict[str, Any]]:
    """Each arm's score and delta against the baseline on the examples `keep` selects (the
    clean subset of a leaked eval split), with their CIs; one dict per arm, in order."""
    baseline = [p[keep] for p in arms[0].predictions]
    base = int(rng.integers(2**63))
    out = []
    for arm in arms:
        cmp = paired_bootstrap(
            y_true[keep],
            [p[keep] for p in arm.predictions],
            baseline,
            k,
            metric,
            rng=comparison_rng(base, arm.name, arms[0].name),
            n_resamples=n_resamples,
            confidence=1 - alpha,
            n_permutations=0,
            p_test="bootstrap",
        )
        row = {
            f"{prefix}n": int(keep.sum()),
            f"{prefix}score": cmp.variant.estimate,
            f"{prefix}score_low": cmp.variant.low,
            f"{prefix}score_high": cmp.variant.high,
        }
        if arm is not arms[0]:
            row.update({f"{prefix}delta": cmp.delta.estimate, f"{prefix}delta_low": cmp.delta.low,
                        f"{prefix}delta_high": cmp.delta.high})  # fmt: skip
        out.append(row)
    return out


def delta_fields(prefix: str, cmp: PairedComparison, alpha: float) -> dict[str, Any]:
    """Delta, CI and raw p of one comparison; `adjust_and_judge` adds the adjusted p."""
    d = cmp.delta
    return {
        f"{prefix}delta": d.estimate,
        f"{prefix}delta_low": d.low,
        f"{prefix}delta_high": d.high,
        f"{prefix}p_value_raw": cmp.p_value,
        f"{prefix}p_value": cmp.p_value,
        f"{prefix}significant": cmp.p_value < alpha,
        f"{prefix}verdict": direction(d.estimate, cmp.p_value < alpha),
    }


def holm(p_values: list[float]) -> list[float]:
    """Holm step-down adjusted p-values (same order as given): controls the chance of any
    false 'significant' among the family at alpha, with no independence assumption."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def direction(delta: float, significant: bool) -> str:
    if not significant:
        return "no detectable change"
    return "better" if delta > 0 else "worse"


def control_verdict(main: str, vs_control: str) -> str:
    """The verdict of a variant read together with its duplicate control's: did the new
    text do anything beyond adding (re-weighting) rows?"""
    if vs_control == "no detectable change":
        if main == "no detectable change":
            return main
        return f"{main}, but no {main} than duplicating rows"
    beyond = f"{vs_control} than duplicating rows"
    if main == "no detectable change":
        return f"{main}, but {beyond}"
    return f"{main}, {'and' if main == vs_control else 'but'} {beyond}"


def adjust_and_judge(rows: list[dict[str, Any]], alpha: float) -> None:
    """Holm-adjust every p-value of the ablation together and set the verdicts from them."""
    family = [(row, prefix) for prefix in ("", "vs_control_") for row in rows
              if f"{prefix}p_value_raw" in row]  # fmt: skip
    adjusted = holm([row[f"{prefix}p_value_raw"] for row, prefix in family])
    for (row, prefix), p in zip(family, adjusted, strict=True):
        significant = p < alpha
        row[f"{prefix}p_value"] = p
        row[f"{prefix}significant"] = significant
        row[f"{prefix}verdict"] = direction(row[f"{prefix}delta"], significant)
        row["comparisons"] = len(family)
    for row in rows:
        if "vs_control_verdict" in row:
            row["verdict"] = control_verdict(row["verdict"], row["vs_control_verdict"])


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
    "score_low", "score_high", "delta", "delta_low", "delta_high", "p_value", "p_value_raw",
    "significant", "verdict", "vs_control_delta", "vs_control_delta_low",
    "vs_control_delta_high", "vs_control_p_value", "vs_control_p_value_raw",
    "vs_control_verdict", "clean_score", "clean_delta", "clean_delta_low", "clean_delta_high",
    "gate",
]  # fmt: skip


def arms_table(rows: list[dict[str, Any]]) -> pl.DataFrame:
    schema: dict[str, Any] = {c: pl.Float64 for c in TABLE_COLUMNS}
    schema.update(
        arm=pl.String,
        kind=pl.String,
        verdict=pl.String,
        vs_control_verdict=pl.String,
        significant=pl.Boolean,
        gate=pl.String,  # what a step's evidence gate refused in the arm's cells
    )
    return pl.DataFrame([{c: r.get(c) for c in TABLE_COLUMNS} for r in rows], schema=schema)
