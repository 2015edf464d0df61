"""Data in and out: CSV/TSV, JSONL, Parquet, Hugging Face datasets, Label Studio exports.

`read(ReadOptions)` returns a corpus plus the rows it could not take (null or empty text),
each with a reason, so every input row is accounted for. Column and label mapping, multi-
label columns and given splits are handled here; making splits is the `split` step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import io as _io
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from assay import corpus as corpus_mod
from assay.atomic import atomic_path, write_parquet
from assay.curate.labelstudio.export import DEFAULT_RULE, LabelRule, read_export
from assay.errors import InputError, shorten
from assay.hashing import file_hash, json_hash
from assay.ids import content_ids
from assay.step import dropped_rows

log = logging.getLogger(__name__)

Format = Literal["auto", "csv", "tsv", "jsonl", "parquet", "hf", "labelstudio"]
WRITE_FORMATS = ("csv", "tsv", "jsonl", "parquet", "hf")
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "dev": "dev",
    "val": "dev",
    "valid": "dev",
    "validation": "dev",
    "development": "dev",
    "test": "test",
    "testing": "test",
    "unlabeled": "unlabeled",
    "unlabelled": "unlabeled",
}
LOAD_STEP = "load"


class ReadOptions(BaseModel):
    """Where the data is and how its columns map onto the corpus."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(
        description="a file or directory path, a dataset name from `assay data list`, or a Hugging Face id"
    )
    format: Format = Field("auto", description="input format; auto guesses from the path")
    text_column: str = Field("text", description="column holding the text")
    label_column: str | None = Field(
        "label", description="column holding the label(s); null for unlabelled data"
    )
    id_column: str | None = Field(
        None, description="column with unique example keys; content hashes if unset"
    )
    split_column: str | None = Field(
        None, description="column with train/dev/test; splits are kept as given"
    )
    group_column: str | None = Field(
        None, description="column naming the source document/author; splits keep groups together"
    )
    lang_column: str | None = Field(None, description="column with a BCP-47 language code per row")
    lang: str = Field("en", description="language of every row when lang_column is unset")
    split: str | None = Field(None, description="put every row in this split")
    labels: list[str] | None = Field(
        None, description="the declared label set; other labels are an error"
    )
    label_map: dict[str, str] | None = Field(
        None, description="rename raw label values, e.g. {'0': 'negative'}"
    )
    multilabel: bool = Field(
        False, description="labels are lists (or delimited strings with label_separator)"
    )
    label_separator: str | None = Field(
        None, description="split string labels on this separator (implies multilabel)"
    )
    encoding: str = Field("utf-8", description="text encoding of CSV/TSV/JSONL files, e.g. latin-1")
    strict: bool = Field(
        False, description="null or empty text is an error instead of a recorded drop"
    )
    limit: int | None = Field(None, ge=1, description="read only the first N rows")
    annotations: LabelRule = Field(
        DEFAULT_RULE,
        description="Label Studio exports: the label of a task with several annotations; "
        "latest (newest non-cancelled), majority (annotators' consensus; ties unlabelled) "
        "or all (majority, and every annotation kept in labelstudio__annotations)",
    )
    config: str | None = Field(
        None, description="Hugging Face dataset configuration name (`sst2` of nyu-mll/glue)"
    )
    source_split: str | None = Field(
        None, description="Hugging Face split(s) to read, e.g. train or train[:1000]; all if unset"
    )
    revision: str | None = Field(
        None, description="Hugging Face dataset revision: a branch, tag or commit"
    )
    data_files: str | list[str] | dict[str, str | list[str]] | None = Field(
        None,
        description="data files for a Hugging Face builder source (csv, json, parquet, text)",
    )

    def hub_options(self) -> dict[str, Any]:
        """The load_dataset arguments that are set."""
        given = {
            "name": self.config,
            "split": self.source_split,
            "revision": self.revision,
            "data_files": self.data_files,
        }
        return {k: v for k, v in given.items() if v is not None}


