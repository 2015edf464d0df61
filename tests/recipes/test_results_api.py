"""A run gives its data back: RunResult's tables, to_pandas, to_hf, assay.load and
assay.read of a run folder, assay.run and `assay run` both running the ablation, any table
as a recipe's corpus, and a repr of a few lines."""

from __future__ import annotations

import json

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
import yaml
from click.testing import CliRunner

import assay
from assay.errors import InputError, SchemaError


def _rows(n: int = 160) -> list[dict]:
    words = {"pos": ["good", "great", "fine"], "neg": ["bad", "awful", "poor"]}
    rows = []
    for i in range(n):
        label = "pos" if i % 2 else "neg"
        rows.append({"review": f"{words[label][i % 3]} film number {i}", "stars": label})
    rows.append({"review": "  ", "stars": "pos"})  # planted: no text, dropped at load
    rows.append({"review": "ok", "stars": "neg"})  # planted: too short for clean
    return rows


RECIPE = {
    "name": "notebook",
    "seed": 5,
    "input": {"text_column": "review", "label_column": "stars", "labels": ["neg", "pos"]},
    "steps": [{"clean": {"min_chars": 5}}, {"split": {"dev": 0.15, "test": 0.25}}],
    "ablation": {
        "model": "fast",
        "seeds": 2,
        "bootstrap": 100,
        "variants": [{"name": "+reweight", "add": [{"balance": {"strategy": "reweight"}}]}],
    },
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("results") / "run"
    return assay.run(RECIPE, out, corpus=pd.DataFrame(_rows()))


def test_run_takes_a_pandas_frame_mapped_by_the_recipes_input(run):
    # Before: a pandas frame as corpus= was a SchemaError.
    assert run.manifest["accounting"]["rows_read"] == 162
    assert run.corpus.height == 160
    assert set(run.corpus["split"].unique()) == {"train", "dev", "test"}
    reasons = dict(zip(run.dropped["reason"], run.dropped["step"], strict=True))
    assert reasons == {"empty_text": "load", "too_short": "clean"}


def test_result_names_its_tables(run):
    path = run.path
    assert run.corpus.equals(pl.read_parquet(path / "corpus.parquet"))
    assert run.dropped.height == pl.read_parquet(path / "dropped.parquet").height == 2
    assert run.lineage.columns[:3] == ["id", "step", "field"]
    assert run.labels == ["neg", "pos"]
    assert {"corpus", "dropped", "lineage", "to_pandas", "to_hf", "ablation"} <= set(dir(run))
    frame = run.to_pandas()
    assert isinstance(frame, pd.DataFrame) and len(frame) == 160
    assert list(run.to_pandas("dropped")["reason"].sort_values()) == ["empty_text", "too_short"]
    with pytest.raises(InputError, match="choose one of"):
        run.to_pandas("findingz")


def test_to_hf_is_a_dataset_dict_with_validation_and_class_labels(run):
    dataset = run.to_hf()
    assert set(dataset) == {"train", "validation", "test"}
    assert dataset["train"].features["label"].names == ["neg", "pos"]
    sizes = dict(run.corpus.group_by("split").len().iter_rows())
    assert dataset["validation"].num_rows == sizes["dev"]
    back = assay.from_frame(dataset)
    assert back.sort("id")["split"].equals(run.corpus.sort("id")["split"])


def test_assay_run_runs_the_recipes_ablation(run):
    # Before: assay.run skipped the ablation that `assay run` ran.
    assert run.ablation is not None
    assert (run.path / "ablation.json").is_file()
    arms = [a["arm"] for a in run.ablation.report["arms"]]
    assert arms == ["baseline", "+reweight"]


def test_repr_is_a_few_lines(run):
    # Before: print(result) dumped about 8,000 characters.
    text = repr(run)
    assert len(text) < 800 and len(text.splitlines()) <= 8, text
    assert str(run.path) in text
    assert "rows: 162 read -> 160 out" in text
    assert "dropped: 2" in text and "+reweight" in text
    assert len(repr(run.ablation)) < 600


def test_read_keeps_the_splits_of_a_run(run):
    # Before: read(corpus.parquet) and from_frame(read_parquet) left every split None, and
    # read(run folder) raised.
    expected = run.corpus.sort("id")
    for corpus in (
        assay.read(str(run.path / "corpus.parquet")),
        assay.read(str(run.path)),
        assay.from_frame(pl.read_parquet(run.path / "corpus.parquet")),
        assay.from_frame(run.to_pandas()),
    ):
        assert (
            corpus.sort("id")
            .select("id", "split", "label")
            .equals(expected.select("id", "split", "label"))
        )


def test_load_restores_a_run_from_its_folder_or_corpus_file(run):
    for where in (run.path, run.path / "corpus.parquet", str(run.path)):
        loaded = assay.load(where)
        assert loaded.corpus.equals(run.corpus)
        assert loaded.dropped.height == 2
        assert loaded.labels == ["neg", "pos"]
        assert loaded.to_hf()["validation"].features["label"].names == ["neg", "pos"]
        assert loaded.ablation is not None
        assert loaded.ablation.table["arm"].to_list() == ["baseline", "+reweight"]
        assert [r.step for r in loaded.reports] == ["clean", "split"]
        assert repr(loaded) == repr(run)


def test_load_says_what_a_run_folder_is(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        assay.load(tmp_path / "nothing")
    corpus = tmp_path / "corpus.parquet"
    assay.from_records(["a b"], ["x"], split="train").write_parquet(corpus)
    with pytest.raises(InputError, match=r"not in a finished run folder.*assay.read"):
        assay.load(corpus)
    assert assay.read(str(corpus))["split"].to_list() == ["train"]


def test_run_without_ablation_and_the_cli_does_the_same(tmp_path):
    from assay.recipes.cli import main

    frame = pl.DataFrame(_rows(80)).rename({"review": "text", "stars": "label"})
    source = tmp_path / "toy.parquet"
    frame.write_parquet(source)
    recipe = {**RECIPE, "input": {"source": str(source), "labels": ["neg", "pos"]}}
    skipped = assay.run(recipe, tmp_path / "py", ablation=False)
    assert skipped.ablation is None and not (tmp_path / "py" / "ablation.json").exists()
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    runner = CliRunner()
    done = runner.invoke(main, ["run", str(path), "--out", str(tmp_path / "cli"), "-q"])
    assert done.exit_code == 0, done.output
    python = assay.run(recipe, tmp_path / "python")
    cli = json.loads((tmp_path / "cli" / "ablation.json").read_text())
    assert [a["score"] for a in cli["arms"]] == [a["score"] for a in python.ablation.report["arms"]]
    no = runner.invoke(main, ["run", str(path), "--out", str(tmp_path / "no"), "--no-ablation"])
    assert no.exit_code == 0, no.output
    assert not (tmp_path / "no" / "ablation.json").exists()


@pytest.mark.parametrize("kind", ["polars", "arrow", "dataset", "corpus_pandas"])
def test_any_table_is_a_corpus_for_run(tmp_path, kind):
    frame = pl.DataFrame(_rows(40)).rename({"review": "text", "stars": "label"})
    if kind == "arrow":
        given = frame.to_arrow()
    elif kind == "dataset":
        import datasets

        given = datasets.Dataset(frame.to_arrow())
    elif kind == "corpus_pandas":
        given = assay.from_frame(frame.filter(pl.col("text").str.len_chars() > 2)).to_pandas()
    else:
        given = frame
    recipe = {"name": "any", "steps": [{"clean": {"min_chars": 5}}]}
    result = assay.run(recipe, tmp_path / "out", corpus=given, ablation=False)
    assert result.corpus.height == 40


def test_a_step_takes_a_corpus_back_from_pandas_and_arrow():
    from assay.curate.clean import CleanTransform

    corpus = assay.from_records(["a fine film", "x"], ["pos", "neg"], split="train")
    for given in (
        corpus.to_pandas(),
        corpus.to_arrow(),
        pa.RecordBatchReader.from_batches(corpus.to_arrow().schema, corpus.to_arrow().to_batches()),
    ):
        result = CleanTransform(min_chars=3).apply(given)
        assert result.corpus["id"].to_list() == corpus["id"].head(1).to_list()
    with pytest.raises(SchemaError, match=r"got a pandas.DataFrame with the columns \['t'\]"):
        CleanTransform().apply(pd.DataFrame({"t": ["a"]}))


def test_read_takes_a_table_in_memory_like_from_frame():
    frame = pl.DataFrame(
        {"review": ["a fine film", "a dull film", "   "], "y": ["pos", "neg", "neg"]}
    )
    arrow = frame.to_arrow()
    reader = pa.RecordBatchReader.from_batches(arrow.schema, arrow.to_batches())
    for given in (frame.to_pandas(), reader):
        corpus = assay.read(given, text_column="review", label_column="y")
        expected = assay.from_frame(frame, text="review", label="y")
        assert corpus["id"].to_list() == expected["id"].to_list()
        assert corpus["text"].to_list() == ["a fine film", "a dull film"]  # the blank row left out


def test_any_arrow_stream_producer_is_read_like_a_table():
    import pyarrow.dataset as ds

    frame = pl.DataFrame({"review": ["a fine film", "a dull film"], "y": ["pos", "neg"]})
    arrow = frame.to_arrow()

    class Producer:  # only the Arrow PyCapsule stream interface, as other libraries offer
        def __arrow_c_stream__(self, requested_schema=None):
            return arrow.__arrow_c_stream__(requested_schema)

    expected = assay.from_frame(frame, text="review", label="y")
    producers = {"dataset": ds.dataset(arrow), "capsule": Producer()}
    datasets = pytest.importorskip("datasets")
    producers["iterable"] = datasets.Dataset.from_polars(frame).to_iterable_dataset()
    for name, given in producers.items():
        corpus = assay.from_frame(given, text="review", label="y")
        assert corpus["id"].to_list() == expected["id"].to_list(), name
        assert corpus["label"].to_list() == ["pos", "neg"], name
