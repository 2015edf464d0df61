from __future__ import annotations

import json

import polars as pl
import pytest

from assay.curate.io import ReadOptions, read, write
from assay.curate.labelstudio.export import read_export
from assay.errors import InputError


def opts(path, **kw):
    return ReadOptions(source=str(path), **kw)


def test_csv_with_column_and_label_mapping(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("key,sentence,y\nk1,good film,1\nk2,bad film,0\n")
    loaded = read(
        opts(
            p,
            text_column="sentence",
            label_column="y",
            id_column="key",
            label_map={"1": "pos", "0": "neg"},
        )
    )
    c = loaded.corpus
    assert c["id"].to_list() == ["k1", "k2"]
    assert c["label"].to_list() == ["pos", "neg"]
    assert loaded.rows_read == 2 and loaded.dropped.height == 0


def test_missing_column_lists_what_exists(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("sentence,y\na,b\n")
    with pytest.raises(InputError, match=r"found only \['sentence', 'y'\]"):
        read(opts(p))


def test_non_utf8_names_the_line_and_offers_encoding(tmp_path):
    p = tmp_path / "d.csv"
    p.write_bytes(b"text,label\nfine,a\ncaf\xe9,b\n")
    with pytest.raises(InputError, match=r"line 3.*encoding"):
        read(opts(p))
    assert read(opts(p, encoding="latin-1")).corpus["text"].to_list() == ["fine", "café"]


def test_empty_file_is_one_clear_error(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("")
    with pytest.raises(InputError, match="empty"):
        read(opts(p))


def test_null_and_empty_text_are_dropped_with_reasons_or_errors_when_strict(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text(
        '{"text": "ok", "label": "a"}\n{"text": null, "label": "a"}\n{"text": "  ", "label": "b"}\n'
    )
    loaded = read(opts(p))
    assert loaded.corpus.height == 1
    assert loaded.dropped["reason"].to_list() == ["null_text", "empty_text"]
    assert loaded.dropped["step"].to_list() == ["load", "load"]
    with pytest.raises(InputError, match="2 rows have null or empty text"):
        read(opts(p, strict=True))


def test_label_outside_declared_set_is_an_error(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("text,label\na,pos\nb,maybe\n")
    with pytest.raises(InputError, match=r"\['maybe'\].*declared"):
        read(opts(p, labels=["pos", "neg"]))


def test_multilabel_delimited_and_list_columns(tmp_path):
    p = tmp_path / "d.tsv"
    p.write_text("text\tlabel\na\tx|y\nb\tz\n")
    c = read(opts(p, label_separator="|")).corpus
    assert c["label"].to_list() == [["x", "y"], ["z"]]
    q = tmp_path / "d.jsonl"
    q.write_text('{"text": "a", "label": ["x", "y"]}\n')
    assert read(opts(q)).corpus["label"].to_list() == [["x", "y"]]


def test_given_splits_are_kept_with_aliases(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("text,label,part\na,x,train\nb,x,validation\nc,y,test\n")
    assert read(opts(p, split_column="part")).corpus["split"].to_list() == ["train", "dev", "test"]
    p.write_text("text,label,part\na,x,holdout\n")
    with pytest.raises(InputError, match="holdout"):
        read(opts(p, split_column="part"))


def test_write_and_read_back_every_format(tmp_path):
    src = tmp_path / "d.csv"
    src.write_text("text,label,part\na b,x,train\nc d,y,test\n")
    corpus = read(opts(src, split_column="part")).corpus
    for fmt in ("csv", "tsv", "jsonl", "parquet"):
        out = write(corpus, tmp_path / f"out.{fmt}", fmt)
        back = read(opts(out, id_column="id", split_column="split")).corpus
        assert back.select("id", "text", "label", "split").equals(
            corpus.select("id", "text", "label", "split")
        ), fmt


def test_hugging_face_dataset_dict_round_trip(tmp_path):
    pytest.importorskip("datasets")
    src = tmp_path / "d.csv"
    src.write_text("text,label,part\na b,x,train\nc d,y,test\ne f,x,dev\n")
    corpus = read(opts(src, split_column="part")).corpus
    out = write(corpus, tmp_path / "hf", "hf")
    back = read(opts(out, id_column="id"))
    assert back.corpus.sort("id")["split"].to_list() == corpus.sort("id")["split"].to_list()


def test_hugging_face_class_labels_become_names(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict(
        {"sentence": ["good", "bad"], "label": [1, 0]},
        features=datasets.Features(
            {
                "sentence": datasets.Value("string"),
                "label": datasets.ClassLabel(names=["neg", "pos"]),
            }
        ),
    )
    datasets.DatasetDict({"validation": ds}).save_to_disk(str(tmp_path / "ds"))
    c = read(opts(tmp_path / "ds", text_column="sentence")).corpus
    assert c["label"].to_list() == ["pos", "neg"]
    assert c["split"].to_list() == ["dev", "dev"]


def test_label_studio_export_takes_latest_accepted_annotation(tmp_path):
    tasks = [
        {"id": 1, "data": {"text": "great", "ex_id": "e1"}, "annotations": [
            {"id": 10, "was_cancelled": False, "updated_at": "2026-01-01", "result": [{"value": {"choices": ["neg"]}}]},
            {"id": 11, "was_cancelled": False, "updated_at": "2026-01-02", "result": [{"value": {"choices": ["pos"]}}]},
        ]},
        {"id": 2, "data": {"text": "skipped", "ex_id": "e2"}, "annotations": [
            {"id": 12, "was_cancelled": True, "result": []},
        ]},
    ]  # fmt: skip
    p = tmp_path / "export.json"
    p.write_text(json.dumps(tasks))
    c = read(opts(p, id_column="ex_id")).corpus
    assert c.sort("id")["label"].to_list() == ["pos", None]
    assert read_export(tasks).height == 2


def test_parquet_limit_and_content_ids_are_stable(tmp_path):
    p = tmp_path / "d.parquet"
    pl.DataFrame({"text": ["a", "b", "a"], "label": ["x", "y", "x"]}).write_parquet(p)
    a = read(opts(p)).corpus
    b = read(opts(p)).corpus
    assert a["id"].to_list() == b["id"].to_list()
    assert a["id"].n_unique() == 3
    assert read(opts(p, limit=2)).corpus.height == 2


def test_read_corpus_takes_a_run_directory_a_corpus_file_or_raw_data(tmp_path):
    from assay import from_records
    from assay.curate.io import read_corpus

    corpus = from_records(["a b", "c d"], ["x", "y"], ids=["k1", "k2"], split=["train", "dev"])
    run = tmp_path / "run"
    write(corpus, run / "corpus.parquet")
    assert read_corpus(run)["id"].to_list() == ["k1", "k2"]
    assert read_corpus(run / "corpus.parquet")["split"].to_list() == ["train", "dev"]
    raw = tmp_path / "raw.csv"
    raw.write_text("text,label\nhello,x\n")
    assert read_corpus(raw)["text"].to_list() == ["hello"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="neither a corpus parquet nor a run directory"):
        read_corpus(tmp_path / "empty")


# -- inputs that used to pass in silence ------------------------------------------------------


def test_column_named_twice_in_header_is_an_error(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("text,label,text\nhello there,a,x\nbye now,b,y\n")
    with pytest.raises(InputError, match=r"column 'text' twice \(columns 1 and 3\)"):
        read(opts(p))


def test_repeated_header_line_is_a_warning(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("text,label\nhello there,a\ntext,label\nbye now,b\n")
    loaded = read(opts(p))
    assert any("repeat the header" in w for w in loaded.warnings)


def test_short_rows_are_a_warning_with_their_line(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("text,label\nhello there,a\nbye now\nok then,b\nlast one\n")
    loaded = read(opts(p))
    assert loaded.corpus["label"].null_count() == 2
    assert len(loaded.warnings) == 1
    assert "2 row(s) have fewer fields" in loaded.warnings[0] and "line 3" in loaded.warnings[0]


def test_well_formed_csv_has_no_warnings(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("text,label\nhello there,a\nunlabelled one,\n")
    assert read(opts(p)).warnings == []


@pytest.mark.parametrize("value", ["5", '["x", "y"]', "true"])
def test_non_string_text_in_jsonl_names_the_line(tmp_path, value):
    p = tmp_path / "d.jsonl"
    p.write_text(f'{{"text": "fine", "label": "a"}}\n{{"text": {value}, "label": "b"}}\n')
    with pytest.raises(InputError, match=r"line 2: 'text' must be a string"):
        read(opts(p))


def test_non_string_text_column_in_parquet_is_an_error(tmp_path):
    p = tmp_path / "d.parquet"
    pl.DataFrame({"text": [1, 2], "label": ["a", "b"]}).write_parquet(p)
    with pytest.raises(InputError, match="holds Int64 values, not text"):
        read(opts(p))


def test_broken_jsonl_line_is_named(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"text": "a", "label": "a"}\n{"text": "b", "label": \n{"text": "c"}\n')
    with pytest.raises(InputError, match="line 2 is not valid JSON"):
        read(opts(p))


def test_gzip_compressed_csv_is_read(tmp_path):
    import gzip

    for name in ("d.csv", "e.csv.gz"):
        p = tmp_path / name
        p.write_bytes(gzip.compress(b"text,label\nhello there,a\n"))
        assert read(opts(p)).corpus["text"].to_list() == ["hello there"]


def test_missing_relative_path_is_not_sent_to_the_hub(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    with pytest.raises(InputError, match="does not exist"):
        read(ReadOptions(source="data/nothere"))


def test_hub_id_offline_is_one_error_without_retries(tmp_path, monkeypatch):
    pytest.importorskip("datasets")
    import time

    from assay.curate import read_hf

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(read_hf, "_hub_reachable", lambda timeout=3.0: False)
    started = time.perf_counter()
    with pytest.raises(InputError, match=r"not a local path.*Hub is not reachable"):
        read(ReadOptions(source="someone/no-such-dataset", config="sst2"))
    assert time.perf_counter() - started < 10
    import datasets
    import huggingface_hub.constants

    # offline only for that call
    assert datasets.config.HF_HUB_OFFLINE == huggingface_hub.constants.HF_HUB_OFFLINE


# -- Hugging Face conventions -----------------------------------------------------------------


def test_hugging_face_multilabel_class_labels_become_names(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict(
        {"text": ["a b", "c d"], "label": [[0, 1], [1]]},
        features=datasets.Features(
            {
                "text": datasets.Value("string"),
                "label": datasets.Sequence(datasets.ClassLabel(names=["joy", "anger"])),
            }
        ),
    )
    datasets.DatasetDict({"train": ds}).save_to_disk(str(tmp_path / "ds"))
    c = read(opts(tmp_path / "ds")).corpus
    assert c["label"].to_list() == [["joy", "anger"], ["anger"]]


def test_dataset_dict_output_follows_hub_conventions(tmp_path):
    datasets = pytest.importorskip("datasets")
    src = tmp_path / "d.csv"
    src.write_text("text,label,part\na b,x,train\nc d,y,test\ne f,x,dev\ng h,,train\n")
    corpus = read(opts(src, split_column="part")).corpus
    out = write(corpus, tmp_path / "hf", "hf")
    back = datasets.load_from_disk(str(out))
    assert sorted(back) == ["test", "train", "validation"]
    feature = back["train"].features["label"]
    assert isinstance(feature, datasets.ClassLabel) and feature.names == ["x", "y"]
    assert sorted(back["train"]["label"]) == [-1, 0]
    assert back["validation"].column_names == ["id", "text", "label"]
    every = datasets.load_from_disk(str(write(corpus, tmp_path / "hf2", "hf", hf_all_columns=True)))
    assert {"weight", "origin", "lang"} <= set(every["train"].column_names)


def test_multilabel_dataset_dict_output_uses_a_sequence_of_class_labels(tmp_path):
    datasets = pytest.importorskip("datasets")
    src = tmp_path / "d.csv"
    src.write_text("text,label\na b,x|y\nc d,y\n")
    corpus = read(opts(src, label_separator="|", split="train")).corpus
    back = datasets.load_from_disk(str(write(corpus, tmp_path / "hf", "hf")))
    feature = back["train"].features["label"]
    assert feature.feature.names == ["x", "y"]
    assert back["train"]["label"] == [[0, 1], [1]]
    again = read(opts(tmp_path / "hf", id_column="id")).corpus
    assert again["label"].to_list() == [["x", "y"], ["y"]]


def test_hub_options_select_config_split_and_data_files(tmp_path):
    pytest.importorskip("datasets")
    csv = tmp_path / "d.csv"
    csv.write_text("text,label\nhello,a\nthere,b\n")
    loaded = read(ReadOptions(source="csv", data_files={"train": str(csv)}, source_split="train"))
    assert loaded.corpus["text"].to_list() == ["hello", "there"]
    assert loaded.corpus["split"].to_list() == ["train", "train"]
    options = ReadOptions(source="nyu-mll/glue", config="sst2", revision="main")
    assert options.hub_options() == {"name": "sst2", "revision": "main"}


def test_unlabelled_rows_round_trip_through_a_dataset_dict(tmp_path):
    pytest.importorskip("datasets")
    src = tmp_path / "d.csv"
    src.write_text("text,label\na b,\nc d,\n")
    corpus = read(opts(src, split="test")).corpus
    back = read(opts(write(corpus, tmp_path / "hf", "hf"), id_column="id")).corpus
    assert back["label"].to_list() == [None, None]
