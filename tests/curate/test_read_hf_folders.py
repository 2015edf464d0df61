"""Local folders laid out as Hugging Face datasets are read with their splits: a Hub
repository's `data/<split>-00000-of-00001.parquet`, `<split>.parquet` files, data_files
named in the options, and `save_to_disk` folders with ClassLabel names. A folder whose
files name no split is still one table."""

from __future__ import annotations

import polars as pl
import pytest

from assay.curate.io import ReadOptions, parquet_dir_hash, read

datasets = pytest.importorskip("datasets")


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """load_dataset converts local files into its cache: a cache of the test's own."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))


def rows(prefix: str, n: int) -> pl.DataFrame:
    return pl.DataFrame({"text": [f"{prefix} row {i}" for i in range(n)], "label": [i % 2 for i in range(n)]})  # fmt: skip


def texts_by_split(corpus: pl.DataFrame) -> dict[str | None, list[str]]:
    return {
        split: sorted(group["text"].to_list())
        for (split,), group in corpus.group_by("split", maintain_order=True)
    }


def test_a_hub_repository_layout_gives_its_splits(tmp_path):
    folder = tmp_path / "repo"
    (folder / "data").mkdir(parents=True)
    rows("train", 7).write_parquet(folder / "data" / "train-00000-of-00001.parquet")
    rows("test", 3).write_parquet(folder / "data" / "test-00000-of-00001.parquet")
    loaded = read(ReadOptions(source=str(folder)))
    assert loaded.rows_read == 10
    assert texts_by_split(loaded.corpus) == {
        "train": [f"train row {i}" for i in range(7)],
        "test": [f"test row {i}" for i in range(3)],
    }
    assert sorted(loaded.corpus["label"].unique().to_list()) == ["0", "1"]


def test_split_named_files_give_their_splits_and_validation_is_dev(tmp_path):
    folder = tmp_path / "files"
    folder.mkdir()
    for split, n in (("train", 6), ("validation", 4), ("test", 2)):
        rows(split, n).write_parquet(folder / f"{split}.parquet")
    corpus = read(ReadOptions(source=str(folder))).corpus
    assert texts_by_split(corpus) == {
        "train": [f"train row {i}" for i in range(6)],
        "dev": [f"validation row {i}" for i in range(4)],
        "test": [f"test row {i}" for i in range(2)],
    }
    # the split named in the options is the only one read
    only = read(ReadOptions(source=str(folder), source_split="validation")).corpus
    assert texts_by_split(only) == {"dev": [f"validation row {i}" for i in range(4)]}


def test_split_named_csv_files_give_their_splits(tmp_path):
    folder = tmp_path / "csv"
    folder.mkdir()
    rows("train", 5).write_csv(folder / "train.csv")
    rows("dev", 2).write_csv(folder / "dev.csv")
    corpus = read(ReadOptions(source=str(folder))).corpus
    assert texts_by_split(corpus) == {
        "train": [f"train row {i}" for i in range(5)],
        "dev": ["dev row 0", "dev row 1"],
    }


def test_data_files_name_the_splits_of_a_folder(tmp_path):
    folder = tmp_path / "shards"
    folder.mkdir()
    rows("first", 4).write_parquet(folder / "a.parquet")
    rows("second", 2).write_parquet(folder / "b.parquet")
    options = ReadOptions(
        source=str(folder), data_files={"train": "a.parquet", "test": "b.parquet"}
    )
    corpus = read(options).corpus
    assert texts_by_split(corpus) == {
        "train": [f"first row {i}" for i in range(4)],
        "test": ["second row 0", "second row 1"],
    }


def test_a_saved_dataset_dict_keeps_its_class_label_names(tmp_path):
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    )
    saved = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(
                {"text": ["bad", "good", "fine"], "label": [0, 1, 1]}, features=features
            ),
            "validation": datasets.Dataset.from_dict(
                {"text": ["awful"], "label": [0]}, features=features
            ),
        }
    )
    saved.save_to_disk(str(tmp_path / "saved"))
    corpus = read(ReadOptions(source=str(tmp_path / "saved"))).corpus
    assert sorted(corpus.select("text", "label", "split").rows()) == [
        ("awful", "neg", "dev"),
        ("bad", "neg", "train"),
        ("fine", "pos", "train"),
        ("good", "pos", "train"),
    ]


def test_class_label_names_in_parquet_files_of_a_hub_layout_are_kept(tmp_path):
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    )
    folder = tmp_path / "repo" / "data"
    folder.mkdir(parents=True)
    part = datasets.Dataset.from_dict({"text": ["bad", "good"], "label": [0, 1]}, features=features)
    part.to_parquet(str(folder / "train-00000-of-00001.parquet"))
    corpus = read(ReadOptions(source=str(tmp_path / "repo"))).corpus
    assert sorted(corpus.select("text", "label", "split").rows()) == [
        ("bad", "neg", "train"),
        ("good", "pos", "train"),
    ]


def test_a_parquet_folder_that_names_no_split_is_still_one_table(tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    rows("first", 3).write_parquet(folder / "part-0.parquet")
    rows("second", 2).write_parquet(folder / "part-1.parquet")
    options = ReadOptions(source=str(folder))
    loaded = read(options)
    assert loaded.corpus["split"].to_list() == [None] * 5
    assert loaded.corpus["text"].to_list() == [
        *[f"first row {i}" for i in range(3)],
        *[f"second row {i}" for i in range(2)],
    ]
    assert loaded.input_hash == parquet_dir_hash(folder, options)  # read by polars, as before


def test_a_jsonl_folder_that_names_no_split_is_one_table(tmp_path):
    folder = tmp_path / "jsonl"
    folder.mkdir()
    rows("first", 2).write_ndjson(folder / "a.jsonl")
    rows("second", 2).write_ndjson(folder / "b.jsonl")
    corpus = read(ReadOptions(source=str(folder))).corpus
    assert texts_by_split(corpus) == {
        None: ["first row 0", "first row 1", "second row 0", "second row 1"]
    }


def test_a_split_named_parquet_folder_is_not_streamed_as_one_table(tmp_path):
    from assay.curate.dedup import DedupFilter
    from assay.curate.streaming_read import streamed_source

    folder = tmp_path / "files"
    folder.mkdir()
    rows("train", 3).write_parquet(folder / "train.parquet")
    rows("test", 2).write_parquet(folder / "test.parquet")
    assert streamed_source(ReadOptions(source=str(folder)), [DedupFilter()]) is None
    other = tmp_path / "parts"
    other.mkdir()
    rows("first", 3).write_parquet(other / "part-0.parquet")
    assert streamed_source(ReadOptions(source=str(other)), [DedupFilter()]) == other


def test_an_empty_folder_is_one_input_error(tmp_path):
    from assay.errors import InputError

    (tmp_path / "empty").mkdir()
    with pytest.raises(
        InputError, match=r"cannot load Hugging Face dataset .*contain any data files"
    ):
        read(ReadOptions(source=str(tmp_path / "empty")))
