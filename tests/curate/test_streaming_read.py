"""A Parquet directory read for a first step of exact dedup is deduplicated while it is
read: the run equals the run on the same rows loaded whole."""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

import polars as pl
import pytest

from assay import run
from assay.cache import StepCache
from assay.curate import streaming_read
from assay.errors import InputError
from assay.recipes.runner import run_recipe
from assay.recipes.schema import load_recipe

STREAMED = "exact dedup runs while reading"


def planted_rows() -> pl.DataFrame:
    """Reviews with planted copies: exact, re-spaced and re-cased (normalised), a copy with
    another label (a conflict), a dev copy of a train row, the same text and label three
    times (repeated content ids), and rows without text."""
    texts = [f"review {i}: the plot was {'good' if i % 2 else 'dull'}" for i in range(60)]
    labels = ["pos" if i % 2 else "neg" for i in range(60)]
    splits = ["train"] * 50 + ["dev"] * 5 + ["test"] * 5
    planted = [
        (texts[1], labels[1], "train"),  # exact copy, in a later file
        (f"  {texts[3].upper()}!! ", labels[3], "train"),  # normalised copy
        (texts[5], "neg", "train"),  # same text, other label
        (texts[7], labels[7], "dev"),  # a dev copy of a train row
        (texts[1], labels[1], "train"),  # a third copy of row 1
        ("", "pos", "train"),
        ("   ", "neg", "train"),
        ("", "pos", "train"),  # empty texts repeat too
        (texts[52], labels[52], "train"),  # a train copy of a dev row
    ]
    for t, lab, s in planted:
        texts.append(t)
        labels.append(lab)
        splits.append(s)
    return pl.DataFrame(
        {"ref": [f"r{i:03d}" for i in range(len(texts))], "text": texts, "label": labels}
    ).with_columns(split=pl.Series(splits))


def write_shards(rows: pl.DataFrame, folder: Path, sizes: list[int]) -> Path:
    folder.mkdir()
    start = 0
    for k, size in enumerate(sizes):
        rows.slice(start, size).write_parquet(folder / f"part-{k:02d}.parquet")
        start += size
    assert start == rows.height
    return folder


def recipe(source: Path, dedup: dict, **input_options: object) -> dict:
    return {
        "name": "streamed",
        "seed": 3,
        "cache": False,
        "input": {"source": str(source), "split_column": "split", **input_options},
        "steps": [{"dedup": {"method": "exact", **dedup}}, {"split": {"dev": 0.2, "test": 0.2}}],
    }


def outputs(path: Path) -> dict[str, pl.DataFrame]:
    return {
        str(f.relative_to(path)): pl.read_parquet(f).sort("id", maintain_order=True)
        for f in sorted(path.rglob("*.parquet"))
    }


def comparable(manifest: dict) -> dict:
    steps = [
        {k: v for k, v in s.items() if k not in ("seconds", "cached")} for s in manifest["steps"]
    ]
    return {
        "steps": steps,
        "accounting": manifest["accounting"],
        "drop_reasons": sorted(manifest["drop_reasons"], key=lambda r: (r["step"], r["reason"])),
        "splits": manifest["splits"],
        "labels": manifest["labels"],
    }


CONFIGS = [
    {},
    {"same_label_only": True, "keep": "longest", "splits": "within_split"},
    {"normalization": {"punctuation": False, "lowercase": False}, "conflicts": "drop_all"},
    {"keep": "keep_all", "splits": "ignore"},
]


@pytest.mark.parametrize("dedup", CONFIGS, ids=["default", "label", "strict_text", "keep_all"])
@pytest.mark.parametrize("id_column", [None, "ref"])
def test_a_streamed_parquet_directory_gives_the_run_a_whole_load_gives(
    tmp_path, caplog, monkeypatch, dedup, id_column
):
    monkeypatch.setattr(streaming_read, "BATCH_ROWS", 7)  # many batches per file
    rows = planted_rows() if id_column else planted_rows().drop("ref")
    shards = write_shards(rows, tmp_path / "shards", [25, 20, 24])
    whole = tmp_path / "whole.parquet"  # one small file, read whole
    rows.write_parquet(whole)
    options = {"id_column": id_column} if id_column else {}
    with caplog.at_level(logging.INFO, logger="assay.curate.streaming_read"):
        streamed = run(recipe(shards, dedup, **options), tmp_path / "streamed")
    assert any(STREAMED in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="assay.curate.streaming_read"):
        loaded = run(recipe(whole, dedup, **options), tmp_path / "loaded")
    assert not any(STREAMED in r.getMessage() for r in caplog.records)

    mine, theirs = outputs(tmp_path / "streamed"), outputs(tmp_path / "loaded")
    assert sorted(mine) == sorted(theirs)
    for name, frame in mine.items():
        assert frame.equals(theirs[name]), name
    assert comparable(streamed.manifest) == comparable(loaded.manifest)
    # the planted problems were found
    dropped = mine["dropped.parquet"]
    assert dropped.filter(pl.col("step") == "load").height == 3
    report = streamed.manifest["steps"][0]
    assert report["n_in"] == rows.height - 3
    if dedup.get("keep") != "keep_all":
        assert report["n_dropped"] >= 3
    if id_column is None:  # the repeated empty text and the third copy are numbered
        assert dropped["id"].str.contains(r"\.1$").sum() >= 1


