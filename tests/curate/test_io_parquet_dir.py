from __future__ import annotations

import polars as pl
import pytest

from assay import run
from assay.curate.dedup_exact import dedup_parquet
from assay.curate.io import ReadOptions, read
from assay.errors import InputError


@pytest.fixture
def parquet_dir(tmp_path):
    """Three Parquet files; rows 0-9 of the first file come back (re-spaced) in the third."""
    folder = tmp_path / "shards"
    folder.mkdir()
    texts = [f"review number {i} is {'good' if i % 2 else 'bad'}" for i in range(90)]
    labels = ["positive" if i % 2 else "negative" for i in range(90)]
    copies = [f"  {t}  " for t in texts[:10]]
    shards = [
        (texts[:30], labels[:30]),
        (texts[30:60], labels[30:60]),
        (texts[60:] + copies, labels[60:] + labels[:10]),
    ]
    offset = 0
    for k, (t, lab) in enumerate(shards):
        pl.DataFrame(
            {
                "id": [f"s{offset + j}" for j in range(len(t))],
                "text": t,
                "label": lab,
                "blob": ["x" * 100] * len(t),  # a column nobody asked for
            }
        ).write_parquet(folder / f"part-{k}.parquet")
        offset += len(t)
    (folder / "README.txt").write_text("not data")
    return folder


def test_a_directory_of_parquet_files_is_one_input_in_file_order(parquet_dir):
    loaded = read(ReadOptions(source=str(parquet_dir), id_column="id"))
    assert loaded.rows_read == 100
    assert loaded.corpus["id"].to_list() == [f"s{i}" for i in range(100)]
    assert "blob" not in loaded.corpus.columns
    again = read(ReadOptions(source=str(parquet_dir), id_column="id"))
    assert again.input_hash == loaded.input_hash
    (parquet_dir / "part-1.parquet").unlink()
    assert (
        read(ReadOptions(source=str(parquet_dir), id_column="id")).input_hash != loaded.input_hash
    )


def test_a_directory_without_a_text_column_is_a_one_line_input_error(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    pl.DataFrame({"body": ["a"]}).write_parquet(folder / "a.parquet")
    with pytest.raises(InputError, match="expected a text column 'text'"):
        read(ReadOptions(source=str(folder)))


def test_exact_dedup_of_a_parquet_directory_in_a_recipe_and_out_of_core(parquet_dir, tmp_path):
    recipe = {
        "name": "shards",
        "cache": False,
        "input": {"source": str(parquet_dir), "id_column": "id"},
        "steps": [{"clean": {}}, {"dedup": {"method": "exact"}}],
    }
    result = run(recipe, tmp_path / "run")
    dropped = pl.read_parquet(tmp_path / "run" / "dropped.parquet")
    assert sorted(dropped["id"].to_list()) == sorted(f"s{90 + j}" for j in range(10))
    assert result.manifest["accounting"]["rows_out"] == 90
    # the same rows, out of core, straight from the shards
    stats = dedup_parquet(parquet_dir, tmp_path / "kept.parquet", tmp_path / "gone.parquet")
    gone = pl.read_parquet(tmp_path / "gone.parquet")
    assert stats.dropped == 10
    assert sorted(gone["id"].to_list()) == sorted(dropped["id"].to_list())
    assert pl.read_parquet(tmp_path / "kept.parquet").height == 90
