from __future__ import annotations

import json
import logging

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


def test_misspelt_required_key_names_the_misspelling_not_the_missing_key(tmp_path, data_csv):
    # domain_vocab requires `lexicon`: a typo makes it both unknown and missing.
    path = write_recipe(tmp_path, data_csv, steps=[{"domain_vocab": {"lexcon": "x.yaml"}}])
    with pytest.raises(RecipeError, match=r"unknown key 'lexcon' \(did you mean 'lexicon'\?\)"):
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
    assert [s.name for s in recipe.steps] == [
        "clean", "dedup", "split", "quality", "leakage", "label_noise", "model_audit",
        "balance", "synonyms", "back_translation",
    ]  # fmt: skip
    assert recipe.ablation.baseline_until == "model_audit"
    # The whole loop ends on a measured data change: augmentations with their controls.
    variants = {v.name: v for v in recipe.ablation.variants}
    assert {"+synonyms", "+back_translation"} <= set(variants)
    assert all(variants[n].controls == ["duplicate"] for n in ("+synonyms", "+back_translation"))


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


# -- the run directory is written whole ---------------------------------------------------------


def test_hf_output_is_written_and_hashed_in_the_manifest(tmp_path, data_csv):
    pytest.importorskip("datasets")
    recipe = write_recipe(tmp_path, data_csv, output={"formats": ["hf", "csv"], "report": False})
    result = run_recipe(recipe, tmp_path / "run")
    assert (tmp_path / "run" / "corpus_hf" / "dataset_dict.json").exists()
    assert set(result.manifest["outputs"]) >= {"corpus_hf", "corpus.csv"}
    again = run_recipe(recipe, tmp_path / "again")
    assert again.manifest["outputs"]["corpus_hf"] == result.manifest["outputs"]["corpus_hf"]


def test_a_failed_rerun_leaves_the_previous_run_whole(tmp_path, data_csv, monkeypatch):
    import assay.audits.report as report

    run = tmp_path / "run"
    run_recipe(write_recipe(tmp_path, data_csv), run)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(report, "render_run_report", crash)
    with pytest.raises(RuntimeError):
        run_recipe(write_recipe(tmp_path, data_csv), run, seed=99)
    after = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    assert after == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".run")] == []


def test_a_rerun_with_other_outputs_leaves_no_stale_files(tmp_path, data_csv):
    run = tmp_path / "run"
    run_recipe(
        write_recipe(
            tmp_path,
            data_csv,
            output={"formats": ["csv", "jsonl", "tsv"]},
            steps=[{"clean": {"min_chars": 6}}, "dedup", "split"],
        ),
        run,
    )
    assert (run / "corpus.tsv").exists() and (run / "findings").is_dir()
    run_recipe(write_recipe(tmp_path, data_csv, steps=["split"]), run)
    names = {p.name for p in run.iterdir()}
    assert names == {
        "corpus.parquet",
        "dropped.parquet",
        "lineage.parquet",
        "manifest.json",
        "report.html",
        "report.md",
    }


def test_label_studio_sync_state_survives_reruns_and_failed_runs(tmp_path, data_csv, monkeypatch):
    import assay.audits.report as report

    run = tmp_path / "run"
    run_recipe(write_recipe(tmp_path, data_csv), run)
    (run / "labelstudio").mkdir()
    (run / "labelstudio" / "state.json").write_text("v1")
    run_recipe(write_recipe(tmp_path, data_csv), run)
    assert (run / "labelstudio" / "state.json").read_text() == "v1"

    def sync_then_crash(run_dir, *args, **kwargs):
        (run_dir / "labelstudio" / "state.json").write_text("v2")
        raise RuntimeError("crash after a sync")

    monkeypatch.setattr(report, "render_run_report", sync_then_crash)
    with pytest.raises(RuntimeError):
        run_recipe(write_recipe(tmp_path, data_csv), run)
    assert (run / "labelstudio" / "state.json").read_text() == "v2"
    assert (run / "manifest.json").exists()


def test_out_under_a_file_is_one_clear_error_before_any_work(tmp_path, data_csv):
    from assay.errors import OutputError

    blocker = tmp_path / "afile"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        run_recipe(write_recipe(tmp_path, data_csv), blocker / "run")


def test_read_only_out_is_refused_before_any_work(tmp_path, data_csv, monkeypatch):
    import os

    from assay import rundir
    from assay.errors import OutputError

    run = tmp_path / "run"
    run_recipe(write_recipe(tmp_path, data_csv), run)
    run.chmod(0o555)
    real_access = os.access
    # As root every folder is writable: emulate what any other user sees.
    monkeypatch.setattr(
        rundir.os, "access", lambda p, mode: False if str(p) == str(run) else real_access(p, mode)
    )
    loads = []
    monkeypatch.setattr("assay.curate.io.read", lambda *a: loads.append(1))
    try:
        with pytest.raises(OutputError, match="is read-only"):
            run_recipe(write_recipe(tmp_path, data_csv), run)
    finally:
        run.chmod(0o755)
    assert loads == []


def test_a_folder_that_is_not_a_run_is_never_replaced(tmp_path, data_csv):
    from assay.errors import OutputError

    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(OutputError, match="is not a run"):
        run_recipe(write_recipe(tmp_path, data_csv), folder)
    assert (folder / "notes.txt").read_text() == "keep me"


