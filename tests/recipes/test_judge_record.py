"""What a cheap judge's verdicts carry: its measured agreement with the fine-tuned encoder
(the study's record nearest its setting) and a caution where that is low or unmeasured."""

from __future__ import annotations

import pytest

from assay.recipes import judge_record


def _record(judge, task, rows, n, same, opposite):
    return {"judge": judge, "task": task, "train_rows": rows, "datasets": ["x"],
            "reference_significant_arms": n,
            "decision_agreement": same / n if n else None,
            "opposite_rate": opposite / n if n else None,
            "spearman_deltas_mean": 0.5, "cost_per_cell_vs_reference": 0.01}  # fmt: skip


@pytest.fixture
def records(monkeypatch):
    planted = [
        _record("fast", "binary", 500, 8, 5, 1),
        _record("fast", "binary", 2000, 10, 9, 0),
        _record("probe", "binary", 500, 8, 7, 0),
        _record("probe", "multiclass", 500, 0, 0, 0),
    ]
    monkeypatch.setattr(judge_record, "_records", lambda: planted)
    return planted


def test_the_nearest_size_of_the_same_task_kind_is_the_record(records):
    assert judge_record.agreement("fast", 2, 400) is records[0]
    assert judge_record.agreement("fast", 2, 1500) is records[1]  # nearer on a log scale
    assert judge_record.agreement("fast", 6, 500) is None  # multiclass never measured
    assert judge_record.agreement("minilm", 2, 500) is None


def test_a_low_agreement_cautions_with_its_numbers_and_the_command(records):
    text = judge_record.caution("fast", 2, 500)
    assert "5 of the 8 arms" in text and "(62%, 12% opposite)" in text
    assert "500 train rows on binary tasks" in text
    assert "assay ablate RECIPE --confirm" in text
    assert judge_record.caution("fast", 2, 2000) is None  # 90%: trusted
    assert judge_record.caution("probe", 2, 500) is None  # 7 of 8: 88%
    assert judge_record.caution("minilm", 2, 500) is None  # the reference itself


def test_a_study_where_the_encoder_separated_nothing_says_so(records):
    text = judge_record.caution("probe", 4, 500)
    assert "separated none of the study's arms" in text and "unmeasured" in text
    assert "--confirm" in text


def test_the_judges_label_carries_its_measured_agreement(records, tmp_path):
    from assay.audits.report_markdown import judge_label

    record = judge_record.agreement("fast", 2, 500)
    report = {"model": "fast", "judge": {"model": "fast", "trainer": "fast",
                                         "measured": judge_record.measured(record)}}  # fmt: skip
    label = judge_label(report)
    assert label.startswith("fast (same verdict as the fine-tuned encoder on 5 of the 8 arms")
    assert judge_label({"model": "fast", "judge": {"model": "fast"}}) == "fast"
