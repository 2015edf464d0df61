from __future__ import annotations

import polars as pl
import pytest

from assay import RunContext
from assay.corpus import from_records
from assay.curate.dedup import DedupFilter
from assay.errors import InputError
from assay.step import check_accounting

BASE = [
    "the quick brown fox jumps over the lazy dog near the river bank today",
    "stock markets rallied after the central bank held interest rates steady",
    "a new species of frog was discovered in the rainforest of borneo",
    "the museum will reopen next month after a long renovation of its halls",
    "researchers trained a small model to translate old letters into english",
    "heavy snow closed the mountain pass and stranded dozens of travellers",
]


def corpus(texts, labels=None, splits=None):
    n = len(texts)
    return from_records(
        texts,
        labels or ["pos"] * n,
        split=splits or ["train"] * n,
        ids=[f"r{i}" for i in range(n)],
    )


def apply(frame, **params):
    step = DedupFilter(**params)
    result = step.apply(frame, RunContext().for_step(0, "dedup"))
    check_accounting(frame, result)
    return result


def ids(frame: pl.DataFrame) -> list[str]:
    return sorted(frame["id"].to_list())


def test_exact_finds_planted_duplicates_under_normalisation():
    texts = [*BASE[:3], "The QUICK brown fox   jumps over the lazy dog, near the river bank today!"]
    texts.append("Stock markets rallied after the central bank held interest rates steady.")
    result = apply(corpus(texts), method="exact")
    assert ids(result.corpus) == ["r0", "r1", "r2"]
    dropped = result.dropped.sort("id")
    assert dropped["id"].to_list() == ["r3", "r4"]
    assert dropped["reason"].to_list() == ["exact_duplicate", "exact_duplicate"]
    assert dropped["dedup__representative"].to_list() == ["r0", "r1"]
    assert dropped["dedup__cluster"].to_list() == ["r0", "r1"]
    kept = result.corpus.sort("id")
    assert kept["dedup__cluster_size"].to_list() == [2, 2, 1]
    assert result.report.drop_reasons == {"exact_duplicate": 2}


def test_exact_normalisation_is_configurable():
    texts = [BASE[0], BASE[0].upper()]
    strict = {"lowercase": False, "punctuation": False, "whitespace": False, "unicode": False}
    assert apply(corpus(texts), method="exact", normalization=strict).corpus.height == 2
    assert apply(corpus(texts), method="exact").corpus.height == 1


def test_unicode_normalisation_folds_compatibility_forms():
    texts = ["ｃａｆé au lait", "café au lait"]
    assert apply(corpus(texts), method="exact").corpus.height == 1
    no_unicode = {"unicode": False}
    assert apply(corpus(texts), method="exact", normalization=no_unicode).corpus.height == 2


def test_same_label_only_keeps_duplicates_with_other_labels():
    texts = [BASE[0], BASE[0], BASE[0]]
    result = apply(
        corpus(texts, labels=["pos", "neg", "pos"]), method="exact", same_label_only=True
    )
    assert ids(result.corpus) == ["r0", "r1"]
    assert result.dropped["id"].to_list() == ["r2"]


@pytest.mark.parametrize(
    ("rule", "kept", "reasons"),
    [
        (
            "drop_all",
            ["r3"],
            {"r0": "label_conflict", "r1": "label_conflict", "r2": "label_conflict"},
        ),
        (
            "keep_majority",
            ["r1", "r3"],
            {"r0": "label_conflict_minority", "r2": "exact_duplicate"},
        ),
        ("flag", ["r0", "r3"], {"r1": "exact_duplicate", "r2": "exact_duplicate"}),
    ],
)
def test_label_conflicts_follow_the_rule_and_are_reported(rule, kept, reasons):
    frame = corpus([BASE[0], BASE[0], BASE[0], BASE[1]], labels=["neg", "pos", "pos", "pos"])
    result = apply(frame, method="exact", conflicts=rule)
    assert ids(result.corpus) == kept
    got = dict(zip(result.dropped["id"].to_list(), result.dropped["reason"].to_list(), strict=True))
    assert got == reasons
    assert result.report.summary["label_conflict_clusters"] == 1
    conflicts = result.findings.filter(pl.col("finding") == "label_conflict")
    assert sorted(conflicts["id"].to_list()) == ["r0", "r1", "r2"]
    if rule == "flag":
        assert result.corpus.filter(pl.col("id") == "r0")["dedup__label_conflict"].item()


