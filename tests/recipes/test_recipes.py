from __future__ import annotations

import json

import polars as pl
import pytest
import yaml

from assay.errors import RecipeError
from assay.recipes.runner import run_recipe
from assay.recipes.schema import json_schema, load_recipe


@pytest.fixture
def data_csv(tmp_path):
    rows = ["text,label,author"]
    for i in range(60):
        label = "pos" if i % 3 else "neg"
        rows.append(f"<b>sample text number {i}</b>,{label},a{i // 3}")
    rows.append('"",pos,a99')  # empty text: dropped at load
    rows.append("tiny,neg,a98")  # too short: dropped by clean
    path = tmp_path / "data.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def write_recipe(tmp_path, data_csv, **overrides):
    recipe = {
        "name": "t",
        "seed": 7,
        "input": {"source": str(data_csv), "labels": ["pos", "neg"], "group_column": "author"},
        "steps": [{"clean": {"min_chars": 6}}, {"split": {"dev": 0.2, "test": 0.2}}],
    }
    recipe.update(overrides)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_run_accounts_for_every_input_row(tmp_path, data_csv):
    result = run_recipe(write_recipe(tmp_path, data_csv), tmp_path / "run")
    acc = result.manifest["accounting"]
    assert acc["rows_read"] == 62
    assert acc["rows_out"] + acc["dropped_at_load"] + acc["dropped_by_steps"] == 62
    assert acc["balanced"]
    dropped = pl.read_parquet(tmp_path / "run" / "dropped.parquet")
    assert sorted(zip(dropped["step"], dropped["reason"], strict=True)) == [
        ("clean", "too_short"),
        ("load", "empty_text"),
    ]
    corpus = pl.read_parquet(tmp_path / "run" / "corpus.parquet")
    assert corpus.height == 60 and not corpus["text"].str.contains("<b>").any()
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["seed"] == 7 and manifest["versions"]["polars"]
    assert [s["step"] for s in manifest["steps"]] == ["clean", "split"]
    assert (tmp_path / "run" / "report.html").read_text().count("balanced") >= 1


def test_lineage_records_each_changed_field_with_its_step(tmp_path, data_csv):
    run_recipe(write_recipe(tmp_path, data_csv), tmp_path / "run")
    lineage = pl.read_parquet(tmp_path / "run" / "lineage.parquet")
    assert lineage.columns == ["id", "step", "field", "before", "after"]
    by_step = dict(lineage.group_by("step", "field").len().select("step", "len").iter_rows())
    assert by_step == {"clean": 60, "split": 60}
    text = lineage.filter(pl.col("field") == "text")
    assert text["before"].str.contains("<b>").all() and not text["after"].str.contains("<b>").any()


def test_a_run_without_changes_writes_an_empty_lineage_with_the_field_column(tmp_path, data_csv):
    run_recipe(write_recipe(tmp_path, data_csv, steps=[]), tmp_path / "run")
    lineage = pl.read_parquet(tmp_path / "run" / "lineage.parquet")
    assert lineage.height == 0 and lineage.columns == ["id", "step", "field", "before", "after"]


def test_same_recipe_and_seed_give_identical_bytes_and_reuse_the_cache(tmp_path, data_csv):
    recipe = write_recipe(tmp_path, data_csv)
    first = run_recipe(recipe, tmp_path / "a")
    second = run_recipe(recipe, tmp_path / "b")
    assert (tmp_path / "a" / "corpus.parquet").read_bytes() == (
        tmp_path / "b" / "corpus.parquet"
    ).read_bytes()
    assert first.manifest["cached_steps"] == []
    assert second.manifest["cached_steps"] == ["clean", "split"]
    other = run_recipe(recipe, tmp_path / "c", seed=8)
    assert other.manifest["cached_steps"] == []
    assert (tmp_path / "c" / "corpus.parquet").read_bytes() != (
        tmp_path / "a" / "corpus.parquet"
    ).read_bytes()


