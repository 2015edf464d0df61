from __future__ import annotations

import polars as pl
import pytest

from assay import from_records
from assay.audits.ablation_report import language_rows, write_ablation_report
from assay.train.compare import arms_table

from .test_ablation_report import _report

# four English test rows, four Spanish translated copies, one dev row (never scored)
EVAL = from_records(
    ["e1", "e2", "e3", "e4", "s1", "s2", "s3", "s4", "d1"],
    ["pos", "neg", "pos", "neg", "pos", "neg", "pos", "neg", "pos"],
    ids=["e1", "e2", "e3", "e4", "s1", "s2", "s3", "s4", "d1"],
    split=["test"] * 8 + ["dev"],
    lang=["en"] * 4 + ["es"] * 4 + ["en"],
)
TRUTH = dict(zip(EVAL["id"].to_list(), EVAL["label"].to_list(), strict=True))


def predictions(wrong: set[str]) -> pl.DataFrame:
    flip = {"pos": "neg", "neg": "pos"}
    ids = EVAL["id"].to_list()
    return pl.DataFrame(
        {
            "id": ids,
            "split": EVAL["split"].to_list(),
            "pred": [flip[TRUTH[i]] if i in wrong else TRUTH[i] for i in ids],
        }
    )


def cells():
    # the baseline gets Spanish wrong half the time; the variant fixes Spanish on seed 1 only
    return [
        ("baseline", 1, predictions({"s1", "s2"})),
        ("baseline", 2, predictions({"s1", "s2"})),
        ("+translate_train", 1, predictions(set())),
        ("+translate_train", 2, predictions({"s1", "s2", "d1"})),
    ]


def test_language_rows_score_each_language_and_pair_deltas_by_seed():
    rows = language_rows(cells(), EVAL, "test", "accuracy", ["neg", "pos"])
    got = {(r["arm"], r["lang"]): r for r in rows}
    assert sorted(got) == [
        ("+translate_train", "en"),
        ("+translate_train", "es"),
        ("baseline", "en"),
        ("baseline", "es"),
    ]
    assert got["baseline", "es"]["score"] == pytest.approx(0.5)
    assert got["baseline", "es"]["rows"] == 4
    assert got["baseline", "en"]["score"] == pytest.approx(1.0)
    assert got["baseline", "en"]["delta"] is None
    variant = got["+translate_train", "es"]
    assert variant["score"] == pytest.approx(0.75)
    assert (variant["score_low"], variant["score_high"]) == (pytest.approx(0.5), 1.0)
    assert variant["delta"] == pytest.approx(0.25)
    assert (variant["delta_low"], variant["delta_high"]) == (pytest.approx(0.0), 0.5)
    # the wrong dev prediction is not in the test scores
    assert got["+translate_train", "en"]["delta"] == pytest.approx(0.0)


def test_one_language_gives_no_breakdown():
    english = EVAL.with_columns(lang=pl.lit("en"))
    assert language_rows(cells(), english, "test", "accuracy", ["neg", "pos"]) == []


def test_report_page_and_csv_show_the_per_language_table(tmp_path):
    report = _report()
    report["by_lang"] = language_rows(cells(), EVAL, "test", "macro_f1", ["neg", "pos"])
    write_ablation_report(tmp_path, report, arms_table(report["arms"]))
    table = pl.read_csv(tmp_path / "ablation_lang.csv")
    assert table.filter(pl.col("lang") == "es")["arm"].to_list() == [
        "baseline",
        "+translate_train",
    ]
    page = (tmp_path / "ablation.html").read_text()
    assert "Per language" in page and "delta seed range" in page


def test_report_without_languages_has_no_per_language_section(tmp_path):
    report = _report()
    write_ablation_report(tmp_path, report, arms_table(report["arms"]))
    assert "Per language" not in (tmp_path / "ablation.html").read_text()
    assert not (tmp_path / "ablation_lang.csv").exists()