def test_majority_tie_drops_the_whole_conflict():
    frame = corpus([BASE[0], BASE[0], BASE[1]], labels=["neg", "pos", "pos"])
    result = apply(frame, method="exact")
    assert ids(result.corpus) == ["r2"]
    assert set(result.dropped["reason"].to_list()) == {"label_conflict_tie"}


def test_cross_split_pair_keeps_the_eval_copy_and_is_counted():
    frame = corpus(
        [BASE[0], BASE[1], BASE[0], BASE[2], BASE[1]],
        splits=["train", "train", "test", "train", "dev"],
    )
    result = apply(frame, method="exact")
    assert ids(result.corpus) == ["r2", "r3", "r4"]
    dropped = result.dropped.sort("id")
    assert dropped["reason"].to_list() == ["duplicate_of_eval", "duplicate_of_eval"]
    assert dropped["dedup__representative"].to_list() == ["r2", "r4"]
    summary = result.report.summary
    assert summary["cross_split_pairs"] == 2
    assert summary["cross_split_by_splits"] == {"test-train": 1, "dev-train": 1}
    cross = result.findings.filter(pl.col("finding") == "cross_split")
    assert sorted(cross["id"].to_list()) == ["r0", "r1", "r2", "r4"]


def test_within_split_mode_never_drops_across_splits():
    frame = corpus([BASE[0], BASE[0], BASE[0]], splits=["train", "test", "train"])
    result = apply(frame, method="exact", splits="within_split")
    assert ids(result.corpus) == ["r0", "r1"]
    assert result.report.summary["cross_split_pairs"] == 2


def test_ignore_splits_keeps_the_first_row_anywhere():
    frame = corpus([BASE[0], BASE[0]], splits=["train", "test"])
    result = apply(frame, method="exact", splits="ignore")
    assert ids(result.corpus) == ["r0"]


def test_keep_rules_choose_the_representative():
    texts = ["short text here", "Short text here!!!", "SHORT   text here"]
    frame = corpus(texts, labels=["a", "b", "b"])
    longest = apply(frame, method="exact", keep="longest", conflicts="flag")
    assert ids(longest.corpus) == ["r1"]
    frequent = apply(frame, method="exact", keep="most_frequent_label", conflicts="flag")
    assert ids(frequent.corpus) == ["r1"]
    first = apply(frame, method="exact", keep="first", conflicts="flag")
    assert ids(first.corpus) == ["r0"]


def test_keep_all_flags_instead_of_dropping():
    frame = corpus([BASE[0], BASE[0], BASE[1]])
    result = apply(frame, method="exact", keep="keep_all")
    assert result.corpus.height == 3
    flags = dict(zip(result.corpus["id"], result.corpus["dedup__is_duplicate"], strict=True))
    assert flags == {"r0": False, "r1": True, "r2": False}


def test_minhash_finds_planted_near_duplicates():
    near = [
        BASE[0].replace("lazy", "sleepy"),  # 1 word substituted
        BASE[2].replace("new ", "") + " island",  # 1 deleted, 1 added
        BASE[4].replace("into", "into plain"),  # 1 inserted
    ]
    frame = corpus([*BASE, *near])
    result = apply(frame, method="minhash")
    assert ids(result.dropped) == ["r6", "r7", "r8"]
    reps = dict(zip(result.dropped["id"], result.dropped["dedup__representative"], strict=True))
    assert reps == {"r6": "r0", "r7": "r2", "r8": "r4"}
    assert set(result.dropped["reason"].to_list()) == {"minhash_duplicate"}


