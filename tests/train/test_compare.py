from __future__ import annotations

import numpy as np
import pytest

from assay.train.compare import ArmRuns, compare_arms, control_verdict, holm


def test_holm_adjusts_known_p_values():
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([0.2]) == [0.2]
    assert holm([0.001, 0.9]) == pytest.approx([0.002, 0.9])
    assert holm([0.6, 0.4]) == pytest.approx([0.8, 0.8])  # monotone, capped at 1


def _runs(n_seeds: int) -> list[dict]:
    return [{"train_rows": 100, "steps": None, "seconds_total": 1.0, "metrics": {}}] * n_seeds


def test_variant_no_better_than_its_duplicate_control_says_so():
    rng = np.random.default_rng(0)
    n, seeds = 1500, 3
    y = rng.integers(0, 2, n)

    def arm(acc: float) -> list[np.ndarray]:
        return [np.where(rng.random(n) < acc, y, 1 - y) for _ in range(seeds)]

    base, better = arm(0.70), arm(0.82)
    rows, _ = compare_arms(
        [ArmRuns("baseline", "baseline", base, _runs(seeds)),
         ArmRuns("+eda", "variant", better, _runs(seeds)),
         ArmRuns("+eda [duplicate control]", "control", better, _runs(seeds), "+eda")],
        y, 2, metric="macro_f1", eval_split="test", rng=rng, n_resamples=300,
        n_permutations=300, alpha=0.05,
    )  # fmt: skip
    variant = rows[1]
    assert variant["vs_control_delta"] == 0
    assert variant["vs_control_verdict"] == "no detectable change"
    assert variant["verdict"] == "better, but no better than duplicating rows"
    assert rows[2]["verdict"] == "better"
    # Three comparisons (two arms vs baseline, one vs control) share the Holm family.
    assert variant["comparisons"] == 3
    assert variant["p_value"] >= variant["p_value_raw"]


def test_an_arms_interval_does_not_depend_on_the_arms_compared_before_it():
    rng = np.random.default_rng(3)
    n, seeds = 800, 3
    y = rng.integers(0, 2, n)
    preds = {acc: [np.where(rng.random(n) < acc, y, 1 - y) for _ in range(seeds)]
             for acc in (0.70, 0.74, 0.78)}  # fmt: skip
    base = ArmRuns("baseline", "baseline", preds[0.70], _runs(seeds))
    a = ArmRuns("+a", "variant", preds[0.74], _runs(seeds))
    b = ArmRuns("+b", "variant", preds[0.78], _runs(seeds))

    def rows(arms):
        got, _ = compare_arms(arms, y, 2, metric="macro_f1", eval_split="test",
                              rng=np.random.default_rng(11), n_resamples=200,
                              n_permutations=200, alpha=0.05)  # fmt: skip
        return {r["arm"]: r for r in got}

    alone, after, before = rows([base, b]), rows([base, a, b]), rows([base, b, a])
    for key in ("delta_low", "delta_high", "p_value_raw", "score_low", "score_high"):
        assert alone["+b"][key] == after["+b"][key] == before["+b"][key], key
    assert after["+a"]["delta_low"] == before["+a"]["delta_low"]
    # Another run seed draws other resamples.
    other, _ = compare_arms([base, b], y, 2, metric="macro_f1", eval_split="test",
                            rng=np.random.default_rng(12), n_resamples=200,
                            n_permutations=200, alpha=0.05)  # fmt: skip
    assert other[1]["delta_low"] != alone["+b"]["delta_low"]


def test_holm_turns_a_borderline_call_into_no_detectable_change():
    rows = [{"arm": f"v{i}", "delta": 0.01, "p_value_raw": p} for i, p in
            enumerate([0.03, 0.5, 0.6])]  # fmt: skip
    from assay.train.compare import adjust_and_judge

    adjust_and_judge(rows, 0.05)
    assert rows[0]["p_value"] == pytest.approx(0.09)
    assert rows[0]["verdict"] == "no detectable change"


@pytest.mark.parametrize(
    ("main", "control", "verdict"),
    [
        ("better", "better", "better, and better than duplicating rows"),
        ("better", "no detectable change", "better, but no better than duplicating rows"),
        ("worse", "better", "worse, but better than duplicating rows"),
        ("no detectable change", "no detectable change", "no detectable change"),
    ],
)
def test_control_verdict_reads_both_comparisons(main, control, verdict):
    assert control_verdict(main, control) == verdict