def test_editing_a_later_step_recomputes_only_from_there(tmp_path, data_csv):
    run_recipe(write_recipe(tmp_path, data_csv), tmp_path / "a")
    edited = write_recipe(
        tmp_path,
        data_csv,
        steps=[{"clean": {"min_chars": 6}}, {"split": {"dev": 0.1, "test": 0.3}}],
    )
    assert run_recipe(edited, tmp_path / "b").manifest["cached_steps"] == ["clean"]


def test_typo_in_step_key_names_path_and_suggestion(tmp_path, data_csv):
    path = write_recipe(tmp_path, data_csv, steps=[{"clean": {"min_chrs": 3}}])
    with pytest.raises(
        RecipeError,
        match=r"steps\[0\]\.clean\.min_chrs: unknown key 'min_chrs' \(did you mean 'min_chars'\?\)",
    ):
        load_recipe(path)


def test_unknown_step_top_level_key_bad_value_and_broken_yaml(tmp_path, data_csv):
    with pytest.raises(RecipeError, match="did you mean 'split'"):
        load_recipe(write_recipe(tmp_path, data_csv, steps=["splitt"]))
    with pytest.raises(RecipeError, match="unknown key 'sede' \\(did you mean 'seed'\\?\\)"):
        load_recipe(write_recipe(tmp_path, data_csv, sede=3))
    with pytest.raises(RecipeError, match=r"steps\[0\]\.split\.dev"):
        load_recipe(write_recipe(tmp_path, data_csv, steps=[{"split": {"dev": "lots"}}]))
    broken = tmp_path / "broken.yaml"
    broken.write_text("input: {source: [\n")
    with pytest.raises(RecipeError, match="broken YAML at line"):
        load_recipe(broken)


def test_json_schema_lists_every_step():
    schema = json_schema()
    names = {
        next(iter(v["properties"]))
        for v in schema["properties"]["steps"]["items"]["anyOf"]
        if "properties" in v
    }
    assert {"clean", "split"} <= names
    assert "input" in schema["required"]


def test_shipped_quickstart_recipe_validates():
    from pathlib import Path

    recipe = load_recipe(Path(__file__).resolve().parents[2] / "recipes" / "quickstart.yaml")
    assert [s.name for s in recipe.steps] == ["clean", "dedup", "split"]


def test_uncacheable_steps_always_rerun_and_key_later_steps_by_their_output(tmp_path):
    from assay import Filter, Keep, from_records
    from assay.cache import StepCache
    from assay.context import RunContext
    from assay.curate.split import SplitStep
    from assay.recipes.runner import run_steps

    calls = []

    class RemoteFilter(Filter):
        """Keeps what a remote service says (here: a list that changes between runs)."""

        name = "remote_filter"
        cacheable = False

        def keep(self, corpus, ctx):
            calls.append(1)
            return Keep(~corpus["id"].is_in(remote), "removed_remotely")

    corpus = from_records(
        [f"t{i}" for i in range(10)], ["a", "b"] * 5, ids=[f"r{i}" for i in range(10)]
    )
    cache = StepCache(tmp_path)
    remote = ["r1"]
    first = run_steps(corpus, [RemoteFilter(), SplitStep()], RunContext(), cache=cache)
    remote = ["r1", "r2"]
    second = run_steps(corpus, [RemoteFilter(), SplitStep()], RunContext(), cache=cache)
    assert len(calls) == 2
    assert [r.cached for r in second.reports] == [False, False]
    assert second.corpus.height == first.corpus.height - 1


def test_recipe_errors_give_the_line_of_the_key(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(
        "name: x\ninput:\n  source: data.csv\nsteps:\n  - split: {dev: 0.1}\n  - clean:\n      min_chrs: 3\n"
    )
    with pytest.raises(RecipeError, match=r"r\.yaml:7: steps\[1\]\.clean\.min_chrs: unknown key"):
        load_recipe(path)