def test_minhash_char_shingles_catch_typos():
    frame = corpus([BASE[1], BASE[1].replace("rallied", "ralied").replace("steady", "stedy")])
    result = apply(frame, method="minhash", unit="char", ngram=4, threshold=0.6)
    assert ids(result.corpus) == ["r0"]


def test_minhash_is_deterministic():
    texts = [*BASE, *(t.replace("the", "a", 1) for t in BASE)]
    frame = corpus(texts)
    runs = [apply(frame, method="minhash", threshold=0.6).corpus for _ in range(2)]
    assert runs[0].equals(runs[1])


def test_config_rejects_unknown_keys_and_half_banding():
    with pytest.raises(ValueError, match="treshold"):
        DedupFilter(method="minhash", treshold=0.5)
    with pytest.raises(ValueError, match="bands and rows"):
        DedupFilter(method="minhash", bands=4)
    with pytest.raises(InputError):
        from assay.curate.dedup_minhash import MinHashParams

        MinHashParams(bands=10, rows=10, num_perm=64)


def test_empty_and_punctuation_only_texts_are_not_near_duplicates():
    # Punctuation-only texts have no words, so no shingles: nothing to match on. The planted
    # near duplicate (r4 of r2) shows the step did run.
    frame = corpus(["!!!", "???", BASE[0], "?!", BASE[0].replace("today", "this morning")])
    result = apply(frame, method="minhash")
    kept = result.corpus.sort("id")
    assert kept["id"].to_list() == ["r0", "r1", "r2", "r3"]
    assert kept["dedup__cluster_size"].to_list() == [1, 1, 2, 1]
    dropped = result.dropped.select("id", "step", "reason", "dedup__representative")
    assert dropped.rows() == [("r4", "dedup", "minhash_duplicate", "r2")]
    assert result.report.drop_reasons == {"minhash_duplicate": 1}
    assert result.report.summary["clusters"] == 1


def test_dedup_parquet_streams_partitions_and_matches_in_memory(tmp_path):
    from assay.curate.dedup_exact import dedup_parquet

    texts = [BASE[i % 4] + ("!" if i % 3 else "") for i in range(40)] + BASE[4:]
    frame = corpus(texts)
    src = tmp_path / "in.parquet"
    frame.write_parquet(src)
    result = dedup_parquet(
        src, tmp_path / "kept.parquet", tmp_path / "dropped.parquet", batch_rows=7, partition_rows=9
    )
    assert result.partitions == 5
    kept = pl.read_parquet(tmp_path / "kept.parquet")
    dropped = pl.read_parquet(tmp_path / "dropped.parquet")
    assert kept["id"].to_list() == ["r0", "r1", "r2", "r3", "r40", "r41"]
    assert kept["dedup__cluster_size"].to_list() == [10, 10, 10, 10, 1, 1]
    assert dropped.height == 36 and result.dropped == 36
    reps = dict(zip(dropped["id"], dropped["dedup__cluster"], strict=True))
    assert reps["r4"] == "r0" and reps["r39"] == "r3"
    in_memory = apply(frame, method="exact", splits="ignore")
    assert ids(in_memory.corpus) == sorted(kept["id"].to_list())


@pytest.mark.parametrize("method", ["exact", "minhash"])
def test_empty_corpus_passes_through(method):
    frame = corpus(["x"]).head(0)
    result = apply(frame, method=method)
    assert result.corpus.height == 0
    assert result.report.summary["duplicates"] == 0


def test_step_is_registered_through_the_catalog():
    from assay import registry
    from assay.recipes.catalog import load_steps

    load_steps()
    assert registry.get("dedup") is DedupFilter
    assert registry.describe("dedup")["kind"] == "filter"


