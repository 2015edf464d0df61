"""Deterministic example ids.

Originals take the source's key where it has one, else a content hash of text and label;
repeats of the same content get a `.k` suffix in input order.

Derived rows (added by a step) are `"{parent_id}~{scope}.{op}{k}"`: `scope` is the
position of the step in its recipe, `op` the operation tag (`sr`, `ws`, `dvs`...) and `k`
numbers the rows of one (parent, op) in generation order. The scope makes ids unique by
construction across steps: two augmenters in one recipe (even the same one twice) never
name a row alike. Rows a step rejected carry a tag after the op
(`"{parent_id}~{scope}.{op}-rejected{k}"`, `-guard` for the label guard). Rows derived
outside a recipe's steps (the ablation's duplicate control) have no scope:
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


def _prefix(scope: int | str | None, tag: str | None) -> tuple[str, str]:
    return ("" if scope is None else f"{scope}."), ("" if not tag else f"-{tag}")


def derived_id(
    parent_id: str, op: str, k: int, scope: int | str | None = None, tag: str | None = None
) -> str:
    """The id of the k-th row derived from `parent_id` by `op` (see the module docstring)."""
    head, tail = _prefix(scope, tag)
    return f"{parent_id}~{head}{op}{tail}{k}"


def derived_id_expr(
    parent_id: pl.Expr,
    op: pl.Expr | str,
    k: pl.Expr,
    scope: int | str | None = None,
    tag: str | None = None,
) -> pl.Expr:
    """`derived_id` as a polars expression over columns."""
    head, tail = _prefix(scope, tag)
    op_expr = pl.lit(op) if isinstance(op, str) else op
    return pl.concat_str([parent_id, pl.lit(f"~{head}"), op_expr, pl.lit(tail), k.cast(pl.String)])


def derived_ids(
    parent_ids: pl.Series,
    op: pl.Series | str,
    k: pl.Series,
    scope: int | str | None = None,
    tag: str | None = None,
) -> pl.Series:
    frame = pl.DataFrame({"parent_id": parent_ids, "k": k})
    frame = frame.with_columns(op=pl.lit(op) if isinstance(op, str) else op)
    expr = derived_id_expr(pl.col("parent_id"), pl.col("op"), pl.col("k"), scope, tag)
    return frame.select(expr.alias("id")).to_series()
