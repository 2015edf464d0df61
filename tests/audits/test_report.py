from __future__ import annotations

import json
import re
import sys
import types

import numpy as np
import polars as pl
import pytest

from assay.audits import report_audits
from assay.audits.report import rebuild_report
from assay.audits.report_artifacts import RunArtifacts
from assay.audits.report_sections import build_sections, section_names
from assay.errors import InputError
from assay.recipes.runner import run_recipe

WORDS = [
    "river",
    "stone",
    "apple",
    "cloud",
    "music",
    "window",
    "garden",
    "silver",
    "engine",
    "paper",
    "forest",
    "candle",
    "bridge",
    "yellow",
    "market",
    "winter",
    "lantern",
    "coffee",
    "harbor",
    "velvet",
    "pencil",
    "ocean",
    "thunder",
    "mirror",
    "island",
    "meadow",
    "rocket",
    "violin",
    "desert",
    "marble",
]
LEAK = "a sentence that leaks from train into test"
DUPLICATE = "the very same sentence twice in train"


def planted_rows() -> list[dict[str, str]]:
    """60 distinct rows, an exact duplicate pair in train, one train row copied into test."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):
        split = "train" if i < 40 else "dev" if i < 50 else "test"
        text = f"item {i} " + " ".join(rng.choice(WORDS, size=9))
        rows.append(
            {"id": f"r{i:02d}", "text": text, "label": "pos" if i % 3 else "neg", "split": split}
        )
    rows += [
        {"id": "dup_a", "text": DUPLICATE, "label": "pos", "split": "train"},
        {"id": "dup_b", "text": DUPLICATE, "label": "pos", "split": "train"},
        {"id": "tr_leak", "text": LEAK, "label": "neg", "split": "train"},
        {"id": "te_leak", "text": LEAK, "label": "neg", "split": "test"},
    ]
    return rows


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    source = root / "planted.csv"
    pl.DataFrame(planted_rows()).write_csv(source)
    recipe = {
        "name": "planted",
        "seed": 5,
        "input": {"source": str(source), "split_column": "split", "id_column": "id",
                  "labels": ["pos", "neg"]},
        "steps": [
            {"leakage": {"methods": ["exact"]}},
            {"dedup": {"method": "exact", "splits": "within_split"}},
            {"eda": {"n_per_row": 2, "splits": ["train"], "budget": 0.5}},
        ],
        "cache": False,
    }  # fmt: skip
    result = run_recipe(recipe, root / "run")
    return result.run_dir.path


def _h2(doc: str) -> list[str]:
    return re.findall(r"<h2>(.*?)</h2>", doc)


def test_report_has_a_section_for_each_artifact_in_registry_order(run):
    doc = (run / "report.html").read_text()
    assert _h2(doc) == [
        "Corpus flow",
        "Class balance",
        "Duplicates",
        "Leakage matrix",
        "Augmentation",
    ]
    assert section_names()[:6] == [
        "corpus_flow", "class_balance", "duplicates", "label_issues", "leakage", "augmentation",
    ]  # fmt: skip


def test_markdown_report_has_the_same_sections_and_is_in_the_manifest(run):
    md = (run / "report.md").read_text()
    html_titles = _h2((run / "report.html").read_text())
    assert re.findall(r"^## (.*)$", md, flags=re.M) == html_titles
    assert json.loads((run / "manifest.json").read_text())["outputs"]["report.md"] == "report.md"
    assert "<svg" not in md and "<table" not in md


def test_report_is_self_contained(run):
    doc = (run / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", doc, flags=re.I)
    assert "<script" not in doc and "<link" not in doc and "@import" not in doc
    assert "url(" not in doc and "<img" not in doc


def test_corpus_flow_counts_each_step_and_draws_the_chart(run):
    doc = (run / "report.html").read_text()
    assert 'aria-label="corpus flow per step"' in doc
    md = (run / "report.md").read_text()
    assert "| 1 | dedup | filter | 64 | 63 | 1 | 0 |" in md
    assert "| 2 | eda | augmenter | 63 | 84 | 0 | 21 |" in md
    assert "**balanced**: 64 read − 1 dropped + 21 added = 84 rows." in md


def test_class_balance_gives_the_imbalance_ratio_per_split(run):
    corpus = pl.read_parquet(run / "corpus.parquet")
    train = corpus.filter(pl.col("split") == "train")["label"].value_counts()
    counts = dict(train.iter_rows())
    expected = round(max(counts.values()) / min(counts.values()), 2)
    md = (run / "report.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| train | "))
    assert row.endswith(f"| {expected} |")


def test_duplicates_show_the_planted_pair(run):
    md = (run / "report.md").read_text()
    section = md.split("## Duplicates")[1].split("\n## ")[0]
    assert "| 1 | exact |" in section
    assert "dup_a" in section and "dup_b" in section and DUPLICATE in section


def test_leakage_matrix_has_the_planted_share_and_span(run):
    md = (run / "report.md").read_text()
    section = md.split("## Leakage matrix")[1].split("\n## ")[0]
    assert "| train x test | 9.1% (1/11) |" in section
    assert "| train x dev | 0.0% (0/10) |" in section
    assert LEAK in section
    doc = (run / "report.html").read_text()
    assert 'style="background:rgb(255,' in doc


def test_augmentation_counts_synthetic_rows_per_class_and_generated_drops(run):
    corpus = pl.read_parquet(run / "corpus.parquet")
    dropped = pl.read_parquet(run / "dropped.parquet")
    md = (run / "report.md").read_text()
    section = md.split("## Augmentation")[1]
    for label in ("neg", "pos"):
        rows = corpus.filter(pl.col("label") == label)
        real = rows.filter(pl.col("origin") == "source").height
        synthetic = rows.height - real
        assert f"| {label} | {real} | {synthetic} |" in section
    over = dropped.filter(pl.col("generated") & (pl.col("reason") == "over_budget")).height
    assert over > 0 and f"| eda | over_budget | {over} |" in section
    assert "| id | parent | child |" in section and "~2." in section


def test_rebuilding_from_the_run_directory_gives_the_same_report(run, tmp_path):
    before = (run / "report.md").read_text(), (run / "report.html").read_text()
    (run / "report.md").unlink()
    paths = rebuild_report(run)
    assert [p.name for p in paths] == ["report.html", "report.md"]
    assert ((run / "report.md").read_text(), (run / "report.html").read_text()) == before


def test_rebuild_rejects_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(InputError, match="has neither"):
        rebuild_report(tmp_path)
    with pytest.raises(InputError, match="is not a folder"):
        rebuild_report(tmp_path / "missing")
    (tmp_path / "manifest.json").write_text("{}")
    with pytest.raises(InputError, match=r"no corpus\.parquet"):
        rebuild_report(tmp_path)


# -- sections from hand-made run directories --------------------------------------------------


def _step(index: int, name: str, kind: str, summary: dict, **counts) -> dict:
    base = {"n_in": 3, "n_out": 3, "n_dropped": 0, "n_added": 0, "n_modified": 0,
            "n_rejected": 0, "seconds": 0.1, "cached": False, "examples": [],
            "drop_reasons": {}, "params": {}, "seed": 1}  # fmt: skip
    return {**base, **counts, "index": index, "step": name, "kind": kind, "summary": summary}


def _corpus() -> pl.DataFrame:
    return pl.DataFrame(
        {"id": ["a", "b", "c"], "text": ["first text", "second text", "third text"],
         "label": ["x", "y", "x"], "split": ["train"] * 3, "origin": ["source"] * 3}
    )  # fmt: skip


def test_label_issues_count_flagged_relabelled_and_dropped(tmp_path):
    pl.DataFrame(
        {"id": ["a", "b"], "step": ["label_noise", "label_noise"], "field": ["label", "label"],
         "before": ["y", "x"], "after": ["x", "y"]}
    ).write_parquet(tmp_path / "lineage.parquet")  # fmt: skip
    summary = {"n_flagged": 3, "n_scored": 3, "action": "relabel", "ranker": "oof_loss",
               "top_flagged": [{"id": "c", "given": "x", "suggested": "y", "score": 0.1}]}  # fmt: skip
    run = RunArtifacts(
        tmp_path, {"steps": [_step(0, "label_noise", "edit", summary, n_dropped=1)]}, _corpus()
    )
    (section,) = [s for s in build_sections(run) if s.title == "Label issues"]
    md = section.markdown()
    assert "| 3 | 2 | 1 | 3 |" in md
    assert "| c | x | y | 0.1 | third text |" in md
    assert "<td>c</td>" in section.html()


def test_label_issues_show_the_evidence_the_gate_and_the_score_chart(tmp_path):
    summary = {
        "n_flagged": 2, "n_scored": 3, "action": "drop", "ranker": "oof_loss",
        "oof_accuracy": {"estimate": 0.667, "low": 0.333, "high": 1.0},
        "oof_macro_f1": {"estimate": 0.5, "low": 0.2, "high": 1.0},
        "estimated_errors": {"estimate": 1.0, "low": 0.0, "high": 2.0},
        "estimated_error_rate": {"estimate": 0.3333, "low": 0.0, "high": 0.6667},
        "gate": {"decision": "refused", "n_flagged": 2, "n_acted": 0, "min_oof_accuracy": 0.75,
                 "oof_accuracy_low": 0.333, "estimated_errors_high": 2.0},
        "score_histogram": {"edges": [0.0, 0.5, 1.0], "flagged": [2, 0], "kept": [0, 1],
                            "score_at_errors": {"estimate": 0.1, "low": None, "high": 0.2}},
        "top_flagged": [],
    }  # fmt: skip
    run = RunArtifacts(tmp_path, {"steps": [_step(0, "label_noise", "edit", summary)]}, _corpus())
    (section,) = [s for s in build_sections(run) if s.title == "Label issues"]
    md, doc = section.markdown(), section.html()
    assert (
        "| 0.667 (0.333-1.000) | 0.500 (0.200-1.000) | 1 (0-2) | 33.3% (0.0-66.7) | 2 | 0 |" in md
    )
    assert "refused: the out-of-fold model's accuracy CI lies under min_oof_accuracy" in md
    assert "estimated errors, 95% CI" in doc and doc.count('fill="#E45756"') >= 2


@pytest.fixture
def audit_run(tmp_path):
    (tmp_path / "findings").mkdir()
    pl.DataFrame({"id": ["a", "b"], "flag": ["short", "odd"]}).write_parquet(
        tmp_path / "findings" / "00_fancy.parquet"
    )
    steps = [_step(0, "fancy", "audit", {"n_flagged": 2, "by_kind": {"short": 1}})]
    return RunArtifacts(tmp_path, {"steps": steps}, _corpus())


def test_an_audit_without_a_renderer_gets_the_generic_findings_section(audit_run, monkeypatch):
    monkeypatch.setitem(report_audits.STEP_RENDERERS, "fancy", ("Fancy", "assay.audits.no_such"))
    (section,) = [s for s in build_sections(audit_run) if s.title.startswith("Fancy")]
    md = section.markdown()
    assert section.title == "Fancy (step 0)"
    assert "| n_flagged | 2 |" in md and '{"short": 1}' in md
    assert "2 findings; the first 2:" in md and "| b | odd |" in md


def test_an_audit_step_is_rendered_by_its_module_when_it_has_a_renderer(audit_run, monkeypatch):
    module = types.ModuleType("assay.audits.fancy_renderer")
    seen = []

    def render_html(findings, summary):
        seen.append((findings.height, summary["n_flagged"]))
        return "<p>fancy html</p>"

    module.render_html = render_html
    module.render_markdown = lambda findings, summary: f"fancy md {findings.height}"
    monkeypatch.setitem(sys.modules, "assay.audits.fancy_renderer", module)
    monkeypatch.setitem(
        report_audits.STEP_RENDERERS, "fancy", ("Fancy", "assay.audits.fancy_renderer")
    )
    (section,) = [s for s in build_sections(audit_run) if s.title.startswith("Fancy")]
    assert section.html().endswith("<p>fancy html</p></section>")
    assert section.markdown() == "## Fancy (step 0)\n\nfancy md 2"
    assert seen == [(2, 2)]


def test_a_renderer_module_without_markdown_falls_back_to_the_generic_markdown(
    audit_run, monkeypatch
):
    module = types.ModuleType("assay.audits.half_renderer")
    module.render_html = lambda findings, summary: "<p>half</p>"
    monkeypatch.setitem(sys.modules, "assay.audits.half_renderer", module)
    monkeypatch.setitem(
        report_audits.STEP_RENDERERS, "fancy", ("Fancy", "assay.audits.half_renderer")
    )
    (section,) = [s for s in build_sections(audit_run) if s.title.startswith("Fancy")]
    assert "<p>half</p>" in section.html() and "| b | odd |" in section.markdown()


def test_quality_and_model_audit_steps_always_get_a_section(tmp_path):
    steps = [_step(0, "quality", "audit", {"n": 1}), _step(1, "model_audit", "audit", {"m": 2})]
    titles = [s.title for s in build_sections(RunArtifacts(tmp_path, {"steps": steps}, _corpus()))]
    assert "Quality (step 0)" in titles and "Slices and errors (step 1)" in titles


# -- ablation ---------------------------------------------------------------------------------


def _ablation(tmp_path):
    from assay.audits.ablation_report import write_ablation_report
    from assay.train.compare import ArmRuns, arms_table, compare_arms

    rng = np.random.default_rng(0)
    n, seeds = 600, 3
    y = rng.integers(0, 2, n)

    def arm(acc: float) -> list[np.ndarray]:
        return [np.where(rng.random(n) < acc, y, 1 - y) for _ in range(seeds)]

    runs = [{"train_rows": 100, "steps": None, "seconds_total": 1.0, "metrics": {}}] * seeds
    rows, _ = compare_arms(
        [ArmRuns("baseline", "baseline", arm(0.7), runs), ArmRuns("+eda", "variant", arm(0.85), runs)],
        y, 2, metric="macro_f1", eval_split="test", rng=rng, n_resamples=100,
        n_permutations=100, alpha=0.05,
    )  # fmt: skip
    report = {
        "name": "toy", "model": "fast", "metric": "macro_f1", "eval_split": "test",
        "eval_rows": n, "seeds": [0, 1, 2], "confidence": 0.95, "arms": rows,
        "warnings": ["a planted warning"], "statistics": {"note": ""},
    }  # fmt: skip
    write_ablation_report(tmp_path, report, arms_table(rows))


def test_an_ablation_folder_gets_the_forest_plot_and_table(tmp_path):
    _ablation(tmp_path)
    html_path, md_path = rebuild_report(tmp_path)
    doc, md = html_path.read_text(), md_path.read_text()
    assert _h2(doc) == ["Ablation"] and "<h3>Ablation</h3>" not in doc
    assert 'aria-label="macro_f1 on test' in doc and "<h3>Warnings</h3>" in doc
    assert "| +eda | variant |" in md and "- a planted warning" in md
    assert md.startswith("# toy: ablation")


def test_multilabel_clusters_show_their_labels_joined(tmp_path):
    corpus = pl.DataFrame(
        {"id": ["a", "b"], "text": ["same", "same"], "label": [["x", "y"], ["x"]],
         "split": ["train", "train"], "origin": ["source", "source"],
         "dedup__cluster": ["a", "a"], "dedup__cluster_size": [2, 2]}
    )  # fmt: skip
    steps = [_step(0, "dedup", "filter", {"method": "exact", "clusters": 1})]
    sections = build_sections(RunArtifacts(tmp_path, {"steps": steps}, corpus))
    (dup,) = [s for s in sections if s.title == "Duplicates"]
    assert "| a | a | train | x, y | True | same |" in dup.markdown()
    balance = next(s for s in sections if s.title == "Class balance").markdown()
    assert "| x | 2 |" in balance and "| y | 1 |" in balance