def test_unwritable_cache_runs_without_it(tmp_path, data_csv, monkeypatch, caplog):
    monkeypatch.setenv("ASSAY_CACHE_DIR", str(tmp_path / "cache"))
    cached = run_recipe(write_recipe(tmp_path, data_csv), tmp_path / "cached")
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    monkeypatch.setenv("ASSAY_CACHE_DIR", str(blocker / "steps"))
    with caplog.at_level(logging.WARNING, logger="assay"):
        result = run_recipe(write_recipe(tmp_path, data_csv), tmp_path / "run")
    # One warning, before the first step, that names the folder and the fixes.
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [
        f"the step cache {blocker / 'steps'} is not writable; running without it (set "
        "ASSAY_CACHE_DIR to a writable folder, or run with --no-cache)"
    ]
    assert blocker.read_text() == "x"
    # The run is the one a writable cache gives: the same rows, drops and reasons.
    assert result.manifest["accounting"] == cached.manifest["accounting"]
    assert result.manifest["accounting"]["balanced"]
    dropped = pl.read_parquet(tmp_path / "run" / "dropped.parquet")
    assert sorted(dropped.select("step", "reason", "text").rows()) == [
        ("clean", "too_short", "tiny"),
        ("load", "empty_text", ""),
    ]
    for name in ("corpus", "dropped"):
        ours = pl.read_parquet(tmp_path / "run" / f"{name}.parquet")
        assert ours.equals(pl.read_parquet(tmp_path / "cached" / f"{name}.parquet"))


def test_negative_seed_is_a_recipe_error(tmp_path, data_csv):
    with pytest.raises(RecipeError, match="seed"):
        load_recipe(write_recipe(tmp_path, data_csv, seed=-1))
    with pytest.raises(RecipeError, match="seed"):
        run_recipe(write_recipe(tmp_path, data_csv), tmp_path / "run", seed=-3)


def test_load_warnings_go_into_the_manifest(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("text,label\n" + "\n".join(f"row number {i},a" for i in range(9)) + "\nshort\n")
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"input": {"source": str(data)}}))
    manifest = run_recipe(path, tmp_path / "run").manifest
    assert len(manifest["warnings"]) == 1 and "fewer fields" in manifest["warnings"][0]


# -- hostile recipes ----------------------------------------------------------------------------


def test_yaml_alias_bomb_is_one_short_error(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
        "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
        "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
        "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
        "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
        "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
        "name: *f\ninput: {source: x.csv}\n"
    )
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert len(str(info.value)) < 300 and "aliases" in str(info.value)


def test_long_values_are_cut_in_errors(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"name": ["x" * 50] * 100, "input": {"source": "x.csv"}}))
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert len(str(info.value)) < 300 and "more characters" in str(info.value)


@pytest.mark.slow
def test_deeply_nested_values_are_one_error(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("name: " + "[" * 3000 + "]" * 3000 + "\ninput: {source: x.csv}\n")
    with pytest.raises(RecipeError, match="nested"):
        load_recipe(path)
    with pytest.raises(RecipeError, match="nested"):
        load_recipe({"name": "x", "input": {"source": "x.csv"}, "steps": _nested(3000)})


def _nested(depth):
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def test_unwritable_outputs_are_one_error_that_is_also_an_os_error(tmp_path):
    from assay import atomic
    from assay.errors import AssayError

    (tmp_path / "afile").write_text("x")
    with pytest.raises(AssayError, match=r"afile' is a file, not a folder") as info:
        atomic.write_text(tmp_path / "afile" / "schema.json", "{}")
    assert isinstance(info.value, OSError)


def test_the_current_folder_is_never_replaced(tmp_path, data_csv, monkeypatch):
    from assay.errors import OutputError

    run = tmp_path / "run"
    run_recipe(write_recipe(tmp_path, data_csv), run)
    monkeypatch.chdir(run)
    with pytest.raises(OutputError, match="current folder"):
        run_recipe(write_recipe(tmp_path, data_csv), ".")
    assert (run / "manifest.json").exists()


def test_a_failed_first_run_keeps_its_sync_state_and_can_be_rerun(tmp_path, data_csv, monkeypatch):
    import assay.audits.report as report

    run = tmp_path / "run"
    real = report.render_run_report

    def sync_then_crash(run_dir, *args, **kwargs):
        (run_dir / "labelstudio").mkdir(exist_ok=True)
        (run_dir / "labelstudio" / "state.json").write_text("v1")
        raise RuntimeError("crash after a sync")

    monkeypatch.setattr(report, "render_run_report", sync_then_crash)
    with pytest.raises(RuntimeError):
        run_recipe(write_recipe(tmp_path, data_csv), run)
    assert [p.name for p in run.iterdir()] == ["labelstudio"]
    monkeypatch.setattr(report, "render_run_report", real)
    run_recipe(write_recipe(tmp_path, data_csv), run)
    assert (run / "labelstudio" / "state.json").read_text() == "v1"
    assert (run / "manifest.json").exists()


def test_the_label_studio_sync_folder_is_a_state_folder_of_runs():
    from assay.curate.labelstudio.steps import SYNC_DIR
    from assay.rundir import STATE_DIRS

    assert SYNC_DIR in STATE_DIRS


def test_url_credentials_in_step_params_never_reach_the_manifest(tmp_path, data_csv):
    from pydantic import Field

    from assay.registry import register
    from assay.step import Audit, Findings, StepConfig

    @register("test_remote_audit")
    class RemoteAudit(Audit):
        """Pretends to read a service at a URL."""

        class Config(StepConfig):
            url: str = Field(description="service URL")

        def score(self, corpus, ctx):
            return Findings(summary={"seen": self.config.url})

    url = "http://admin:hunter2secret@localhost:8080/api"
    path = write_recipe(tmp_path, data_csv, steps=[{"test_remote_audit": {"url": url}}])
    result = run_recipe(path, tmp_path / "run")
    text = (tmp_path / "run" / "manifest.json").read_text()
    assert "hunter2secret" not in text and "admin:" not in text
    assert "http://***@localhost:8080/api" in text
    assert result.manifest["steps"][0]["params"]["url"] == "http://***@localhost:8080/api"
