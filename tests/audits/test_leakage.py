from __future__ import annotations

import json

import polars as pl
import pytest

from assay import from_records
from assay.audits.leakage import (
    LeakageConfig,
    LeakageEdit,
    find_leaks,
    read_split_files,
    summarize,
)
from assay.context import RunContext
from assay.errors import RecipeError
from assay.recipes.runner import run_steps
from assay.recipes.schema import parse_step

SHARED = (
    "the committee finally agreed that the river crossing would be rebuilt before the "
    "winter floods arrived"
)
LONG_TRAIN = (
    "after the long meeting in the town hall the mayor said "
    + SHARED
    + " and thanked everyone present"
)
LONG_TEST = (
    "local radio reported on monday morning with some surprise that "
    + SHARED
    + " although nobody could say who pays"
)

# (id, text, label, split, parent_id, group)
ROWS = [
    ("tr_exact", "an exact copy of a review", "pos", "train", None, None),
    ("te_exact", "an exact copy of a review", "pos", "test", None, None),
    ("tr_norm", "Hello, World! Nice day.", "pos", "train", None, None),
    ("te_norm", "hello world nice day", "pos", "test", None, None),
    (
        "tr_near",
        "the film was a total delight from start to finish for me",
        "pos",
        "train",
        None,
        None,
    ),
    (
        "te_near",
        "the film was a grand delight from start to finish for me",
        "pos",
        "test",
        None,
        None,
    ),
    ("tr_long", LONG_TRAIN, "neg", "train", None, None),
    ("te_long", LONG_TEST, "neg", "test", None, None),
    ("te_orig", "original test sentence about pizza", "pos", "test", None, None),
    ("tr_aug", "changed words regarding noodles", "pos", "train", "te_orig", None),
    ("tr_aug2", "yet another variation on soup", "pos", "train", "tr_aug", None),
    ("tr_g", "author one writes this", "neg", "train", None, "a1"),
    ("te_g", "author one also writes that", "neg", "test", None, "a1"),
    ("tr_c", "the plot is thin", "pos", "train", None, None),
    ("te_c", "The plot is thin.", "neg", "test", None, None),
    ("tr_c1", "boring and slow", "pos", "train", None, None),
    ("tr_c2", "boring and slow", "neg", "train", None, None),
    ("dv_dup", "dev row copied into test", "neg", "dev", None, None),
    ("te_dup", "dev row copied into test", "neg", "test", None, None),
    ("tr_clean", "a perfectly ordinary training sentence", "neg", "train", None, None),
    ("dv_clean", "nothing to see in the development set", "pos", "dev", None, None),
    ("te_clean", "an unrelated evaluation example", "pos", "test", None, None),
]

EXPECTED = {
    "exact": {("te_exact", "tr_exact"), ("te_dup", "dv_dup")},
    "normalized": {("te_norm", "tr_norm"), ("te_c", "tr_c")},
    "ngram": {("te_long", "tr_long")},
    "minhash": {
        ("te_exact", "tr_exact"),
        ("te_norm", "tr_norm"),
        ("te_near", "tr_near"),
        ("te_c", "tr_c"),
        ("te_dup", "dv_dup"),
    },
    "lineage": {("te_orig", "tr_aug"), ("te_orig", "tr_aug2")},
    "group": {("te_g", "tr_g")},
    "label_conflict": {("te_c", "tr_c"), ("tr_c2", "tr_c1")},
}


def planted() -> pl.DataFrame:
    ids, texts, labels, splits, parents, groups = map(list, zip(*ROWS, strict=True))
    return from_records(
        texts, labels, ids=ids, split=splits, parent_id=parents, group=groups
    ).with_columns(origin=pl.when(pl.col("parent_id").is_null()).then(pl.lit("source")))


def pairs(findings: pl.DataFrame, method: str) -> set[tuple[str, str]]:
    hits = findings.filter(pl.col("method") == method)
    return set(zip(hits["eval_id"], hits["other_id"], strict=True))


@pytest.mark.parametrize("method", sorted(EXPECTED))
def test_each_planted_leak_is_found_by_exactly_its_methods(method):
    findings = find_leaks(planted(), seed=3)
    assert pairs(findings, method) == EXPECTED[method]


def test_each_method_runs_alone_with_the_same_findings():
    corpus = planted()
    for method, expected in EXPECTED.items():
        findings = find_leaks(corpus, LeakageConfig(methods=[method]), seed=3)
        assert set(findings["method"]) <= {method}
        assert pairs(findings, method) == expected


