"""Raw files on disk into plain tables of their own columns: CSV/TSV, JSONL, Label Studio
exports, a Parquet file or a directory of Parquet files. Doubts about what was read (short
rows, a repeated header) become notes; what cannot be read is one `InputError`."""

from __future__ import annotations

import gzip
import io as _io
import json
from pathlib import Path

import polars as pl

from assay.curate.corpus_map import mapped_columns
from assay.curate.labelstudio.export import read_export
from assay.curate.read_options import ReadOptions
from assay.errors import InputError, shorten
from assay.hashing import file_hash, json_hash

FILE_FORMATS = ("csv", "tsv", "jsonl", "labelstudio", "parquet")


def parquet_dir_hash(path: Path, options: ReadOptions) -> str:
    """The input key of a directory of Parquet files: its files' hashes and the options."""
    files = {p.name: file_hash(p) for p in parquet_files(path)}
    return json_hash({"files": files, "options": options.model_dump(mode="json")})


def parquet_files(path: Path) -> list[Path]:
    """The *.parquet files of a directory (sorted by name: that is the row order)."""
    return sorted(p for p in path.glob("*.parquet") if p.is_file()) if path.is_dir() else []


def read_file(path: Path, fmt: str, options: ReadOptions, notes: list[str]) -> pl.DataFrame:
    """Read a file (or a Parquet directory) in one of `FILE_FORMATS` into a plain table of
    its own columns; doubts are appended to `notes`."""
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
            raise InputError(f"cannot parse {str(path)!r} as {fmt}: {first_line(exc)}") from None
    elif fmt == "parquet" and path.is_dir():
        frame = scan_parquet_dir(path, options)
    elif fmt == "parquet":
        if not path.exists():
            raise InputError(f"input file {str(path)!r} does not exist")
        if path.stat().st_size == 0:
            raise InputError(f"input file {str(path)!r} is empty")
        try:
            frame = pl.read_parquet(path)
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise InputError(f"cannot read {str(path)!r} as parquet: {first_line(exc)}") from None
    else:
        raise InputError(f"unknown input format {fmt!r}")
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
                f"{str(path)!r} is gzip-compressed but cannot be decompressed ({first_line(exc)})"
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


def first_line(exc: BaseException) -> str:
    """The first line of an error from a library: enough for a one-line `InputError`."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def scan_parquet_dir(path: Path, options: ReadOptions) -> pl.DataFrame:
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
        raise InputError(f"cannot read {str(path)!r} as parquet: {first_line(exc)}") from None
