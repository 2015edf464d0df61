"""The step contract and the base classes that keep the books.

A step is a registered class with a frozen pydantic `Config` and one method that a base
class calls:

- `Filter.keep(corpus, ctx) -> Keep`: a keep mask and reasons; the base records every
  dropped row with the step and reason.
- `Transform.rewrite(corpus, ctx) -> pl.Series`: new text for every row; the base records
  which ids changed and keeps the old text in the lineage. A Transform may also define
  `keep` (cleaning both rewrites and drops).
- `Augmenter.generate(rows, ctx) -> pl.DataFrame`: new rows only; the base assigns ids,
  `parent_id`, `origin`, copies the parent's fields, and rejects texts identical to the
  parent or to another row.
- `Audit.score(corpus, ctx) -> Findings`: finding columns and a findings table; never drops.

`Step.apply` returns a `StepResult` whose report carries counts, timings, params and the
seed; `check_accounting` verifies `n_out = n_in - dropped + added`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from assay import corpus as corpus_mod
from assay.context import RunContext
from assay.errors import StepError
from assay.ids import derived_ids

DROP_COLUMNS = ("step", "reason", "generated")
N_EXAMPLES = 5


class StepConfig(BaseModel):
    """Base of every step's Config: typed, frozen, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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
    """What a Filter decided. `mask` is in corpus row order; `reason` is read where False.

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


class Step:
    """Base of all steps. Subclasses set `Config` and implement one method of their kind."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "step"
    version: ClassVar[str] = "1"
    Config: ClassVar[type[StepConfig]] = StepConfig
    # May the step change text, label or weight of dev/test rows? Cleaning may; augmentation,
    # reweighting and relabelling may not unless configured to (`protect_eval: false`).
    touches_eval: ClassVar[bool] = True
    # Is the output a function of (input, config, seed) alone? Steps that read a remote
    # service (Label Studio pull) are not: a runner must rerun them instead of caching.
    cacheable: ClassVar[bool] = True

    def __init__(self, config: StepConfig | None = None, /, **params: Any) -> None:
        if config is not None and params:
            raise TypeError("pass either a Config or keyword parameters, not both")
        self.config = config if config is not None else self.Config(**params)
        if not isinstance(self.config, self.Config):
            raise TypeError(f"{type(self).__name__} needs a {self.Config.__name__}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"

    @property
    def params(self) -> dict[str, Any]:
        return self.config.model_dump(mode="json")

    def apply(self, corpus: pl.DataFrame, ctx: RunContext | None = None) -> StepResult:
        corpus_mod.check_corpus(corpus, f"step {self.name!r}")
        ctx = ctx or RunContext().for_step(0, self.name)
        started = time.perf_counter()
        result = self._run(corpus, ctx)
        report = result.report
        report.index = ctx.step_index
        report.n_in = corpus.height
        report.n_out = result.corpus.height
        report.seconds = round(time.perf_counter() - started, 4)
        report.params = self.params
        report.seed = ctx.seed
        if result.dropped is not None and result.dropped.height:
            inputs = result.dropped.filter(~pl.col("generated"))
            report.n_dropped = inputs.height
            report.n_rejected = result.dropped.height - inputs.height
            counts = (
                result.dropped.group_by("reason")
                .len()
                .sort(["len", "reason"], descending=[True, False])
            )
            report.drop_reasons = dict(
                zip(counts["reason"].to_list(), counts["len"].to_list(), strict=True)
            )
        return result

    def _run(self, corpus: pl.DataFrame, ctx: RunContext) -> StepResult:
        raise NotImplementedError

    def _report(self, **fields: Any) -> StepReport:
        return StepReport(step=self.name, kind=self.kind, **fields)

    def _check_columns(self, frame: pl.DataFrame, where: str) -> None:
        bad = [c for c in frame.columns if c != "id" and not c.startswith(f"{self.name}__")]
        if bad:
            raise StepError(
                f"step {self.name!r} {where} columns {bad}: step columns must be named "
                f"'{self.name}__<field>'"
            )


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


class Filter(Step):
    """Drops rows; every dropped row goes to dropped.parquet with the step and a reason."""

    kind = "filter"

    def keep(self, corpus: pl.DataFrame, ctx: RunContext) -> Keep:
        raise NotImplementedError

    def _run(self, corpus: pl.DataFrame, ctx: RunContext) -> StepResult:
        decision = self.keep(corpus, ctx)
        if decision.columns is not None:
            self._check_columns(decision.columns, "added")
        kept, dropped = partition(corpus, self.name, decision)
        examples = dropped.select("id", "text", "reason").head(N_EXAMPLES).to_dicts()
        report = self._report(summary=dict(decision.summary), examples=examples)
        return StepResult(kept, report, dropped=dropped, findings=decision.findings)


class Transform(Step):
    """Rewrites text; changed ids are counted and the old text kept in the lineage."""

    kind = "transform"

    def rewrite(self, corpus: pl.DataFrame, ctx: RunContext) -> pl.Series:
        raise NotImplementedError

    def keep(self, corpus: pl.DataFrame, ctx: RunContext) -> Keep | None:
        """Optionally drop rows after rewriting (e.g. text that became too short)."""
        return None

    def _run(self, corpus: pl.DataFrame, ctx: RunContext) -> StepResult:
        new_text = self.rewrite(corpus, ctx)
        if len(new_text) != corpus.height:
            raise StepError(
                f"step {self.name!r} rewrote {len(new_text)} texts for {corpus.height} rows"
            )
        changed = (new_text != corpus["text"]).fill_null(True)
        lineage = pl.DataFrame(
            {
                "id": corpus["id"].filter(changed),
                "step": pl.Series([self.name] * int(changed.sum()), dtype=pl.String),
                "before": corpus["text"].filter(changed),
                "after": new_text.filter(changed),
            }
        )
        rewritten = corpus.with_columns(text=new_text)
        dropped = None
        summary: dict[str, Any] = {}
        decision = self.keep(rewritten, ctx)
        if decision is not None:
            rewritten, dropped = partition(rewritten, self.name, decision)
            summary.update(decision.summary)
        examples = lineage.select("id", "before", "after").head(N_EXAMPLES).to_dicts()
        report = self._report(n_modified=lineage.height, summary=summary, examples=examples)
        return StepResult(rewritten, report, dropped=dropped, lineage=lineage)


class AugmenterConfig(StepConfig):
    """Which rows an augmenter works on, and how many rows it may add."""

    splits: list[str] = Field(default_factory=lambda: ["train"], description="splits to augment")
    labels: list[str] | None = Field(None, description="only rows with these labels (all if unset)")
    n_per_row: int = Field(1, ge=1, description="augmentations attempted per selected row")
    max_per_row: int | None = Field(None, ge=1, description="cap on accepted augmentations per row")
    budget: float | None = Field(
        None, gt=0, description="cap on added rows, as a multiple of the selected rows"
    )
    fraction: float = Field(1.0, gt=0, le=1, description="share of eligible rows to augment")


class Augmenter(Step):
    """Adds rows derived from selected rows; never modifies existing rows."""

    kind = "augmenter"
    touches_eval = False
    Config: ClassVar[type[AugmenterConfig]] = AugmenterConfig
    op: ClassVar[str] = "aug"  # short tag used in derived ids: "{parent}~{op}{k}"

    def generate(self, rows: pl.DataFrame, ctx: RunContext) -> pl.DataFrame:
        """Return new rows: `parent_id`, `text`, and optionally `op`, `label`, `lang`, or
        namespaced columns. Rows may be returned in any number per parent."""
        raise NotImplementedError

    def select(self, corpus: pl.DataFrame, ctx: RunContext) -> pl.DataFrame:
        cfg = self.config
        cond = pl.col("split").is_in(cfg.splits) & (pl.col("origin") == corpus_mod.SOURCE_ORIGIN)
        if cfg.labels is not None:
            if corpus_mod.is_multilabel(corpus):
                cond &= pl.col("label").list.eval(pl.element().is_in(cfg.labels)).list.any()
            else:
                cond &= pl.col("label").is_in(cfg.labels)
        rows = corpus.filter(cond)
        if cfg.fraction < 1.0 and rows.height:
            n = max(1, round(rows.height * cfg.fraction))
            pick = np.sort(ctx.rng("select").choice(rows.height, size=n, replace=False))
            rows = rows[pick]
        return rows

    def _run(self, corpus: pl.DataFrame, ctx: RunContext) -> StepResult:
        cfg = self.config
        rows = self.select(corpus, ctx)
        new = (
            self.generate(rows, ctx)
            if rows.height
            else pl.DataFrame(schema={"parent_id": pl.String, "text": pl.String})
        )
        added, rejected, summary = self._adopt(corpus, rows, new, ctx)
        if cfg.budget is not None:
            cap = int(cfg.budget * rows.height)
            if added.height > cap:
                pick = np.sort(ctx.rng("budget").choice(added.height, size=cap, replace=False))
                keep = np.zeros(added.height, dtype=bool)
                keep[pick] = True
                over = added.filter(~pl.Series(keep))
                rejected.append(dropped_rows(over, self.name, "over_budget", generated=True))
                added = added.filter(pl.Series(keep))
        out = pl.concat([corpus, added], how="diagonal_relaxed") if added.height else corpus
        dropped = pl.concat(rejected, how="diagonal_relaxed") if rejected else None
        parents = rows.select(pl.col("id").alias("parent_id"), pl.col("text").alias("parent_text"))
        examples = (
            added.head(N_EXAMPLES)
            .join(parents, on="parent_id", how="left")
            .select("id", "parent_text", "text")
            .to_dicts()
        )
        summary["n_selected"] = rows.height
        report = self._report(n_added=added.height, summary=summary, examples=examples)
        return StepResult(out, report, dropped=dropped)

    def _adopt(
        self, corpus: pl.DataFrame, rows: pl.DataFrame, new: pl.DataFrame, ctx: RunContext
    ) -> tuple[pl.DataFrame, list[pl.DataFrame], dict[str, Any]]:
        """Give generated rows ids and the parent's fields; reject identical texts."""
        if "parent_id" not in new.columns or "text" not in new.columns:
            raise StepError(f"augmenter {self.name!r} must return parent_id and text columns")
        extra = [c for c in new.columns if c not in ("parent_id", "text", "op", "label", "lang")]
        self._check_columns(new.select(extra), "generated")
        if "op" not in new.columns:
            new = new.with_columns(op=pl.lit(self.op))
        new = new.with_columns(pl.col("text").cast(pl.String))
        inherit = ["label", "split", "weight", "lang", "group"]
        parent_cols = rows.select(
            pl.col("id").alias("parent_id"),
            *[pl.col(c).alias(f"_parent_{c}") for c in [*inherit, "text"]],
        )
        new = new.join(parent_cols, on="parent_id", how="left", maintain_order="left")
        orphans = new.filter(pl.col("_parent_text").is_null())
        if orphans.height:
            raise StepError(
                f"augmenter {self.name!r} returned rows whose parent_id is not a selected row, "
                f"e.g. {orphans['parent_id'].head(3).to_list()}"
            )
        own = [c for c in ("label", "lang") if c in new.columns]
        new = new.with_columns(
            *[pl.col(c).fill_null(pl.col(f"_parent_{c}")).alias(c) for c in own],
            *[pl.col(f"_parent_{c}").alias(c) for c in inherit if c not in own],
        )
        existing = corpus["text"].unique()
        text = pl.col("text")
        new = new.with_columns(
            reason=pl.when(text.is_null() | (text.str.strip_chars() == ""))
            .then(pl.lit("empty_text"))
            .when(text.str.strip_chars() == pl.col("_parent_text").str.strip_chars())
            .then(pl.lit("identical_to_parent"))
            .when(text.is_in(existing.implode()))
            .then(pl.lit("duplicate_of_existing_row"))
            .when(text.cum_count().over("text") > 1)
            .then(pl.lit("duplicate_of_generated_row"))
            .otherwise(pl.lit(None, dtype=pl.String))
        )
        cap = self.config.max_per_row
        if cap is not None:
            ok = pl.col("reason").is_null()
            rank = ok.cast(pl.Int32).cum_sum().over("parent_id")
            new = new.with_columns(
                reason=pl.when(ok & (rank > cap))
                .then(pl.lit("over_max_per_row"))
                .otherwise(pl.col("reason"))
            )
        label_type = corpus_mod.label_dtype(corpus)
        # k numbers the accepted rows per (parent, op) in generation order: stable ids.
        accepted = new.filter(pl.col("reason").is_null())
        accepted = accepted.with_columns(k=pl.int_range(pl.len()).over(["parent_id", "op"]))
        accepted = accepted.with_columns(
            id=derived_ids(accepted["parent_id"], accepted["op"], accepted["k"]),
            origin=pl.lit(f"augment.{self.name}"),
            label=pl.col("label").cast(label_type),
        ).rename({"op": f"{self.name}__op"})
        scratch = [c for c in new.columns if c.startswith("_parent_")] + ["reason"]
        added = corpus_mod.conform(accepted.drop([*scratch, "k"]))
        rejected_rows = new.filter(pl.col("reason").is_not_null())
        rejected: list[pl.DataFrame] = []
        if rejected_rows.height:
            rej = rejected_rows.with_columns(
                id=pl.concat_str(
                    [
                        pl.col("parent_id"),
                        pl.lit("~"),
                        pl.col("op"),
                        pl.lit("-rejected"),
                        pl.int_range(pl.len()).over(["parent_id", "op"]).cast(pl.String),
                    ]
                ),
                origin=pl.lit(f"augment.{self.name}"),
                label=pl.col("label").cast(label_type),
            ).rename({"op": f"{self.name}__op"})
            rejected.append(
                dropped_rows(
                    corpus_mod.conform(rej.drop(scratch)), self.name, rej["reason"], generated=True
                )
            )
        counts = rejected_rows.group_by("reason").len()
        summary = {
            "rejected": dict(zip(counts["reason"].to_list(), counts["len"].to_list(), strict=True))
        }
        return added, rejected, summary


class Audit(Step):
    """Scores rows and reports findings; never drops or rewrites."""

    kind = "audit"

    def score(self, corpus: pl.DataFrame, ctx: RunContext) -> Findings:
        raise NotImplementedError

    def _run(self, corpus: pl.DataFrame, ctx: RunContext) -> StepResult:
        found = self.score(corpus, ctx)
        out = corpus
        if found.columns is not None:
            self._check_columns(found.columns, "added")
            out = attach_columns(corpus, found.columns)
        report = self._report(summary=dict(found.summary))
        return StepResult(out, report, findings=found.findings)


def check_accounting(before: pl.DataFrame, result: StepResult) -> None:
    """n_out = n_in - dropped + added, and every input id is either kept or dropped."""
    r = result.report
    if r.n_out != r.n_in - r.n_dropped + r.n_added:
        raise StepError(
            f"step {r.step!r} broke accounting: {r.n_in} in - {r.n_dropped} dropped + "
            f"{r.n_added} added = {r.n_in - r.n_dropped + r.n_added}, but {r.n_out} out"
        )
    out_ids = result.corpus["id"]
    dropped_ids = (
        result.dropped.filter(~pl.col("generated"))["id"]
        if result.dropped is not None
        else pl.Series("id", [], dtype=pl.String)
    )
    lost = before["id"].filter(~before["id"].is_in(out_ids) & ~before["id"].is_in(dropped_ids))
    if len(lost):
        raise StepError(
            f"step {r.step!r} lost {len(lost)} rows without a record, e.g. {lost.head(3).to_list()}"
        )


def check_eval_protected(
    before: pl.DataFrame, result: StepResult, step: Step, protect: bool
) -> None:
    """Dev/test rows keep their text, label and weight, and gain no new rows, unless allowed."""
    if not protect or step.touches_eval:
        return
    after = result.corpus
    new_eval = after.filter(
        pl.col("split").is_in(corpus_mod.EVAL_SPLITS) & ~pl.col("id").is_in(before["id"])
    )
    if new_eval.height:
        raise StepError(
            f"step {step.name!r} added {new_eval.height} rows to dev/test; set "
            f"protect_eval: false on the step to allow it"
        )
    cols = ["id", "text", "label", "weight", "split"]
    old = before.filter(pl.col("split").is_in(corpus_mod.EVAL_SPLITS)).select(cols)
    new = after.select(cols).join(old.select("id"), on="id", how="semi")
    joined = old.join(new, on="id", how="inner", suffix="_new")
    changed = joined.filter(
        pl.any_horizontal([pl.col(c).ne_missing(pl.col(f"{c}_new")) for c in cols[1:]])
    )
    if changed.height:
        raise StepError(
            f"step {step.name!r} modified {changed.height} dev/test rows, e.g. "
            f"{changed['id'].head(3).to_list()}; set protect_eval: false on the step to allow it"
        )
