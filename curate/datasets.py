"""Real labelled datasets that a fresh machine can fetch from a package registry.

The human-rated sentence sets of Hutto & Gilbert (ICWSM 2014) ship in the source
distribution of `vaderSentiment==3.3.2` (MIT licence): `assay data get vader-movies`
downloads it once with pip and caches each set as a corpus. Binary labels come from the mean
rating of the raters (positive when > 0); the rating is kept as `mean_rating`.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import polars as pl

from assay.atomic import write_parquet
from assay.errors import ResourceError
from assay.resources import home

log = logging.getLogger(__name__)

VADER_DIST = "vaderSentiment==3.3.2"
VADER_ARCHIVE = "additional_resources/hutto_ICWSM_2014.tar.gz"


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    name: str
    rows: int
    description: str
    member: str  # file inside the ICWSM archive


DATASETS = {
    d.name: d
    for d in (
        DatasetInfo(
            "vader-movies",
            10605,
            "movie-review sentences, mean of 20 human ratings",
            "movieReviewSnippets_GroundTruth.txt",
        ),
        DatasetInfo(
            "vader-tweets", 4200, "tweets, mean of 20 human ratings", "tweets_GroundTruth.txt"
        ),
        DatasetInfo(
            "vader-amazon",
            3708,
            "Amazon product-review sentences, mean of 20 human ratings",
            "amazonReviewSnippets_GroundTruth.txt",
        ),
        DatasetInfo(
            "vader-nyt",
            5190,
            "New York Times editorial sentences, mean of 20 human ratings",
            "nytEditorialSnippets_GroundTruth.txt",
        ),
    )
}
LABELS = ["negative", "positive"]


def data_dir() -> Path:
    return home() / "data"


def is_known(name: str) -> bool:
    return name in DATASETS


def path_of(name: str) -> Path:
    return data_dir() / f"{name}.parquet"


def cached_path(name: str) -> Path:
    """The cached corpus of a dataset; one clear error if it has not been fetched."""
    info(name)
    path = path_of(name)
    if not path.exists():
        raise ResourceError(f"dataset {name!r} is not fetched yet: run `assay data get {name}`")
    return path


def info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        from assay.registry import suggest

        raise ResourceError(
            f"unknown dataset {name!r}{suggest(name, DATASETS)}; see `assay data list`"
        )
    return DATASETS[name]


def get(name: str, force: bool = False) -> Path:
    """Fetch (once) and cache a dataset; returns the path of its corpus parquet."""
    info(name)
    if path_of(name).exists() and not force:
        return path_of(name)
    with tempfile.TemporaryDirectory(prefix="assay-data-") as tmp:
        sdist = _download_vader(Path(tmp))
        for member, frame in parse_vader(sdist).items():
            target = next(d for d in DATASETS.values() if d.member == member)
            write_parquet(path_of(target.name), frame)
            log.info("cached %s (%d rows)", target.name, frame.height)
    return path_of(name)


def _download_vader(where: Path) -> Path:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        VADER_DIST,
        "-d",
        str(where),
        "-q",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    archives = list(where.glob("vaderSentiment-*.tar.gz"))
    if proc.returncode != 0 or not archives:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no archive"]
        raise ResourceError(f"could not download {VADER_DIST} from the package index: {detail[0]}")
    return archives[0]


def parse_vader(sdist: Path) -> dict[str, pl.DataFrame]:
    """The VADER data sets in the vaderSentiment sdist at `sdist`, by member file name: one
    corpus each (ids, binary labels, mean ratings), as `get` stores them."""
    with tarfile.open(sdist) as outer:
        inner_member = next(m for m in outer.getmembers() if m.name.endswith(VADER_ARCHIVE))
        inner_bytes = outer.extractfile(inner_member).read()  # type: ignore[union-attr]
    frames = {}
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
        for m in inner.getmembers():
            base = m.name.rsplit("/", 1)[-1]
            if any(d.member == base for d in DATASETS.values()):
                text = inner.extractfile(m).read().decode("utf-8")  # type: ignore[union-attr]
                frames[base] = _vader_corpus(base, text)
    return frames


def _vader_corpus(member: str, text: str) -> pl.DataFrame:
    name = next(d.name for d in DATASETS.values() if d.member == member)
    ids, ratings, texts = [], [], []
    for line in text.splitlines():
        if not line.strip():
            continue
        key, rating, sentence = line.split("\t", 2)
        ids.append(f"{name}/{key.strip()}")
        ratings.append(float(rating))
        texts.append(sentence.strip())
    frame = pl.DataFrame({"id": ids, "text": texts, "mean_rating": ratings})
    frame = frame.with_columns(
        label=pl.when(pl.col("mean_rating") > 0)
        .then(pl.lit("positive"))
        .otherwise(pl.lit("negative"))
    )
    return frame.select("id", "text", "label", "mean_rating")


def list_datasets() -> list[dict[str, object]]:
    return [
        {
            "name": d.name,
            "rows": d.rows,
            "labels": LABELS,
            "description": d.description,
            "cached": path_of(d.name).exists(),
        }
        for d in DATASETS.values()
    ]