@dataclasses.dataclass
class Loaded:
    corpus: pl.DataFrame
    dropped: pl.DataFrame
    rows_read: int
    input_hash: str
    source: str
    # What was read but looks wrong (short rows, a repeated header...): in the manifest.
    warnings: list[str] = dataclasses.field(default_factory=list)


# -- reading --------------------------------------------------------------------------------


def read(options: ReadOptions) -> Loaded:
    """Read a source into a corpus; rows without text are dropped with a reason."""
    from assay.curate import datasets

    path = Path(options.source).expanduser()
    if not path.exists() and datasets.is_known(options.source):
        path = datasets.cached_path(options.source)
        if options.id_column is None:  # the datasets carry their source keys as ids
            options = options.model_copy(update={"id_column": "id"})
    fmt = (
        options.format
        if options.format != "auto"
        else "hf"
        if options.hub_options() and not path.exists()
        else guess_format(path, options.source)
    )
    notes: list[str] = []
    raw = read_raw(path if path.exists() else Path(options.source), fmt, options, notes)
    if options.limit is not None:
        raw = raw.head(options.limit)
    if path.is_file():
        input_hash = json_hash(
            {"file": file_hash(path), "options": options.model_dump(mode="json")}
        )
    elif fmt == "parquet" and path.is_dir():
        input_hash = parquet_dir_hash(path, options)
    else:
        from assay.hashing import frame_hash

        input_hash = json_hash(
            {"frame": frame_hash(raw), "options": options.model_dump(mode="json")}
        )
    corpus, dropped = to_corpus(raw, options)
    for note in notes:
        log.warning("%s", note)
    return Loaded(
        corpus,
        dropped,
        raw.height,
        input_hash,
        str(path if path.exists() else options.source),
        notes,
    )


def read_corpus(path: str | os.PathLike[str]) -> pl.DataFrame:
    """A corpus from a run directory (its corpus.parquet), a corpus parquet file, or any
    file or dataset `read` takes (then mapped with the default options)."""
    path = Path(path).expanduser()
    if path.is_dir():
        if (path / "corpus.parquet").exists():
            path = path / "corpus.parquet"
        elif not any((path / f).exists() for f in _HF_MARKERS):
            raise InputError(
                f"{str(path)!r} is neither a corpus parquet nor a run directory with "
                "corpus.parquet; pass a corpus file or the directory `assay run` wrote"
            )
    if path.suffix == ".parquet":
        try:
            frame = pl.read_parquet(path)
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise InputError(f"cannot read {str(path)!r} as parquet: {_first_line(exc)}") from None
        if "id" in frame.columns:  # already a corpus (a run's output), not raw data
            return corpus_mod.conform(frame)
    return read(ReadOptions(source=str(path))).corpus


_HF_MARKERS = ("dataset_dict.json", "dataset_info.json", "state.json")


def parquet_dir_hash(path: Path, options: ReadOptions) -> str:
    """The input key of a directory of Parquet files: its files' hashes and the options."""
    files = {p.name: file_hash(p) for p in parquet_files(path)}
    return json_hash({"files": files, "options": options.model_dump(mode="json")})


def parquet_files(path: Path) -> list[Path]:
    """The *.parquet files of a directory (sorted by name: that is the row order)."""
    return sorted(p for p in path.glob("*.parquet") if p.is_file()) if path.is_dir() else []


def guess_format(path: Path, source: str) -> str:
    if path.is_dir():
        return "parquet" if parquet_files(path) else "hf"
    suffix = (
        path.suffixes[-2].lower()
        if path.suffix.lower() in (".gz", ".gzip") and len(path.suffixes) >= 2
        else path.suffix.lower()
    )
    by_suffix = {
        ".csv": "csv",
        ".tsv": "tsv",
        ".tab": "tsv",
        ".jsonl": "jsonl",
        ".ndjson": "jsonl",
        ".parquet": "parquet",
        ".pq": "parquet",
        ".json": "labelstudio",
    }
    if suffix in by_suffix:
        return by_suffix[suffix]
    if not path.exists() and looks_like_hub_id(source):
        return "hf"
    if not path.exists():
        raise InputError(
            f"input {source!r} does not exist (and is not a dataset from `assay data list`)"
        )
    raise InputError(
        f"cannot tell the format of {source!r} from its name; set format to one of "
        "csv, tsv, jsonl, parquet, hf, labelstudio"
    )


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")