def test_keyed_methods_on_hash_partitions_find_the_same_leaks(actors_engine):
    corpus = planted()
    cfg = LeakageConfig(methods=["exact", "normalized", "label_conflict", "group", "ngram"])
    local = find_leaks(corpus, cfg, seed=3)
    partitioned = find_leaks(corpus, cfg, seed=3, engine=actors_engine)
    # the four joins by key, and the n-gram join once per split pair and n
    assert actors_engine.shuffles[:4] == ["__key"] * 4 and set(actors_engine.shuffles[4:]) == {"g"}
    assert {"group", "ngram"} <= set(local["method"])
    assert local.height > 0 and partitioned.equals(local)


def test_ngram_span_is_the_shared_words_and_rule_follows_eval_length():
    findings = find_leaks(planted(), seed=3).filter(pl.col("method") == "ngram")
    assert findings["span"].to_list() == [SHARED]
    # the long eval row has >= 26 words, so 13-grams; with 26 raised past its length, 8-grams
    # still find the same span
    short = LeakageConfig(methods=["ngram"], short_below=200)
    again = find_leaks(planted(), short).filter(pl.col("method") == "ngram")
    assert again["span"].to_list() == [SHARED]
    # an n longer than the shared span finds nothing
    none = LeakageConfig(methods=["ngram"], ngram=20, short_ngram=20)
    assert find_leaks(planted(), none).is_empty()


def test_ngram_ignores_eval_rows_shorter_than_n():
    corpus = from_records(
        ["one two three four five", "one two three four five"],
        ["a", "a"],
        ids=["t", "e"],
        split=["train", "test"],
    )
    findings = find_leaks(corpus, LeakageConfig(methods=["ngram"]))
    assert findings.is_empty()


def test_findings_name_the_pair_of_splits_and_orient_eval_last():
    findings = find_leaks(planted(), seed=3)
    row = findings.filter(pl.col("eval_id") == "te_dup", pl.col("method") == "exact").row(
        0, named=True
    )
    assert (row["pair"], row["eval_split"], row["other_split"]) == ("dev x test", "test", "dev")
    conflict = findings.filter(pl.col("eval_id") == "tr_c2").row(0, named=True)
    assert conflict["pair"] == "train x train"
    assert conflict["span"] == "pos -> neg"
    lineage = findings.filter(pl.col("method") == "lineage").sort("other_id")
    assert lineage["score"].to_list() == [1.0, 2.0]  # tr_aug2 is two derivations away


def test_summary_gives_share_of_eval_rows_per_pair_and_method():
    corpus = planted()
    table = summarize(corpus, find_leaks(corpus, seed=3))
    n_test = corpus.filter(pl.col("split") == "test").height
    exact = table.filter(pl.col("pair") == "train x test", pl.col("method") == "exact").row(
        0, named=True
    )
    assert (exact["eval_rows"], exact["affected"]) == (n_test, 1)
    assert exact["share"] == pytest.approx(1 / n_test)
    zero = table.filter(pl.col("pair") == "train x dev", pl.col("method") == "ngram")
    assert zero["affected"].to_list() == [0]
    assert set(table["pair"]) == {"train x dev", "train x test", "dev x test", "train x train"}


def test_report_changes_nothing_and_stores_the_findings():
    corpus = planted()
    out = run_steps(corpus, [LeakageEdit()], RunContext(seed=3))
    assert out.corpus.sort("id").select(corpus.columns).equals(corpus.sort("id"))
    assert out.dropped.is_empty()
    (findings,) = out.findings.values()
    assert pairs(findings, "group") == EXPECTED["group"]
    summary = out.reports[0].summary
    assert summary["n_findings"] == findings.height
    assert {"pair", "method", "eval_rows", "affected", "share"} <= set(summary["by_pair"][0])


def test_drop_from_train_drops_the_train_side_of_each_leak_only():
    corpus = planted()
    out = run_steps(corpus, [LeakageEdit(action="drop_from_train")], RunContext(seed=3))
    dropped = out.dropped.sort("id")
    assert dropped["id"].to_list() == sorted(
        ["tr_exact", "tr_norm", "tr_near", "tr_long", "tr_aug", "tr_aug2", "tr_g", "tr_c"]
    )
    assert set(dropped["reason"]) == {"leaks_eval"}
    # dev/test rows stay, and a conflict inside train is not a leak of dev/test
    assert {"dv_dup", "te_exact", "tr_c1", "tr_c2"} <= set(out.corpus["id"])


def test_drop_from_train_drops_every_train_row_of_a_shared_group():
    corpus = from_records(
        ["alpha beta", "gamma delta", "epsilon zeta"],
        ["a", "a", "a"],
        ids=["t1", "t2", "e1"],
        split=["train", "train", "test"],
        group=["g", "g", "g"],
    )
    out = run_steps(corpus, [LeakageEdit(action="drop_from_train")], RunContext())
    assert sorted(out.dropped["id"]) == ["t1", "t2"]


