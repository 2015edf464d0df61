from __future__ import annotations

import json

import polars as pl
import pytest

from assay import from_records
from assay.audits.model_audit import (
    ModelAudit,
    ModelAuditConfig,
    audit_model,
    render_html,
    render_markdown,
)
from assay.context import RunContext
from assay.errors import InputError, RecipeError
from assay.recipes.runner import run_steps
from assay.recipes.schema import parse_step

pytest.importorskip("sklearn")

FILLERS = [
    f"{a} {b} the {c}"
    for a in ("went", "walked", "drove", "ran", "looked")
    for b in ("to", "past", "near", "by")
    for c in ("station", "market", "river", "school", "office")
]


def biased_corpus() -> pl.DataFrame:
    """The label follows the pronoun only (he -> pos, she -> neg), a planted bias. In test,
    the `web` rows carry the opposite label, so the model gets every one of them wrong."""
    texts, labels, splits, sources, ids = [], [], [], [], []
    for i, filler in enumerate(FILLERS):  # 100 fillers: 200 train rows
        for pron, label in (("he", "pos"), ("she", "neg")):
            texts.append(f"{pron} {filler} on day {i}")
            labels.append(label)
            splits.append("train")
            sources.append("news")
            ids.append(f"tr-{pron}-{i}")
    for i, filler in enumerate(FILLERS[:30]):
        for pron, label in (("he", "pos"), ("she", "neg")):
            web = i < 10
            texts.append(f"{pron} {filler} at noon {i}")
            labels.append(("neg" if label == "pos" else "pos") if web else label)
            splits.append("test")
            sources.append("web" if web else "news")
            ids.append(f"te-{pron}-{i}")
    return from_records(texts, labels, ids=ids, split=splits, source=sources)


CFG = ModelAuditConfig(min_size=10, n_resamples=200)


@pytest.fixture(scope="module")
def audited():
    return audit_model(biased_corpus(), CFG, RunContext(seed=3).for_step(0, "model_audit"))


def test_planted_pronoun_bias_flips_on_he_she_only(audited):
    _, summary, _ = audited
    pairs = {p["pair"]: p for p in summary["counterfactual"]["pairs"]}
    assert pairs["he/she"]["texts"] == 60
    assert pairs["he/she"]["flip_rate"] > 0.9
    assert summary["counterfactual"]["pairs_with_texts"] == 1


def test_slices_flag_the_planted_hard_slice(audited):
    _, summary, predictions = audited
    assert predictions.height == 60
    flagged = summary["slices"]["flagged"]
    assert flagged == [{"slice": "source", "value": "web"}]
    worst = summary["slices"]["worst"][0]
    assert (worst["slice"], worst["value"], worst["n"], worst["accuracy"]) == (
        "source",
        "web",
        20,
        0.0,
    )
    assert summary["metrics"]["accuracy"]["estimate"] == pytest.approx(40 / 60)


def test_errors_name_the_pronoun_and_the_web_rows(audited):
    findings, summary, _ = audited
    mistakes = findings.filter(pl.col("section") == "mistake")
    assert mistakes.height == 20
    assert set(mistakes["id"].to_list()) == {
        f"te-{p}-{i}" for p in ("he", "she") for i in range(10)
    }
    features = {f["class"]: f["feature"] for f in reversed(summary["errors"]["features"])}
    assert features == {"pos": "he", "neg": "she"}  # the first listed per class
    assert findings.filter(pl.col("section") == "counterfactual_flip").height > 0
    json.dumps(summary)  # JSON-ready


def test_scoring_in_batches_on_an_engine_gives_the_same_audit(audited, actors_engine):
    plain = actors_engine.map_batches

    def in_batches_of_7(table, fn, **kw):
        assert isinstance(fn, type)  # an actor pool: the fitted model ships once per actor
        return plain(table, fn, **{**kw, "batch_size": 7})

    actors_engine.map_batches = in_batches_of_7
    ctx = RunContext(seed=3, engine=actors_engine).for_step(0, "model_audit")
    findings, summary, predictions = audit_model(biased_corpus(), CFG, ctx)
    # the 60 test rows; each of them with its pronoun swapped is another test row, already
    # scored, so the counterfactuals send nothing more
    assert actors_engine.batches == [7] * 8 + [4]
    assert findings.equals(audited[0])
    assert summary == audited[1]
    assert predictions.equals(audited[2])
    pairs = {p["pair"]: p for p in summary["counterfactual"]["pairs"]}
    assert pairs["he/she"]["texts"] == 60 and pairs["he/she"]["flip_rate"] > 0.9


def test_step_is_deterministic_and_marks_only_the_audited_split():
    step = ModelAudit(min_size=10, n_resamples=200, counterfactual=False)
    first = run_steps(biased_corpus(), [step], RunContext(seed=5))
    second = run_steps(biased_corpus(), [step], RunContext(seed=5))
    assert first.corpus.equals(second.corpus)
    assert first.findings["00_model_audit"].equals(second.findings["00_model_audit"])
    out = first.corpus
    marked = out.filter(pl.col("model_audit__pred").is_not_null())
    assert set(marked["split"].to_list()) == {"test"}
    assert marked.height == 60
    assert marked["model_audit__correct"].sum() == 40