def looks_like_hub_id(source: str) -> bool:
    """`owner/name` with no local folder `owner`: a Hugging Face Hub id, not a missing path."""
    if not _HUB_ID.fullmatch(source) or ".." in source:
        return False
    return not Path(source.split("/", 1)[0]).exists()


def read_raw(
    path: Path, fmt: str, options: ReadOptions, notes: list[str] | None = None
) -> pl.DataFrame:
    """Read a file into a plain table of its own columns; doubts are appended to `notes`."""
    notes = notes if notes is not None else []
    if fmt in ("csv", "tsv", "jsonl", "labelstudio"):
        if not path.exists():
            raise InputError(f"input file {str(path)!r} does not exist")
        text = _decode(path, options.encoding)
        if not text.strip():
            raise InputError(f"input file {str(path)!r} is empty")
        data = text.encode("utf-8")
        try:
            if fmt in ("csv", "tsv"):
                frame = pl.read_csv(
                    _io.BytesIO(data),
                    separator="\t" if fmt == "tsv" else ",",
                    infer_schema=False,
                    quote_char=None if fmt == "tsv" else '"',
                    truncate_ragged_lines=False,
                )
                _check_header(path, data, fmt)
                notes.extend(_ragged_rows(path, text, fmt, frame))
            elif fmt == "jsonl":
                _check_jsonl(path, text, options.text_column)
                frame = pl.read_ndjson(_io.BytesIO(data), infer_schema_length=None)
            else:
                frame = read_export(
                    json.loads(text),
                    annotations=options.annotations,
                    text_key=options.text_column,
                    multilabel=options.multilabel,
                )
        except (pl.exceptions.PolarsError, json.JSONDecodeError) as exc:
            raise InputError(f"cannot parse {str(path)!r} as {fmt}: {_first_line(exc)}") from None
    elif fmt == "parquet" and path.is_dir():
        frame = _scan_parquet_dir(path, options)
    elif fmt == "parquet":
        if not path.exists():
            raise InputError(f"input file {str(path)!r} does not exist")
        if path.stat().st_size == 0:
            raise InputError(f"input file {str(path)!r} is empty")
        try:
            frame = pl.read_parquet(path)
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise InputError(f"cannot read {str(path)!r} as parquet: {_first_line(exc)}") from None
    elif fmt == "hf":
        frame = _read_hf(path, options)
    else:
        raise InputError(f"unknown input format {fmt!r}")
    if frame.height == 0:
        raise InputError(f"input {str(path)!r} has no rows")
    return frame


def _decode(path: Path, encoding: str) -> str:
    raw = path.read_bytes()
    if not raw:
        raise InputError(f"input file {str(path)!r} is empty")
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise InputError(
                f"{str(path)!r} is gzip-compressed but cannot be decompressed ({_first_line(exc)})"
            ) from None
    elif raw.startswith((b"\x28\xb5\x2f\xfd", b"PK\x03\x04")):
        raise InputError(
            f"{str(path)!r} is a compressed archive, not text; decompress it first "
            "(gzip-compressed files are read as they are)"
        )
    try:
        return raw.decode(encoding).removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(
            f"{str(path)!r} is not valid {encoding}: byte {raw[exc.start]:#04x} on line {line}; "
            "set the input's encoding (e.g. `encoding: latin-1` in the recipe's input)"
        ) from None
    except LookupError:
        raise InputError(f"unknown encoding {encoding!r}") from None


def _check_header(path: Path, data: bytes, fmt: str) -> None:
    """A column named twice is an error: which one would be the text?"""
    import csv

    first = data.split(b"\n", 1)[0].decode("utf-8").rstrip("\r")
    header = next(csv.reader([first], delimiter="\t" if fmt == "tsv" else ","), [])
    seen: dict[str, int] = {}
    for i, name in enumerate(header, 1):
        if name in seen:
            raise InputError(
                f"{str(path)!r}: the header names column {shorten(name)} twice (columns "
                f"{seen[name]} and {i}); rename one so each column has its own name"
            )
        seen[name] = i