def test_mark_eval_flags_leaked_dev_and_test_rows_without_changing_them():
    corpus = planted()
    out = run_steps(corpus, [LeakageEdit(action="mark_eval")], RunContext(seed=3))
    assert out.dropped.is_empty()
    marked = out.corpus.sort("id")
    leaked = set(marked.filter(pl.col("leakage__leaked"))["id"])
    assert leaked == {"te_exact", "te_norm", "te_near", "te_long", "te_orig", "te_g", "te_c"} | {
        "te_dup"
    }
    clean = marked.filter(pl.col("id").is_in(["te_clean", "dv_clean", "dv_dup"]))
    assert clean["leakage__leaked"].to_list() == [False, False, False]
    train = marked.filter(pl.col("split") == "train")["leakage__leaked"]
    assert train.null_count() == train.len() == 11
    methods = marked.filter(pl.col("id") == "te_c")["leakage__methods"].item()
    assert methods == "label_conflict,minhash,normalized"


def test_same_input_gives_the_same_output():
    corpus = planted()
    first = run_steps(corpus, [LeakageEdit(action="mark_eval")], RunContext(seed=7))
    second = run_steps(corpus, [LeakageEdit(action="mark_eval")], RunContext(seed=7))
    assert first.corpus.equals(second.corpus)
    (f1,) = first.findings.values()
    (f2,) = second.findings.values()
    assert f1.equals(f2)
    shuffled = corpus.sample(fraction=1.0, shuffle=True, seed=1)
    assert find_leaks(shuffled, seed=3).equals(find_leaks(corpus, seed=3))


def test_bad_configuration_is_one_clear_error():
    with pytest.raises(RecipeError, match="metods"):
        parse_step({"leakage": {"metods": ["exact"]}}, "steps[0]")
    with pytest.raises(RecipeError, match="action"):
        parse_step({"leakage": {"action": "delete_test"}}, "steps[0]")
    with pytest.raises(RecipeError, match="repeat"):
        parse_step({"leakage": {"methods": ["exact", "exact"]}}, "steps[0]")


def test_real_data_exact_leaks_match_the_independent_count(shared_data):
    trec = read_split_files(shared_data / "trec")
    methods = ["exact", "normalized", "label_conflict"]
    findings = find_leaks(trec, LeakageConfig(methods=methods)).filter(
        pl.col("pair") == "train x test"
    )
    exact = findings.filter(pl.col("method") == "exact")
    assert exact["eval_id"].n_unique() == 10
    # the one test question whose train copy has another label differs from it in case only
    conflicts = findings.filter(pl.col("method") == "label_conflict")
    normalized = findings.filter(pl.col("method") == "normalized")
    assert conflicts["eval_id"].to_list() == normalized["eval_id"].to_list()
    assert conflicts.height == 1
    assert not conflicts["eval_id"].is_in(exact["eval_id"]).any()

    sst2 = read_split_files(shared_data / "sst2")
    findings = find_leaks(sst2, LeakageConfig(methods=["exact"]))
    table = summarize(sst2, findings, ["exact"])
    row = table.filter(pl.col("pair") == "train x test").row(0, named=True)
    assert (row["eval_rows"], row["affected"]) == (1821, 2)