def test_importing_dedup_loads_no_heavy_library():
    import subprocess
    import sys

    heavy = ("torch", "transformers", "ray", "numba", "sentence_transformers")
    code = (
        "import sys, assay.curate.dedup, assay.engine; "
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_each_method_takes_only_its_own_keys():
    from assay.curate.dedup import ExactDedupConfig, MinHashDedupConfig, SemanticDedupConfig

    assert isinstance(DedupFilter().config, ExactDedupConfig)
    assert isinstance(DedupFilter(method="minhash").config, MinHashDedupConfig)
    assert isinstance(DedupFilter(method="semantic").config, SemanticDedupConfig)
    with pytest.raises(ValueError, match="num_perm"):
        DedupFilter(method="exact", num_perm=128)
    with pytest.raises(ValueError, match="normalization"):
        DedupFilter(method="minhash", normalization={})
    assert DedupFilter(method="minhash").config.similarity == 0.5
    assert DedupFilter(method="semantic").config.similarity == 0.9


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"method": "exact", "num_perm": 128},
            "steps[0].dedup.num_perm: unknown key 'num_perm' for method: exact; "
            "it is a key of method: minhash",
        ),
        ({"num_perm": 128}, "unknown key 'num_perm' for method: exact"),
        (
            {"method": "minhash", "num_prem": 128},
            "steps[0].dedup.num_prem: unknown key 'num_prem' (did you mean 'num_perm'?)",
        ),
        ({"method": "minhahs"}, "(got 'minhahs') (did you mean 'minhash'?)"),
        ({"method": "semantic", "bands": 4}, "it is a key of method: minhash"),
    ],
)
def test_a_key_of_another_method_is_one_clean_recipe_error(tmp_path, params, message):
    import yaml

    from assay.errors import RecipeError
    from assay.recipes.schema import load_recipe

    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({"input": {"source": "x.csv"}, "steps": [{"dedup": params}]}))
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    text = str(err.value)
    assert message in text
    assert "\n" not in text and "validation error" not in text


def test_assay_validate_names_the_misplaced_key(tmp_path):
    from click.testing import CliRunner

    from assay.recipes.cli import main

    path = tmp_path / "recipe.yaml"
    path.write_text("input: {source: x.csv}\nsteps:\n  - dedup: {method: exact, num_perm: 128}\n")
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code != 0
    assert "recipe.yaml:3: steps[0].dedup.num_perm: unknown key 'num_perm'" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_dedup_schema_is_the_union_of_the_methods():
    jsonschema = pytest.importorskip("jsonschema")

    from assay import registry
    from assay.recipes.catalog import load_steps

    load_steps()
    schema = registry.describe("dedup")["config_schema"]
    assert {"num_perm", "normalization", "neighbours", "keep"} <= set(schema["properties"])
    assert "[method: minhash]" in schema["properties"]["num_perm"]["description"]
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({}) and validator.is_valid({"method": "minhash", "num_perm": 128})
    assert not validator.is_valid({"method": "exact", "num_perm": 128})
    assert not validator.is_valid({"threshold": 0.5})


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"conflicts": "drop_all", "splits": "within_split"},
        {"conflicts": "flag", "keep": "longest", "splits": "ignore"},
        {"keep": "most_frequent_label"},
    ],
)
def test_cluster_decisions_on_hash_partitions_are_the_local_ones(actors_engine, params):
    import numpy as np

    from assay.curate.dedup import DedupConfig, resolve

    rng = np.random.default_rng(4)
    n = 400
    texts = [BASE[i] + "!" * int(rng.integers(0, 3)) for i in rng.integers(0, len(BASE), n)]
    frame = corpus(
        texts,
        labels=rng.choice(["neg", "pos"], n, p=[0.2, 0.8]).tolist(),
        splits=rng.choice(["train", "dev", "test"], n, p=[0.7, 0.1, 0.2]).tolist(),
    )
    clusters = rng.integers(0, 60, n) * 5  # 60 clusters; ids are row positions below n
    cfg = DedupConfig.model_validate({"method": "exact", **params})
    local = resolve(frame, clusters, cfg)
    partitioned = resolve(frame, clusters, cfg, actors_engine)
    assert actors_engine.shuffles == ["cluster"]
    assert partitioned.equals(local)
    assert local["duplicate"].sum() > 0