def _ragged_rows(path: Path, text: str, fmt: str, frame: pl.DataFrame) -> list[str]:
    """Notes on rows with fewer fields than the header, and on repeated header lines."""
    import csv

    notes = []
    header = frame.columns
    repeated = frame.filter(pl.all_horizontal(pl.col(c) == pl.lit(c) for c in header)).height
    if repeated:
        notes.append(
            f"{str(path)!r}: {repeated} row(s) repeat the header line (files concatenated?); "
            "they are read as data"
        )
    if frame.width < 2 or frame.height == 0 or frame[header[-1]].null_count() == 0:
        return notes
    reader = csv.reader(
        _io.StringIO(text),
        delimiter="\t" if fmt == "tsv" else ",",
        quoting=csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL,
    )
    short, first = 0, None
    for record in reader:
        if record and len(record) < len(header):
            short += 1
            first = first or reader.line_num
    if short:
        notes.append(
            f"{str(path)!r}: {short} row(s) have fewer fields than the header's {len(header)} "
            f"(first on line {first}); their missing fields are read as empty (no label)"
        )
    return notes


def _check_jsonl(path: Path, text: str, text_key: str) -> None:
    """One error naming the line of a broken record or of a text that is not a string."""
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"{str(path)!r} line {number} is not valid JSON: {exc.msg} at column {exc.colno}"
            ) from None
        if not isinstance(record, dict):
            raise InputError(
                f"{str(path)!r} line {number}: each line must be a JSON object, got "
                f"{type(record).__name__}"
            )
        value = record.get(text_key)
        if value is not None and not isinstance(value, str):
            raise InputError(
                f"{str(path)!r} line {number}: {text_key!r} must be a string, got "
                f"{type(value).__name__} {shorten(value)}; fix the data or set text_column"
            )


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def source_names(options: ReadOptions) -> dict[str, str]:
    """Input column -> corpus column, for the columns the options map."""
    names = {
        options.text_column: "text",
        options.label_column: "label",
        options.id_column: "id",
        options.split_column: "split",
        options.group_column: "group",
        options.lang_column: "lang",
    }
    return {src: dst for src, dst in names.items() if src is not None}


def mapped_columns(path: Path, names: list[str], options: ReadOptions) -> list[str]:
    """The columns of `names` the options map onto the corpus; the text column must be one."""
    wanted = [
        options.text_column,
        options.label_column,
        options.id_column,
        options.split_column,
        options.group_column,
        options.lang_column,
    ]
    if options.text_column not in names:
        raise InputError(
            f"{str(path)!r}: expected a text column {options.text_column!r}, found "
            f"{shorten(names)}; set text_column"
        )
    return [c for c in dict.fromkeys(wanted) if c is not None and c in names]


def _scan_parquet_dir(path: Path, options: ReadOptions) -> pl.DataFrame:
    """A directory of Parquet files, scanned lazily: only the mapped columns are read
    (and only the first `limit` rows), with polars' streaming engine."""
    files = parquet_files(path)
    if not files:
        raise InputError(f"{str(path)!r} holds no *.parquet files; pass a file or such a directory")
    try:
        scan = pl.scan_parquet(files)
        used = mapped_columns(path, scan.collect_schema().names(), options)
        if options.limit is not None:
            scan = scan.head(options.limit)
        return scan.select(used).collect(engine="streaming")
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(f"cannot read {str(path)!r} as parquet: {_first_line(exc)}") from None