def test_renderers(audited):
    findings, summary, _ = audited
    fragment = render_html(findings, summary)
    assert "Worst slices" in fragment and "<svg" in fragment and "he/she" in fragment
    assert "https://" not in fragment
    markdown = render_markdown(findings, summary)
    assert "#### Counterfactual flips" in markdown and "| he/she |" in markdown


def test_a_test_label_the_model_never_saw_is_scored_as_a_mistake():
    corpus = biased_corpus()
    extra = from_records(
        ["he walked by the river", "she ran past the school"],
        ["neu", "neu"],
        ids=["te-neu-0", "te-neu-1"],
        split="test",
        source="news",
    )
    cfg = ModelAuditConfig(min_size=10, n_resamples=200, top_k=50)
    findings, summary, _ = audit_model(pl.concat([corpus, extra]), cfg)
    assert summary["classes"] == ["neg", "neu", "pos"]
    mistakes = findings.filter(pl.col("section") == "mistake")
    assert {"te-neu-0", "te-neu-1"} <= set(mistakes["id"].to_list())
    unseen = mistakes.filter(pl.col("label") == "neu")
    assert unseen["score"].min() > 0.5  # the confidence of the wrong class
    confusion = {(r["label"], r["pred"]): r["n"] for r in summary["errors"]["confusion"]}
    assert confusion[("neu", "pos")] == 1 and confusion[("neu", "neg")] == 1


def test_user_terms_and_bad_input(tmp_path):
    terms = tmp_path / "terms.txt"
    terms.write_text("station market\n", encoding="utf-8")
    step = ModelAudit(terms=str(terms))
    assert "terms_sha" in step.params
    with pytest.raises(RecipeError, match="spit"):
        parse_step({"model_audit": {"spit": "test"}}, "steps[0]")
    no_test = biased_corpus().filter(pl.col("split") == "train")
    with pytest.raises(InputError, match="no labelled test rows"):
        audit_model(no_test, CFG)


def test_cli_prints_json_and_tables(tmp_path):
    from click.testing import CliRunner

    from assay.recipes.cli import main

    path = tmp_path / "corpus.parquet"
    biased_corpus().write_parquet(path)
    terms = tmp_path / "terms.json"
    terms.write_text('{"he": "she"}', encoding="utf-8")
    runner = CliRunner()
    args = ["audit", "model", str(path), "--min-size", "10", "--terms", str(terms)]
    result = runner.invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert [p["pair"] for p in summary["counterfactual"]["pairs"]] == ["he/she"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "Worst slices" in result.output


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory):
    """A tiny randomly initialised BERT whose word-level vocabulary covers the corpus."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from assay.testing import tiny_bert

    words = sorted({w for t in biased_corpus()["text"].to_list() for w in t.split()})
    return tiny_bert(tmp_path_factory.mktemp("tiny-bert"), words)


@pytest.mark.slow
def test_encoder_audit_explains_sampled_mistakes_by_occlusion(tiny_encoder):
    cfg = ModelAuditConfig(
        model=str(tiny_encoder),
        model_options={"epochs": 2, "learning_rate": 3e-3, "warmup_ratio": 0.0, "threads": 1},
        min_size=10,
        n_resamples=200,
        counterfactual=False,
        occlusion_sample=5,
    )
    findings, summary, predictions = audit_model(
        biased_corpus(), cfg, RunContext(seed=1).for_step(0, "model_audit")
    )
    assert "features" not in summary["errors"]
    texts = dict(zip(predictions["id"].to_list(), predictions["text"].to_list(), strict=True))
    occluded = findings.filter(pl.col("section") == "occlusion")
    explained = occluded["id"].unique().to_list()
    assert 1 <= len(explained) <= 5
    for i in explained:  # one row per word of each explained text
        rows = occluded.filter(pl.col("id") == i)
        assert sorted(rows["detail"].to_list()) == sorted(texts[i].split())


@pytest.mark.slow
def test_probe_audit_explains_mistakes_by_occlusion(tiny_encoder):
    pytest.importorskip("sentence_transformers")
    cfg = ModelAuditConfig(
        model="probe",
        model_options={"encoder": str(tiny_encoder)},
        min_size=10,
        n_resamples=200,
        counterfactual=False,
        occlusion_sample=3,
    )
    findings, summary, predictions = audit_model(
        biased_corpus(), cfg, RunContext(seed=1).for_step(0, "model_audit")
    )
    assert "features" not in summary["errors"]
    assert predictions.height == 60 and predictions["pred"].is_in(["neg", "pos"]).all()
    assert findings.filter(pl.col("section") == "occlusion").height > 0


def test_an_engine_scorer_sends_each_new_text_once(actors_engine):
    from assay.audits.model_scoring import EngineScorer

    class Lengths:
        classes_ = ("short", "long")

        def predict_proba(self, texts):
            return [[1.0 / (1 + len(t)), 1 - 1.0 / (1 + len(t))] for t in texts]

    scorer = EngineScorer(Lengths(), actors_engine)
    first = scorer.predict_proba(["a", "abc", "a"])
    assert actors_engine.batches == [2]  # "a" once
    again = scorer.predict_proba(["abc", "abcd"])
    assert actors_engine.batches == [2, 1]  # only the new text
    assert first.tolist() == [[0.5, 0.5], [0.25, 0.75], [0.5, 0.5]]
    assert again[0].tolist() == [0.25, 0.75] and again[1].tolist() == [0.2, 0.8]
    assert scorer.classes_ == ("short", "long")