def test_a_cached_streamed_dedup_is_not_recomputed(tmp_path, caplog):
    shards = write_shards(planted_rows(), tmp_path / "shards", [30, 39])
    spec = {**recipe(shards, {}), "cache": True}
    cache = StepCache(tmp_path / "cache")
    first = run_recipe(load_recipe(spec), tmp_path / "one", cache=cache)
    with caplog.at_level(logging.INFO, logger="assay.curate.streaming_read"):
        second = run_recipe(load_recipe(spec), tmp_path / "two", cache=cache)
    assert any("[cached]" in r.getMessage() for r in caplog.records)
    assert second.manifest["cached_steps"] == ["dedup", "split"]
    assert comparable(first.manifest) == comparable(second.manifest)
    mine, theirs = outputs(tmp_path / "one"), outputs(tmp_path / "two")
    for name, frame in mine.items():
        assert frame.equals(theirs[name]), name


@pytest.mark.parametrize("keep", ["first", "longest"])
def test_the_step_decides_on_text_keys_unless_it_compares_lengths(tmp_path, monkeypatch, keep):
    from assay.curate.dedup import DedupFilter

    seen: list[pl.Series] = []
    apply = DedupFilter.apply

    def spy(self, corpus, ctx=None):
        seen.append(corpus["text"])
        return apply(self, corpus, ctx)

    monkeypatch.setattr(DedupFilter, "apply", spy)
    rows = planted_rows()
    shards = write_shards(rows, tmp_path / "shards", [30, 39])
    result = run(recipe(shards, {"keep": keep}, id_column="ref"), tmp_path / "run")
    (texts,) = seen
    # every member of a cluster, and only those: the copies of rows 1, 3, 5, 7 and 52
    assert texts.len() == 11
    if keep == "longest":
        assert texts.is_in(rows["text"].implode()).all()
    else:  # the position of the first row of the text: row 1 three times, and so on
        assert sorted(texts.value_counts()["count"].to_list()) == [2, 2, 2, 2, 3]
        assert texts.str.contains(r"^\d+$").all()
        assert set(texts.to_list()) == {"1", "3", "5", "7", "52"}
    dropped = result.pipeline.dropped.filter(pl.col("step") == "dedup")
    expected = dict(rows.select("ref", "text").iter_rows())
    assert dropped.height >= 4
    assert all(expected[i] == t for i, t in dropped.select("id", "text").iter_rows())
    examples = result.manifest["steps"][0]["examples"]
    assert examples and all(expected[e["id"]] == e["text"] for e in examples)


def test_only_a_parquet_directory_read_for_exact_dedup_is_streamed(tmp_path):
    from assay.curate.clean import CleanTransform
    from assay.curate.dedup import DedupFilter
    from assay.curate.read_options import ReadOptions
    from assay.curate.streaming_read import streamed_source

    shards = write_shards(planted_rows(), tmp_path / "shards", [30, 39])
    single = tmp_path / "one.parquet"
    planted_rows().write_parquet(single)
    exact, near = DedupFilter(method="exact"), DedupFilter(method="minhash")
    assert streamed_source(ReadOptions(source=str(shards)), [exact]) == shards
    assert streamed_source(ReadOptions(source=str(shards), format="parquet"), [exact]) == shards
    assert streamed_source(ReadOptions(source=str(shards)), [near]) is None
    assert streamed_source(ReadOptions(source=str(shards)), [CleanTransform(), exact]) is None
    assert streamed_source(ReadOptions(source=str(shards)), []) is None
    assert streamed_source(ReadOptions(source=str(shards), format="hf"), [exact]) is None
    assert streamed_source(ReadOptions(source=str(single)), [exact]) is None


def test_ids_repeated_across_files_are_a_one_line_input_error(tmp_path):
    rows = planted_rows().with_columns(
        ref=pl.when(pl.int_range(pl.len()) == 40).then(pl.lit("r002")).otherwise(pl.col("ref"))
    )
    shards = write_shards(rows, tmp_path / "shards", [30, 39])
    with pytest.raises(InputError, match=r"id column 'ref' has 2 null or repeated values"):
        run(recipe(shards, {}, id_column="ref"), tmp_path / "run")


def test_limit_and_a_dedup_after_another_step_read_like_a_whole_load(tmp_path, caplog):
    rows = planted_rows()
    shards = write_shards(rows, tmp_path / "shards", [30, 39])
    limited = run(recipe(shards, {}, limit=40), tmp_path / "limited")
    assert limited.manifest["accounting"]["rows_read"] == 40
    spec = recipe(shards, {})
    spec["steps"].insert(0, {"clean": {}})
    with caplog.at_level(logging.INFO, logger="assay.curate.streaming_read"):
        after = run(spec, tmp_path / "after")
    assert not any(STREAMED in r.getMessage() for r in caplog.records)
    manifest = json.loads((tmp_path / "after" / "manifest.json").read_text())
    assert manifest["accounting"]["rows_read"] == rows.height
    assert after.manifest["accounting"]["balanced"]


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("ray") is None,
    reason="the 'ray' extra is not installed: pip install 'assay[ray]'",
)
def test_a_streamed_parquet_directory_on_ray_gives_the_local_whole_load_run(tmp_path):
    import ray

    rows = planted_rows()
    shards = write_shards(rows, tmp_path / "shards", [25, 20, 24])
    whole = tmp_path / "whole.parquet"
    rows.write_parquet(whole)
    local = run(recipe(whole, {}, id_column="ref"), tmp_path / "local")
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1")
    try:
        spec = {**recipe(shards, {}, id_column="ref"), "engine": {"ray": {"batch_size": 16}}}
        remote = run(spec, tmp_path / "ray")
    finally:
        ray.shutdown()
    assert remote.manifest["steps"][0]["summary"]["engine"] == "ray"
    mine, theirs = outputs(tmp_path / "local"), outputs(tmp_path / "ray")
    assert sorted(mine) == sorted(theirs)
    for name, frame in mine.items():
        assert frame.equals(theirs[name]), name
    assert remote.manifest["accounting"] == local.manifest["accounting"]