def _read_hf(path: Path, options: ReadOptions) -> pl.DataFrame:
    import importlib.util

    from assay.errors import require

    if not path.exists() and importlib.util.find_spec("datasets") is None:
        raise InputError(
            f"input {options.source!r} does not exist; to read it as a Hugging Face Hub id, "
            "pip install 'assay[hf]'"
        )
    datasets = require("datasets", "hf", "Hugging Face datasets")
    from assay.resources import quiet_datasets

    try:
        if path.exists():
            with quiet_datasets():
                ds = datasets.load_from_disk(str(path))
            if options.source_split is not None and isinstance(ds, datasets.DatasetDict):
                if options.source_split not in ds:
                    raise InputError(
                        f"{str(path)!r} has no split {options.source_split!r}; it has {sorted(ds)}"
                    )
                ds = datasets.DatasetDict({options.source_split: ds[options.source_split]})
        else:
            ds = _load_from_hub(datasets, options)
    except (FileNotFoundError, ValueError, OSError, ConnectionError) as exc:
        raise InputError(
            f"cannot load Hugging Face dataset {options.source!r}: {_first_line(exc)}"
        ) from None
    split = options.source_split
    parts = (
        ds.items()
        if isinstance(ds, (datasets.DatasetDict, dict))
        else [(split.split("[")[0] if split else options.split, ds)]
    )
    frames = []
    for split_name, part in parts:
        frame = pl.from_arrow(part.data.table)
        assert isinstance(frame, pl.DataFrame)
        frame = _class_names(frame, part.features, options.label_column)
        if split_name is not None and options.split_column is None:
            frame = frame.with_columns(pl.lit(split_name).alias("__split"))
        frames.append(frame)
    return pl.concat(frames, how="diagonal_relaxed")


def _class_names(frame: pl.DataFrame, features: Any, column: str | None) -> pl.DataFrame:
    """ClassLabel ids (and lists of them) become the class names."""
    feature = features.get(column or "")
    if feature is None or column not in frame.columns:
        return frame
    names = getattr(feature, "names", None)
    if names is not None:  # -1 (unlabelled) and ids past the names become null
        return frame.with_columns(
            pl.col(column).replace_strict(list(range(len(names))), names, default=None)
        )
    inner = getattr(feature, "feature", None)  # Sequence(ClassLabel) / List(ClassLabel)
    inner_names = getattr(inner, "names", None)
    if inner_names is not None and isinstance(frame.schema[column], pl.List):
        ids = list(range(len(inner_names)))
        return frame.with_columns(
            pl.col(column).list.eval(
                pl.element().replace_strict(ids, inner_names, default=None, return_dtype=pl.String)
            )
        )
    return frame


def _load_from_hub(datasets: Any, options: ReadOptions) -> Any:
    """load_dataset with the recipe's config/split/revision; offline, one line, no retries."""
    from assay.resources import quiet_datasets

    online = _hub_reachable()
    with _hub_call(offline=not online), quiet_datasets():
        try:
            return datasets.load_dataset(options.source, **options.hub_options())
        except (ConnectionError, OSError, ValueError) as exc:
            if online:
                raise
            raise InputError(
                f"{options.source!r} is not a local path, and cannot be loaded from the Hugging "
                "Face Hub: the Hub is not reachable from here and the dataset is not in the "
                f"local Hugging Face cache ({_first_line(exc)}); fix the path, or download the "
                "dataset where the Hub is reachable"
            ) from None


def _hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    from urllib.parse import urlsplit

    endpoint = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname or "", port), timeout=timeout).close()
    except OSError:
        return False
    return True