def test_cli_prints_the_per_pair_table_and_json(tmp_path):
    from click.testing import CliRunner

    from assay.recipes.cli import main

    path = tmp_path / "corpus.parquet"
    planted().write_parquet(path)
    runner = CliRunner()
    result = runner.invoke(main, ["audit", "leakage", str(path), "--json", "--method", "group"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    test_row = next(r for r in out["summary"] if r["pair"] == "train x test")
    assert (test_row["method"], test_row["affected"]) == ("group", 1)
    findings = tmp_path / "findings.parquet"
    result = runner.invoke(main, ["audit", "leakage", str(tmp_path), "--findings", str(findings)])
    assert result.exit_code == 0, result.output
    assert "label_conflict" in result.output and "train x test" in result.output
    assert pairs(pl.read_parquet(findings), "lineage") == EXPECTED["lineage"]


def test_cli_reads_a_folder_of_split_files_and_fails_in_one_line(tmp_path):
    from click.testing import CliRunner

    from assay.recipes.cli import main

    pl.DataFrame({"text": ["same text here", "only train"], "label": ["a", "b"]}).write_csv(
        tmp_path / "train.csv"
    )
    pl.DataFrame({"text": ["same text here"], "label": ["a"]}).write_csv(tmp_path / "test.csv")
    runner = CliRunner()
    result = runner.invoke(main, ["audit", "leakage", str(tmp_path), "--json", "--method", "exact"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)["summary"]
    assert (row["pair"], row["eval_rows"], row["affected"]) == ("train x test", 1, 1)
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    result = runner.invoke(main, ["audit", "leakage", str(empty_dir)])
    assert result.exit_code == 2  # bad input
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_semantic_runs_only_when_asked_and_finds_paraphrases(monkeypatch):
    import numpy as np

    from assay.curate import dedup_semantic

    corpus = from_records(
        ["cats are lovely pets", "felines make lovely companions", "stock prices fell", "rain"],
        ["a", "a", "b", "b"],
        ids=["t1", "e1", "t2", "e2"],
        split=["train", "test", "train", "test"],
    )
    same_meaning = {"felines make lovely companions": "cats are lovely pets"}

    def fake_embed(texts, model=None, batch_size=64, engine=None):
        keys = sorted({same_meaning.get(t, t) for t in texts})
        vectors = np.zeros((len(texts), len(keys)), dtype=np.float32)
        for i, t in enumerate(texts):
            vectors[i, keys.index(same_meaning.get(t, t))] = 1.0
        return vectors

    monkeypatch.setattr(dedup_semantic, "embed", fake_embed)
    assert "semantic" not in set(find_leaks(corpus)["method"])
    findings = find_leaks(corpus, LeakageConfig(methods=["semantic"]))
    assert pairs(findings, "semantic") == {("e1", "t1")}
    assert findings["score"].to_list() == [pytest.approx(1.0)]


def write_benchmark(tmp_path):
    """A benchmark file: a copy of a train row, a reworded dev row, a long shared span with
    a test row, and a row found nowhere in the corpus."""
    path = tmp_path / "bench.csv"
    pl.DataFrame(
        {
            "text": [
                "a perfectly ordinary training sentence",
                "nothing to see in the development set at all",
                "breaking news on tuesday evening " + SHARED + " said the paper",
                "a benchmark sentence seen nowhere else",
            ],
            "label": ["neg", "pos", "neg", "pos"],
        }
    ).write_csv(path)
    return path


def test_benchmark_contamination_is_reported_per_split_and_dropped_from_train(tmp_path):
    bench = write_benchmark(tmp_path)
    cfg = LeakageConfig(methods=["exact", "ngram", "minhash"], benchmark=str(bench))
    findings = find_leaks(planted(), cfg, seed=3)
    hits = findings.filter(pl.col("eval_split") == "benchmark")
    assert set(zip(hits["pair"], hits["method"], hits["other_id"], strict=True)) == {
        ("train x benchmark", "exact", "tr_clean"),
        ("train x benchmark", "minhash", "tr_clean"),
        ("dev x benchmark", "minhash", "dv_clean"),
        ("train x benchmark", "ngram", "tr_long"),
        ("test x benchmark", "ngram", "te_long"),
    }
    assert all(i.startswith("benchmark/") for i in hits["eval_id"])
    summary = summarize(planted(), findings, cfg.methods, benchmark=4)
    row = summary.filter((pl.col("pair") == "train x benchmark") & (pl.col("method") == "exact"))
    assert row.select("eval_rows", "affected").row(0) == (4, 1)
    # Without a benchmark nothing about it appears.
    plain = find_leaks(planted(), LeakageConfig(methods=["exact"]), seed=3)
    assert "benchmark" not in set(plain["eval_split"])

    out = run_steps(
        planted(),
        [LeakageEdit(methods=["exact", "ngram"], action="drop_from_train", benchmark=str(bench))],
        RunContext(seed=3),
    )
    assert {"tr_clean", "tr_long"} <= set(out.dropped["id"])
    assert {"dv_clean", "te_long"} <= set(out.corpus["id"])


def test_benchmark_file_edits_invalidate_the_cache_and_the_cli_takes_one(tmp_path):
    from click.testing import CliRunner

    from assay.recipes.cli import main

    bench = write_benchmark(tmp_path)
    step = LeakageEdit(benchmark=str(bench))
    before = step.params["benchmark_sha"]
    bench.write_text("text\nsomething else entirely\n")
    assert LeakageEdit(benchmark=str(bench)).params["benchmark_sha"] != before

    bench = write_benchmark(tmp_path)
    path = tmp_path / "corpus.parquet"
    planted().write_parquet(path)
    result = CliRunner().invoke(
        main, ["audit", "leakage", str(path), "--benchmark", str(bench), "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    row = next(
        r for r in out["summary"] if r["pair"] == "train x benchmark" and r["method"] == "exact"
    )
    assert (row["eval_rows"], row["affected"]) == (4, 1)
    missing = CliRunner().invoke(
        main, ["audit", "leakage", str(path), "--benchmark", str(tmp_path / "nope.csv")]
    )
    assert missing.exit_code != 0 and "Traceback" not in missing.output
