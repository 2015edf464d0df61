"""Deterministic example ids.

Originals take the source's key where it has one, else a content hash of text and label;
repeats of the same content get a `.k` suffix in input order. Derived rows are
`"{parent_id}~{op}{k}"`.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl
import xxhash

ID_BYTES = 8  # 16 hex characters: collisions stay negligible far beyond 10^8 rows


def content_id(text: str, label: object = None) -> str:
    return xxhash.xxh3_64_hexdigest(f"{text}\x1f{label}".encode())


def content_ids(texts: Iterable[str], labels: Iterable[object] | None = None) -> list[str]:
    texts = list(texts)
    labels = list(labels) if labels is not None else [None] * len(texts)
    raw = [
        content_id(t, "|".join(lab) if isinstance(lab, list) else lab)
        for t, lab in zip(texts, labels, strict=True)
    ]
    return disambiguate(raw)


def disambiguate(ids: list[str]) -> list[str]:
    """Make repeated ids unique by appending `.k` to the k-th repeat, in order."""
    seen: dict[str, int] = {}
    out = []
    for i in ids:
        k = seen.get(i, 0)
        seen[i] = k + 1
        out.append(i if k == 0 else f"{i}.{k}")
    return out


def derived_id(parent_id: str, op: str, k: int) -> str:
    return f"{parent_id}~{op}{k}"


def derived_ids(parent_ids: pl.Series, op: pl.Series | str, k: pl.Series) -> pl.Series:
    op_expr = pl.lit(op) if isinstance(op, str) else pl.col("op")
    frame = pl.DataFrame({"parent_id": parent_ids, "k": k})
    if not isinstance(op, str):
        frame = frame.with_columns(op=op)
    return frame.select(
        pl.concat_str([pl.col("parent_id"), pl.lit("~"), op_expr, pl.col("k").cast(pl.String)])
    ).to_series()
