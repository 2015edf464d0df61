from __future__ import annotations

import subprocess
import sys

import polars as pl
import pytest

import assay
from assay.errors import InputError, SchemaError
from assay.step import StepReport

ROWS = {
    "sentence": ["a fine film", "a dull film", "great plot", "awful plot", "   "],
    "sentiment": ["pos", "neg", "pos", "neg", "pos"],
    "author": ["ann", "bob", "ann", "cy", "cy"],
}


def test_polars_pandas_and_arrow_frames_give_the_same_corpus():
    frame = pl.DataFrame(ROWS)
    kwargs = {"text": "sentence", "label": "sentiment", "group": "author"}
    from_polars = assay.from_frame(frame, **kwargs)
    from_pandas = assay.from_frame(frame.to_pandas(), **kwargs)
    from_arrow = assay.from_frame(frame.to_arrow(), **kwargs)
    assert from_polars.equals(from_pandas) and from_polars.equals(from_arrow)
    # The blank row is left out, the rest keep their group and labels.
    assert from_polars.height == 4
    assert from_polars["group"].to_list() == ["ann", "bob", "ann", "cy"]
    assay.validate(from_polars)


def test_dataset_dict_splits_come_from_keys_and_class_labels_from_names():
    datasets = pytest.importorskip("datasets")
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    )
    part = {"text": ["good film", "bad film", "fine film"], "label": [1, 0, 1]}
    dsd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(part, features=features),
            "validation": datasets.Dataset.from_dict(
                {"text": ["dull plot"], "label": [0]}, features=features
            ),
        }
    )
    corpus = assay.from_frame(dsd, labels=["neg", "pos"])
    by_text = dict(zip(corpus["text"].to_list(), corpus["split"].to_list(), strict=True))
    assert by_text == {"good film": "train", "bad film": "train", "fine film": "train",
                       "dull plot": "dev"}  # fmt: skip
    assert corpus.filter(pl.col("text") == "bad film")["label"].item() == "neg"


def test_a_shuffled_dataset_keeps_its_current_order():
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"text": ["one", "two", "three"], "label": ["a", "b", "a"]})
    picked = ds.select([2, 0])
    corpus = assay.from_frame(picked)
    assert corpus["text"].to_list() == ["three", "one"]


def test_from_frame_errors_name_the_column_and_the_fix():
    with pytest.raises(InputError, match=r"text_column='body'.*found only"):
        assay.from_frame(pl.DataFrame(ROWS), text="body")
    with pytest.raises(InputError, match=r"labels \['neg'\] are not in the declared label set"):
        assay.from_frame(pl.DataFrame(ROWS), text="sentence", label="sentiment", labels=["pos"])
    with pytest.raises(InputError, match="from_records"):
        assay.from_frame([("a", "b")])
    with pytest.raises(InputError, match="option 'lnag'"):
        assay.from_frame(pl.DataFrame(ROWS), text="sentence", lnag="de")


def test_step_apply_rejects_a_pandas_frame_and_a_broken_corpus():
    from assay.curate.clean import CleanTransform

    step = CleanTransform()
    frame = pl.DataFrame(ROWS)
    with pytest.raises(SchemaError, match=r"step 'clean' expects a corpus.*pandas.*from_frame"):
        step.apply(frame.to_pandas())
    with pytest.raises(SchemaError, match=r"\['id', 'split'.*are missing"):
        step.apply(frame.rename({"sentence": "text", "sentiment": "label"}))
    corpus = assay.from_records(["a b", "c d"], ["x", "y"], ids=["same", "same"], split="train")
    with pytest.raises(SchemaError, match="step 'clean': invalid corpus: 1 ids are not unique"):
        step.apply(corpus)


def test_run_recipe_validates_its_input(tmp_path, monkeypatch):
    from assay.recipes import runner

    path = tmp_path / "toy.csv"
    pl.DataFrame({"text": ["a b", "c d"], "label": ["x", "y"]}).write_csv(path)
    good = runner.load_input

    def duplicated(recipe):
        loaded = good(recipe)
        loaded.corpus = loaded.corpus.with_columns(id=pl.lit("dup"))
        return loaded

    monkeypatch.setattr(runner, "load_input", duplicated)
    with pytest.raises(SchemaError, match="recipe 'toy' input: invalid corpus: 1 ids"):
        assay.run({"name": "toy", "input": {"source": str(path)}}, tmp_path / "out")


