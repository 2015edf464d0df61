from __future__ import annotations

import json

import numpy as np
import polars as pl

from assay.audits.ablation_report import forest_rows, write_ablation_report
from assay.audits.forest_plot import curve_svg, forest_svg
from assay.train.compare import ArmRuns, arms_table, compare_arms


def _report() -> dict:
    rng = np.random.default_rng(0)
    n, seeds = 1200, 3
    y = rng.integers(0, 2, n)

    def arm(acc: float) -> list[np.ndarray]:
        return [np.where(rng.random(n) < acc, y, 1 - y) for _ in range(seeds)]

    runs = [{"train_rows": 100, "steps": None, "seconds_total": 1.0, "metrics": {}}] * seeds
    base, better = arm(0.70), arm(0.82)
    rows, _ = compare_arms(
        [ArmRuns("baseline", "baseline", base, runs),
         ArmRuns("+eda", "variant", better, runs),
         ArmRuns("+eda [duplicate control]", "control", better, runs, "+eda")],
        y, 2, metric="macro_f1", eval_split="test", rng=rng, n_resamples=200,
        n_permutations=200, alpha=0.05,
    )  # fmt: skip
    curve = [
        {"train_rows_cap": size, "arm": r["arm"], "kind": r["kind"], "train_rows": size,
         "score": r["score"], "delta": r.get("delta"), "delta_low": r.get("delta_low"),
         "delta_high": r.get("delta_high"), "p_value": r.get("p_value"),
         "p_value_raw": r.get("p_value_raw"), "verdict": r.get("verdict")}
        for size in (100, 500) for r in rows
    ]  # fmt: skip
    return {
        "name": "toy", "model": "fast", "metric": "macro_f1", "eval_split": "test",
        "eval_rows": n, "seeds": [0, 1, 2], "confidence": 0.95, "arms": rows,
        "warnings": [], "learning_curve": curve,
        "statistics": {"note": "each seed draws its own train rows. Holm-adjusted."},
    }  # fmt: skip


def test_report_carries_control_aware_verdicts_everywhere(tmp_path):
    report = _report()
    write_ablation_report(tmp_path, report, arms_table(report["arms"]))
    verdict = "better, but no better than duplicating rows"
    table = pl.read_csv(tmp_path / "ablation.csv")
    row = table.filter(pl.col("arm") == "+eda").row(0, named=True)
    assert row["verdict"] == verdict
    assert row["vs_control_verdict"] == "no detectable change"
    assert row["p_value"] >= row["p_value_raw"]
    data = json.loads((tmp_path / "ablation.json").read_text())
    assert data["arms"][1]["verdict"] == verdict
    page = (tmp_path / "ablation.html").read_text()
    assert verdict in page and "p (Holm)" in page and "p (raw)" in page
    assert "each seed draws its own train rows" in page
    svg = (tmp_path / "forest.svg").read_text()
    assert "+eda minus control" in svg


def test_forest_shows_variant_minus_control_under_the_variant():
    rows = forest_rows(_report())
    assert [r["name"] for r in rows] == [
        "+eda", "+eda minus control", "+eda [duplicate control]",
    ]  # fmt: skip
    assert rows[1]["secondary"] and rows[1]["delta"] == 0
    svg = forest_svg(rows, "t")
    assert svg.count("<circle") == 3 and 'fill="white" stroke=' in svg


def test_learning_curve_table_and_plot(tmp_path):
    report = _report()
    write_ablation_report(tmp_path, report, arms_table(report["arms"]))
    curve = pl.read_csv(tmp_path / "learning_curve.csv")
    assert curve.height == 6
    assert curve["train_rows_cap"].unique().sort().to_list() == [100, 500]
    svg = (tmp_path / "learning_curve.svg").read_text()
    assert svg.count("<polyline") == 2  # one line per non-baseline arm
    assert curve_svg([{"name": "a", "size": 100, "delta": 0.1, "low": 0, "high": 0.2}]) == ""