@contextlib.contextmanager
def _hub_call(offline: bool) -> Iterator[None]:
    """Offline mode and quiet Hub loggers for this one call; the previous state comes back."""
    import datasets
    import huggingface_hub.constants as hub_constants

    saved = (datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE)
    loggers = [logging.getLogger(n) for n in ("datasets", "huggingface_hub", "fsspec")]
    levels = [lg.level for lg in loggers]
    try:
        if offline:
            datasets.config.HF_HUB_OFFLINE = hub_constants.HF_HUB_OFFLINE = True
            for lg in loggers:
                lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            if offline:
                warnings.simplefilter("ignore")
            yield
    finally:
        datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE = saved
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def to_corpus(raw: pl.DataFrame, options: ReadOptions) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Map a raw table onto the corpus schema; returns (corpus, dropped rows)."""
    wanted = {
        "text_column": options.text_column,
        "label_column": options.label_column,
        "id_column": options.id_column,
        "split_column": options.split_column,
        "group_column": options.group_column,
        "lang_column": options.lang_column,
    }
    missing = {k: v for k, v in wanted.items() if v is not None and v not in raw.columns}
    if missing:
        what = ", ".join(f"{k}={v!r}" for k, v in missing.items())
        raise InputError(
            f"expected the column(s) {what}, but found only {raw.columns}; "
            "set text_column / label_column to the right names"
        )
    renames = source_names(options)
    # Source columns that collide with schema names but are not mapped are kept, prefixed.
    collisions = {
        c: f"source__{c}" for c in raw.columns if c in corpus_mod.SCHEMA and c not in renames
    }
    frame = raw.rename(collisions).rename(renames)
    if "__split" in frame.columns:
        frame = frame.rename({"__split": "split"})
    text_type = frame.schema["text"]
    if not (text_type in (pl.String, pl.Null, pl.Categorical) or isinstance(text_type, pl.Enum)):
        raise InputError(
            f"text column {options.text_column!r} holds {text_type} values, not text; "
            "set text_column to the column with the text"
        )
    frame = frame.with_columns(pl.col("text").cast(pl.String))
    if "label" not in frame.columns:
        frame = frame.with_columns(label=pl.lit(None, dtype=pl.String))
    frame = _labels(frame, options)
    if options.split is not None:
        frame = frame.with_columns(split=pl.lit(options.split))
    if "split" in frame.columns:
        frame = _splits(frame)
    if "lang" not in frame.columns:
        frame = frame.with_columns(lang=pl.lit(options.lang))
    for col in ("group", "id"):
        if col in frame.columns:
            frame = frame.with_columns(pl.col(col).cast(pl.String))
    if "id" in frame.columns:
        dup = frame.filter(pl.col("id").is_duplicated() | pl.col("id").is_null())
        if dup.height:
            raise InputError(
                f"id column {options.id_column!r} has {dup.height} null or repeated values, "
                f"e.g. {dup['id'].head(3).to_list()}; ids must be unique"
            )
    else:
        frame = frame.with_columns(
            id=pl.Series(content_ids(frame["text"].fill_null(""), frame["label"]))
        )
    corpus = corpus_mod.conform(frame)
    empty = pl.col("text").is_null() | (pl.col("text").str.strip_chars() == "")
    bad = corpus.filter(empty)
    if bad.height and options.strict:
        raise InputError(
            f"{bad.height} rows have null or empty text (first at row "
            f"{corpus.with_row_index().filter(empty)['index'][0] + 1}); drop strict to record them as dropped"
        )
    reasons = (
        pl.when(pl.col("text").is_null()).then(pl.lit("null_text")).otherwise(pl.lit("empty_text"))
    )
    dropped = dropped_rows(bad, LOAD_STEP, bad.select(reasons.alias("reason")).to_series())
    return corpus.filter(~empty), dropped


def _labels(frame: pl.DataFrame, options: ReadOptions) -> pl.DataFrame:
    label = frame["label"]
    multilabel = (
        options.multilabel
        or options.label_separator is not None
        or isinstance(label.dtype, pl.List)
    )
    if multilabel:
        if isinstance(label.dtype, pl.List):
            expr = pl.col("label").cast(pl.List(pl.String))
        else:
            sep = options.label_separator or "|"
            expr = (
                pl.col("label")
                .cast(pl.String)
                .str.split(sep)
                .list.eval(pl.element().str.strip_chars())
            )
        frame = frame.with_columns(expr.alias("label"))
        if options.label_map:
            frame = frame.with_columns(
                pl.col("label").list.eval(pl.element().replace(options.label_map))
            )
    else:
        frame = frame.with_columns(pl.col("label").cast(pl.String).str.strip_chars())
        if options.label_map:
            frame = frame.with_columns(pl.col("label").replace(options.label_map))
    if options.labels is not None:
        unknown = corpus_mod.unknown_labels(frame, options.labels)
        if unknown:
            raise InputError(
                f"labels {unknown[:10]} are not in the declared label set {options.labels}; "
                "fix the data, extend labels, or map them with label_map"
            )
    return frame


def _splits(frame: pl.DataFrame) -> pl.DataFrame:
    raw = pl.col("split").cast(pl.String).str.strip_chars().str.to_lowercase()
    frame = frame.with_columns(
        split=raw.replace_strict(SPLIT_ALIASES, default=None, return_dtype=pl.String),
        __raw_split=raw,
    )
    unknown = frame.filter(pl.col("split").is_null() & pl.col("__raw_split").is_not_null())
    if unknown.height:
        raise InputError(
            f"split values {unknown['__raw_split'].unique().sort().to_list()[:5]} are not known; "
            f"expected one of {sorted(SPLIT_ALIASES)}"
        )
    return frame.drop("__raw_split")


# -- writing --------------------------------------------------------------------------------


# Hugging Face names the dev split `validation`; the other split names are shared.
HF_SPLIT_NAMES = {"dev": "validation"}
HF_COLUMNS = ("id", "text", "label")


def write(
    corpus: pl.DataFrame,
    target: str | os.PathLike[str],
    fmt: str | None = None,
    *,
    hf_all_columns: bool = False,
) -> Path:
    """Write a corpus as csv, tsv, jsonl, parquet or a Hugging Face DatasetDict (atomically).

    The DatasetDict follows the Hub's conventions: one split per corpus split (dev is
    `validation`), the label as a `ClassLabel` (a list of them for multi-label), and only
    id, text and label unless `hf_all_columns`.
    """
    target = Path(target)
    fmt = fmt or {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".parquet": "parquet"}.get(
        target.suffix, "hf"
    )
    if fmt not in WRITE_FORMATS:
        raise InputError(f"cannot write format {fmt!r}; choose one of {list(WRITE_FORMATS)}")
    if fmt == "parquet":
        write_parquet(target, corpus)
    elif fmt in ("csv", "tsv"):
        flat = corpus.with_columns(
            [pl.col(c).list.join("|") for c, t in corpus.schema.items() if isinstance(t, pl.List)]
        )
        with atomic_path(target) as tmp:
            flat.write_csv(tmp, separator="\t" if fmt == "tsv" else ",")
    elif fmt == "jsonl":
        with atomic_path(target) as tmp:
            corpus.write_ndjson(tmp)
    else:
        _write_hf(corpus, target, hf_all_columns)
    return target


def to_dataset_dict(corpus: pl.DataFrame, all_columns: bool = False) -> Any:
    """The corpus as a `datasets.DatasetDict` with ClassLabel labels and Hub split names."""
    from assay.errors import require
    from assay.resources import quiet_datasets

    datasets = require("datasets", "hf", "writing a Hugging Face DatasetDict")
    names = corpus_mod.label_set(corpus)
    multilabel = corpus_mod.is_multilabel(corpus)
    ids = list(range(len(names)))
    if multilabel:
        label = (
            pl.col("label")
            .fill_null([])
            .list.eval(pl.element().replace_strict(names, ids, return_dtype=pl.Int64))
        )
        feature = datasets.Sequence(datasets.ClassLabel(names=names))
    else:
        # -1 is the Hub's mark of an unlabelled row (GLUE test splits).
        label = pl.col("label").replace_strict(names, ids, default=-1, return_dtype=pl.Int64)
        feature = datasets.ClassLabel(names=names)
    columns = [c for c in corpus.columns if c != "split"] if all_columns else list(HF_COLUMNS)
    parts = {}
    for split in corpus["split"].fill_null("train").unique().sort().to_list():
        part = corpus.filter(pl.col("split").fill_null("train") == split)
        table = part.with_columns(label.alias("label")).select(columns)
        with quiet_datasets():
            ds = datasets.Dataset(table.to_arrow()).cast_column("label", feature)
        parts[HF_SPLIT_NAMES.get(split, split)] = ds
    return datasets.DatasetDict(parts)


def _write_hf(corpus: pl.DataFrame, target: Path, all_columns: bool = False) -> None:
    dataset_dict = to_dataset_dict(corpus, all_columns)
    tmp = Path(
        tempfile.mkdtemp(
            prefix=f".{target.name}.", dir=target.parent if target.parent.exists() else None
        )
    )
    from assay.resources import quiet_datasets

    try:
        with quiet_datasets():
            dataset_dict.save_to_disk(str(tmp))
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