def test_run_and_read_from_python_with_a_notebook_table(tmp_path):
    path = tmp_path / "toy.csv"
    pl.DataFrame({"text": ["a b", "a b", "c <d>"], "label": ["x", "x", "y"]}).write_csv(path)
    corpus = assay.read(str(path))
    assert corpus.height == 3
    result = assay.run(
        {"name": "toy", "input": {"source": str(path)}, "steps": ["dedup"]}, tmp_path / "out"
    )
    assert result.pipeline.corpus.height == 2
    html = result._repr_html_()
    assert html.startswith("<table>") and "<td>dedup</td>" in html
    assert "toy: 3 rows read, 2 out" in html


def test_step_report_table_escapes_text():
    report = StepReport(step="clean<x>", kind="filter", n_in=3, n_out=1, n_dropped=2,
                        drop_reasons={"too_short": 2})  # fmt: skip
    html = report._repr_html_()
    assert "clean&lt;x&gt;" in html and "<x>" not in html
    assert "<td>3</td><td>1</td><td>2</td>" in html and "dropped as too_short: 2" in html


@pytest.mark.slow
def test_import_assay_stays_light_and_entry_points_load_on_use():
    code = (
        "import sys, assay; "
        "before = sorted(m for m in ('assay.recipes', 'assay.curate', 'polars.io.pandas') if m in sys.modules); "
        "f = assay.from_frame; r = assay.run; "
        "import assay.recipes.api as api; "
        "heavy = [m for m in ('torch', 'transformers', 'sklearn', 'datasets', 'mlflow') if m in sys.modules]; "
        "print(before, r is api.run, heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[] True []"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = assay.nope


@pytest.mark.parametrize("kind", ["pandas", "arrow", "dataset"])
def test_a_frame_runs_through_a_recipe_into_a_dataset_dict_that_datasets_reads(tmp_path, kind):
    datasets = pytest.importorskip("datasets")
    texts = [f"review number {i} was {'good' if i % 2 else 'bad'}" for i in range(40)]
    labels = ["pos" if i % 2 else "neg" for i in range(40)]
    frame = pl.DataFrame({"sentence": texts, "sentiment": labels})
    obj = {
        "pandas": frame.to_pandas(),
        "arrow": frame.to_arrow(),
        "dataset": datasets.Dataset.from_dict(frame.to_dict(as_series=False)),
    }[kind]
    corpus = assay.from_frame(obj, text="sentence", label="sentiment")
    recipe = {
        "name": "from-python",
        "steps": [{"split": {"dev": 0.2, "test": 0.2}}],
        "output": {"formats": ["hf"]},
    }
    result = assay.run(recipe, tmp_path / "run", corpus=corpus)
    assert result.manifest["accounting"]["rows_read"] == 40
    assert result.manifest["inputs"][0]["source"] == "<corpus given from Python>"
    back = datasets.load_from_disk(str(tmp_path / "run" / "corpus_hf"))
    assert set(back) == {"train", "validation", "test"}
    assert back["train"].features["label"].names == ["neg", "pos"]
    assert sum(len(back[s]) for s in back) == 40
    names = back["validation"].features["label"].names
    got = sorted((row["text"], names[row["label"]]) for s in back for row in back[s])
    assert got == sorted(zip(texts, labels, strict=True))


def test_the_python_api_prints_no_progress_bars_of_datasets(tmp_path, capfd):
    # Writing formats: [hf] printed datasets' "Casting/Saving the dataset" bars per split.
    datasets = pytest.importorskip("datasets")
    texts = [f"review number {i} was {'good' if i % 2 else 'bad'}" for i in range(40)]
    corpus = assay.from_frame(
        pl.DataFrame({"text": texts, "label": ["pos" if i % 2 else "neg" for i in range(40)]})
    )
    recipe = {"name": "quiet", "steps": ["split"], "output": {"formats": ["hf"]}}
    assay.run(recipe, tmp_path / "run", corpus=corpus)
    assay.run({"name": "back", "input": {"source": str(tmp_path / "run" / "corpus_hf")}},
              tmp_path / "back")  # fmt: skip
    out, err = capfd.readouterr()
    assert out == "" and "dataset" not in err.lower() and "%|" not in err
    assert datasets.is_progress_bar_enabled()  # the user's setting is put back
