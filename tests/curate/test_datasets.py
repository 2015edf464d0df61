from __future__ import annotations

import io
import tarfile

import polars as pl
import pytest

from assay.curate import datasets
from assay.errors import ResourceError


def _sdist(tmp_path):
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as tar:
        for member, lines in {
            "movieReviewSnippets_GroundTruth.txt": "1\t2.5\tA fine film\r\n2\t-1.2\tDull and long\r\n3\t0.0\tIt exists\r\n",
            "tweets_GroundTruth.txt": "1\t1.0\tyay\r\n",
        }.items():
            data = lines.encode()
            info = tarfile.TarInfo(f"hutto_ICWSM_2014/{member}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    outer_path = tmp_path / "vaderSentiment-3.3.2.tar.gz"
    with tarfile.open(outer_path, "w:gz") as tar:
        data = inner.getvalue()
        info = tarfile.TarInfo(f"vaderSentiment-3.3.2/{datasets.VADER_ARCHIVE}")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return outer_path


def test_vader_sets_parse_into_binary_labels_with_ratings(tmp_path):
    frames = datasets.parse_vader(_sdist(tmp_path))
    movies = frames["movieReviewSnippets_GroundTruth.txt"]
    assert movies["id"].to_list() == ["vader-movies/1", "vader-movies/2", "vader-movies/3"]
    assert movies["label"].to_list() == ["positive", "negative", "negative"]
    assert movies["mean_rating"].to_list() == [2.5, -1.2, 0.0]
    assert movies["text"].to_list()[0] == "A fine film"


def test_unfetched_and_unknown_datasets_say_what_to_do():
    with pytest.raises(ResourceError, match="assay data get vader-movies"):
        datasets.cached_path("vader-movies")
    with pytest.raises(ResourceError, match="did you mean 'vader-movies'"):
        datasets.info("vader-movie")


@pytest.mark.slow
@pytest.mark.integration
def test_fetch_real_vader_sets_from_the_package_index():
    try:
        path = datasets.get("vader-movies")
    except ResourceError as exc:
        pytest.skip(f"package index unreachable: {exc}")
    frame = pl.read_parquet(path)
    assert frame.height == 10605
    for name, info in datasets.DATASETS.items():
        assert pl.read_parquet(datasets.path_of(name)).height == info.rows
