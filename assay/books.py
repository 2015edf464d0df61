"""The books: one place where a step's decision becomes a new corpus and its records.

Every kind of step returns a `Changes` (columns to set, rows to drop, rows to add,
findings, summary); `record` applies it and keeps all the books:

- columns are attached by `id`; core fields (`text`, `label`, `split`, `weight`) replace
  the row's value and every change is a lineage row (id, step, field, before, after);
  other columns must be namespaced `<step>__<field>`;
- dropped rows go to dropped.parquet with the step and a reason;
- added rows go through the one adoption path (`adopt`): parent fields inherited, texts
  empty, identical to the parent or to another row rejected, the step's own rejection
  rule (`reject`), `max_per_row` and a cap on added rows applied, ids derived by
  `assay.ids`, and every rejected row recorded with its reason;
- the report gets counts, examples and the summary.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import polars as pl

from assay import corpus as corpus_mod
from assay.context import RunContext
from assay.errors import StepError
from assay.ids import derived_id_expr

DROP_COLUMNS = ("step", "reason", "generated")
N_EXAMPLES = 5
EDITABLE = ("text", "label", "split", "weight")  # core fields a step may set on its rows
INHERITED = ("label", "split", "weight", "lang", "group")  # what added rows take from a parent
# What added rows may bring themselves. `origin` is a detail the books append to the step's
# name: `augment.generate:paraphrase:smollm2`, `augment.translate_train:translate_test`.
_OWN = ("parent_id", "text", "op", "label", "lang", "origin")
LINEAGE_SCHEMA = {
    "id": pl.String,
    "step": pl.String,
    "field": pl.String,
    "before": pl.String,
    "after": pl.String,
}


@dataclasses.dataclass
class StepReport:
    step: str
    kind: str
    index: int = 0
    n_in: int = 0
    n_out: int = 0
    n_dropped: int = 0
    n_added: int = 0
    n_modified: int = 0
    n_rejected: int = 0
    seconds: float = 0.0
    engine_seconds: float = 0.0  # of `seconds`, waiting on the Ray engine
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    seed: int | None = None
    cached: bool = False
    drop_reasons: dict[str, int] = dataclasses.field(default_factory=dict)
    summary: dict[str, Any] = dataclasses.field(default_factory=dict)
    examples: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StepReport:
        return cls(**data)

    def _repr_html_(self) -> str:
        from assay.html import STEP_COLUMNS, html_table

        notes = [f"dropped as {reason}: {n}" for reason, n in self.drop_reasons.items()]
        return html_table([self.to_dict()], STEP_COLUMNS, title=self.step, notes=notes)


@dataclasses.dataclass
class StepResult:
    corpus: pl.DataFrame
    report: StepReport
    dropped: pl.DataFrame | None = None
    findings: pl.DataFrame | None = None
    lineage: pl.DataFrame | None = None

    def _repr_html_(self) -> str:
        return self.report._repr_html_()


@dataclasses.dataclass
class Keep:
    """Which rows stay. `mask` is in corpus row order; `reason` is read where False.

    `columns` (with an `id` column) adds namespaced columns to every row, kept or dropped.
    """

    mask: np.ndarray | pl.Series | Sequence[bool]
    reason: str | pl.Series | Sequence[str | None] = "filtered"
    columns: pl.DataFrame | None = None
    findings: pl.DataFrame | None = None
    summary: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Findings:
    """What an Audit found: per-row columns (joined by `id`) and a findings table."""

    columns: pl.DataFrame | None = None
    findings: pl.DataFrame | None = None
    summary: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Changes:
    """What a step decided, applied by the books in this order.

    - `columns`: a frame with `id` and core fields to set (`text`, `label`, `split`,
      `weight`) and/or namespaced `<step>__<field>` columns; rows absent from it keep
      their core fields (and get nulls in the namespaced columns).
    - `keep`: rows to drop (mask in corpus row order, after `columns` are set).
    - `added`: new rows (`parent_id`, `text`, optional `op`, `label`, `lang`, namespaced
      columns), adopted from `parents` (default: the kept rows), at most `max_per_row`
      accepted per parent and `max_added` in all (the rest chosen at random and dropped
      as `over_budget`).
    - `findings`: a table for findings/NN_<step>.parquet; `summary`: the report summary.
    """

    columns: pl.DataFrame | None = None
    keep: Keep | None = None
    added: pl.DataFrame | None = None
    findings: pl.DataFrame | None = None
    summary: dict[str, Any] = dataclasses.field(default_factory=dict)
    parents: pl.DataFrame | None = None
    max_per_row: int | None = None
    max_added: int | None = None
    # Added rows may repeat their parent's text (oversampling): then only empty texts are
    # rejected, and the copies still get their own derived ids and lineage to the parent.
    copies: bool = False


@dataclasses.dataclass
class Rejections:
    """A step's own rule for added rows: a reason per candidate (None: accepted).

    `columns` (aligned with the candidates, no `id`) are kept on accepted and rejected
    rows alike, e.g. the score behind the decision; rejected rows get ids tagged `tag`
    (not "rejected", the tag of the adoption's own rejections).
    """

    reason: pl.Series | Sequence[str | None]
    columns: pl.DataFrame | None = None
    tag: str = "rule"
    summary: dict[str, Any] = dataclasses.field(default_factory=dict)


RejectRule = Callable[[pl.DataFrame, pl.DataFrame, pl.DataFrame, RunContext], Rejections | None]


def dropped_rows(
    rows: pl.DataFrame, step: str, reason: str | pl.Series, generated: bool = False
) -> pl.DataFrame:
    """`rows` with the columns dropped.parquet adds: step, reason, generated."""
    reason_col = pl.lit(reason, dtype=pl.String) if isinstance(reason, str) else reason
    return rows.with_columns(
        pl.lit(step).alias("step"),
        reason_col.alias("reason"),
        pl.lit(generated).alias("generated"),
    )


def attach_columns(corpus: pl.DataFrame, extra: pl.DataFrame) -> pl.DataFrame:
    """Add `extra`'s columns to `corpus` by id (replacing same-named ones)."""
    corpus = corpus.drop([c for c in extra.columns if c != "id" and c in corpus.columns])
    if extra.height == corpus.height and extra["id"].equals(corpus["id"]):
        return corpus.hstack(extra.drop("id"))  # same rows in the same order: no join needed
    return corpus.join(extra, on="id", how="left", maintain_order="left")


def check_step_columns(
    step: str, frame: pl.DataFrame, where: str, allowed: Sequence[str] = ()
) -> None:
    """Columns a step adds are `id`, `allowed` core fields, or named `<step>__<field>`."""
    bad = [
        c for c in frame.columns if c != "id" and c not in allowed and not c.startswith(f"{step}__")
    ]
    if bad:
        also = f" (or one of the core fields {list(allowed)})" if allowed else ""
        raise StepError(
            f"step {step!r} {where} columns {bad}: step columns must be named "
            f"'{step}__<field>'{also}"
        )


def partition(corpus: pl.DataFrame, step: str, keep: Keep) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split `corpus` by a Keep decision into (kept, dropped-with-reasons)."""
    mask = pl.Series("keep", np.asarray(keep.mask, dtype=bool))
    if len(mask) != corpus.height:
        raise StepError(f"step {step!r} returned a mask of {len(mask)} rows for {corpus.height}")
    if keep.columns is not None:
        extra = keep.columns
        if "id" not in extra.columns:
            raise StepError(f"step {step!r} returned columns without an 'id' column")
        corpus = attach_columns(corpus, extra)
    if isinstance(keep.reason, str):
        reasons = pl.Series("reason", [keep.reason] * corpus.height, dtype=pl.String)
    else:
        reasons = pl.Series("reason", list(keep.reason), dtype=pl.String)
    kept = corpus.filter(mask)
    gone = corpus.filter(~mask)
    reason = reasons.filter(~mask).fill_null("filtered")
    return kept, dropped_rows(gone, step, reason)


def _as_text(values: pl.Series) -> pl.Series:
    """Lineage values as strings: list labels as JSON arrays, weights as decimals."""
    if isinstance(values.dtype, pl.List):
        return pl.Series(
            [None if v is None else json.dumps(list(v)) for v in values.to_list()],
            dtype=pl.String,
        )
    return values.cast(pl.String)


def set_columns(
    step: str, corpus: pl.DataFrame, columns: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Attach `columns` by id: (new corpus, lineage of changed core fields, rows changed)."""
    if "id" not in columns.columns:
        raise StepError(f"step {step!r} returned columns without an 'id' column")
    check_step_columns(step, columns, "set", EDITABLE)
    if columns["id"].is_duplicated().any():
        dup = columns.filter(columns["id"].is_duplicated())["id"].head(3).to_list()
        raise StepError(f"step {step!r} set columns of the same id twice, e.g. {dup}")
    whole = columns.height == corpus.height and columns["id"].equals(corpus["id"])
    if not whole:
        unknown = columns.filter(~pl.col("id").is_in(corpus["id"].implode()))
        if unknown.height:
            raise StepError(
                f"step {step!r} set columns of ids that are not in the corpus, e.g. "
                f"{unknown['id'].head(3).to_list()}"
            )
    core = [c for c in EDITABLE if c in columns.columns]
    own = [c for c in columns.columns if c != "id" and c not in core]
    out = attach_columns(corpus, columns.select("id", *own)) if own else corpus
    empty = pl.DataFrame(schema=LINEAGE_SCHEMA)
    if not core:
        return out, empty, 0
    dtypes = {c: corpus.schema[c] for c in core}
    values = columns.select("id", *[pl.col(c).cast(dtypes[c]) for c in core])
    if whole:
        new = values
    else:
        hit = values.with_columns(_hit=pl.lit(True))
        joined = corpus.select("id", *core).join(
            hit, on="id", how="left", maintain_order="left", suffix="_new"
        )
        new = joined.select(
            "id",
            *[
                pl.when(pl.col("_hit").fill_null(False))
                .then(pl.col(f"{c}_new"))
                .otherwise(pl.col(c))
                .alias(c)
                for c in core
            ],
        )
    changed_any = np.zeros(corpus.height, dtype=bool)
    parts = []
    for field in core:
        before, after = corpus[field], new[field]
        changed = before.ne_missing(after)
        n = int(changed.sum())
        if not n:
            continue
        changed_any |= changed.to_numpy()
        parts.append(
            pl.DataFrame(
                {
                    "id": corpus["id"].filter(changed),
                    "step": pl.Series([step] * n, dtype=pl.String),
                    "field": pl.Series([field] * n, dtype=pl.String),
                    "before": _as_text(before.filter(changed)),
                    "after": _as_text(after.filter(changed)),
                },
                schema=LINEAGE_SCHEMA,
            )
        )
    out = out.with_columns([new[c].alias(c) for c in core])
    lineage = pl.concat(parts) if parts else empty
    return out, lineage, int(changed_any.sum())


def _origin(step: str, rows: pl.DataFrame) -> pl.Expr:
    """`augment.<step>`, with the row's own detail (operation, backend, model) after a colon."""
    base = pl.lit(f"augment.{step}")
    if "origin" not in rows.columns:
        return base
    detail = pl.col("origin").cast(pl.String)
    return (
        pl.when(detail.is_not_null() & (detail != ""))
        .then(pl.concat_str([base, detail], separator=":"))
        .otherwise(base)
    )


def adopt(
    step: str,
    corpus: pl.DataFrame,
    parents: pl.DataFrame,
    new: pl.DataFrame,
    ctx: RunContext,
    *,
    op: str,
    max_per_row: int | None = None,
    reject: RejectRule | None = None,
    copies: bool = False,
) -> tuple[pl.DataFrame, list[pl.DataFrame], dict[str, Any]]:
    """Give new rows ids and their parent's fields; reject what must not join the corpus.

    Returns (accepted rows shaped like the corpus, rejected rows for dropped.parquet,
    summary). Rows identical to their parent are rejected before the step's own rule
    sees them; the rule runs before the duplicate checks and `max_per_row`, so the cap
    counts only rows that passed. With `copies`, texts equal to the parent's or to another
    row's are accepted (oversampling).
    """
    if "parent_id" not in new.columns or "text" not in new.columns:
        raise StepError(f"step {step!r} must return added rows with parent_id and text columns")
    check_step_columns(step, new.select([c for c in new.columns if c not in _OWN]), "generated")
    if "op" not in new.columns:
        new = new.with_columns(op=pl.lit(op))
    new = new.with_columns(pl.col("text").cast(pl.String), pl.col("op").cast(pl.String))
    parent_cols = parents.select(
        pl.col("id").alias("parent_id"),
        *[pl.col(c).alias(f"_parent_{c}") for c in [*INHERITED, "text"]],
    )
    new = new.join(parent_cols, on="parent_id", how="left", maintain_order="left")
    orphans = new.filter(pl.col("_parent_text").is_null())
    if orphans.height:
        raise StepError(
            f"step {step!r} returned rows whose parent_id is not a selected row, "
            f"e.g. {orphans['parent_id'].head(3).to_list()}"
        )
    own = [c for c in ("label", "lang") if c in new.columns]
    text = pl.col("text")
    new = new.with_columns(
        *[pl.col(c).fill_null(pl.col(f"_parent_{c}")).alias(c) for c in own],
        *[pl.col(f"_parent_{c}").alias(c) for c in INHERITED if c not in own],
        _row=pl.int_range(pl.len()),
        _same=(text.str.strip_chars() == pl.col("_parent_text").str.strip_chars()).fill_null(False)
        & pl.lit(not copies),
    )
    scratch = [c for c in new.columns if c.startswith("_parent_")]
    rule = None
    if reject is not None and new.height:
        candidates = new.filter(~pl.col("_same")).drop(*scratch, "_row", "_same")
        rule = reject(candidates, parents, corpus, ctx)
    tag = "rule"
    summary: dict[str, Any] = {}
    new = new.with_columns(_rule=pl.lit(None, dtype=pl.String))
    if rule is not None:
        candidates = new.filter(~pl.col("_same")).select("_row")
        reason = pl.Series("_rule", list(rule.reason), dtype=pl.String)
        if len(reason) != candidates.height:
            raise StepError(
                f"step {step!r} judged {len(reason)} added rows for {candidates.height}"
            )
        judged = candidates.with_columns(reason)
        if rule.columns is not None:
            check_step_columns(step, rule.columns, "scored")
            judged = judged.hstack(rule.columns)
        new = new.drop("_rule").join(judged, on="_row", how="left", maintain_order="left")
        if rule.tag == "rejected":
            raise StepError(f"step {step!r}: a rejection rule's tag must not be 'rejected'")
        tag = rule.tag
        summary.update(rule.summary)
    failed = new.filter(pl.col("_rule").is_not_null())
    passed = new.filter(pl.col("_rule").is_null())
    existing = corpus["text"].unique() if not copies else pl.Series("text", [], pl.String)
    repeated = pl.lit(False) if copies else text.cum_count().over("text") > 1
    passed = passed.with_columns(
        reason=pl.when(text.is_null() | (text.str.strip_chars() == ""))
        .then(pl.lit("empty_text"))
        .when(pl.col("_same"))
        .then(pl.lit("identical_to_parent"))
        .when(text.is_in(existing.implode()))
        .then(pl.lit("duplicate_of_existing_row"))
        .when(repeated)
        .then(pl.lit("duplicate_of_generated_row"))
        .otherwise(pl.lit(None, dtype=pl.String))
    )
    if max_per_row is not None:
        ok = pl.col("reason").is_null()
        rank = ok.cast(pl.Int32).cum_sum().over("parent_id")
        passed = passed.with_columns(
            reason=pl.when(ok & (rank > max_per_row))
            .then(pl.lit("over_max_per_row"))
            .otherwise(pl.col("reason"))
        )
    label_type = corpus_mod.label_dtype(corpus)
    scratch += ["_row", "_same", "_rule", "reason", "k"]

    def shaped(rows: pl.DataFrame, tag: str | None) -> pl.DataFrame:
        # k numbers rows per (parent, op) in generation order: stable ids.
        rows = rows.with_columns(k=pl.int_range(pl.len()).over(["parent_id", "op"]))
        rows = rows.with_columns(
            id=derived_id_expr(pl.col("parent_id"), pl.col("op"), pl.col("k"), ctx.step_index, tag),
            origin=_origin(step, rows),
            label=pl.col("label").cast(label_type),
        ).rename({"op": f"{step}__op"})
        return corpus_mod.conform(rows.drop([c for c in scratch if c in rows.columns]))

    added = shaped(passed.filter(pl.col("reason").is_null()), None)
    base_rejected = passed.filter(pl.col("reason").is_not_null())
    rejected: list[pl.DataFrame] = []
    if base_rejected.height:
        rejected.append(
            dropped_rows(
                shaped(base_rejected, "rejected"), step, base_rejected["reason"], generated=True
            )
        )
    if failed.height:
        rejected.append(dropped_rows(shaped(failed, tag), step, failed["_rule"], generated=True))
    counts = base_rejected.group_by("reason").len()
    summary = {
        "rejected": dict(zip(counts["reason"].to_list(), counts["len"].to_list(), strict=True)),
        **summary,
    }
    return added, rejected, summary


def record(step: Any, corpus: pl.DataFrame, ctx: RunContext, changes: Changes) -> StepResult:
    """Apply `changes` to `corpus` and keep the books: the StepResult of `step`."""
    name = step.name
    out = corpus
    summary: dict[str, Any] = {}
    lineage: pl.DataFrame | None = None
    n_modified = 0
    findings = changes.findings
    dropped: list[pl.DataFrame] = []
    if changes.columns is not None:
        out, lineage, n_modified = set_columns(name, out, changes.columns)
    if changes.keep is not None:
        keep = changes.keep
        if keep.columns is not None:
            check_step_columns(name, keep.columns, "added")
        out, gone = partition(out, name, keep)
        dropped.append(gone)
        summary.update(keep.summary)
        if findings is None:
            findings = keep.findings
    added: pl.DataFrame | None = None
    parents = changes.parents if changes.parents is not None else out
    if changes.added is not None:
        added, rejected, adopted = adopt(
            name,
            out,
            parents,
            changes.added,
            ctx,
            op=step.op,
            max_per_row=changes.max_per_row,
            reject=step.reject,
            copies=changes.copies,
        )
        summary.update(adopted)
        dropped.extend(rejected)
        cap = changes.max_added
        if cap is not None and added.height > cap:
            pick = np.sort(ctx.rng("budget").choice(added.height, size=cap, replace=False))
            chosen = np.zeros(added.height, dtype=bool)
            chosen[pick] = True
            over = added.filter(~pl.Series(chosen))
            dropped.append(dropped_rows(over, name, "over_budget", generated=True))
            added = added.filter(pl.Series(chosen))
        if added.height:
            out = pl.concat([out, added], how="diagonal_relaxed")
    summary.update(changes.summary)
    gone = pl.concat(dropped, how="diagonal_relaxed") if dropped else None
    examples = _examples(parents, added, lineage, gone)
    report = StepReport(
        step=name,
        kind=step.kind,
        n_added=added.height if added is not None else 0,
        n_modified=n_modified,
        summary=summary,
        examples=examples,
    )
    return StepResult(out, report, dropped=gone, findings=findings, lineage=lineage)


def _examples(
    parents: pl.DataFrame,
    added: pl.DataFrame | None,
    lineage: pl.DataFrame | None,
    dropped: pl.DataFrame | None,
) -> list[dict[str, Any]]:
    """A few rows of what the step did: added rows, else changed fields, else drops."""
    if added is not None and added.height:
        texts = parents.select(pl.col("id").alias("parent_id"), pl.col("text").alias("parent_text"))
        return (
            added.head(N_EXAMPLES)
            .join(texts, on="parent_id", how="left", maintain_order="left")
            .select("id", "parent_text", "text")
            .to_dicts()
        )
    if lineage is not None and lineage.height:
        return lineage.select("id", "field", "before", "after").head(N_EXAMPLES).to_dicts()
    if dropped is not None and dropped.height:
        inputs = dropped.filter(~pl.col("generated"))
        return inputs.select("id", "text", "reason").head(N_EXAMPLES).to_dicts()
    return []
