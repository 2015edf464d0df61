"""The step contract: one public hook per kind, one set of books for all of them.

A step is a registered class with a frozen pydantic `Config` (a union of per-method
variants where methods take different keys, see `StepConfig`) and the hook of its kind.
Every hook's answer becomes a `Changes` (columns to set by id, rows to drop, rows to add,
findings, summary), and `assay.books.record` applies it and keeps the books: counts,
`n_modified`, dropped rows with reasons, lineage of every changed core field, examples.

- `Edit.edit(corpus, ctx) -> Changes`: the general kind; sets core fields (`label`,
  `split`, `weight`, `text`) and namespaced `<step>__<field>` columns, drops and adds rows.
- `Filter.keep(corpus, ctx) -> Keep`: a keep mask and reasons; dropped rows are recorded.
- `Transform.rewrite(corpus, ctx) -> pl.Series`: new text for every row (plus an optional
  `keep` on the rewritten rows); changed texts go to the lineage.
- `Augmenter.generate(rows, ctx) -> pl.DataFrame`: new rows only (`parent_id`, `text`,
  optional `op`, `label`, `lang`, `origin` detail) from the rows `select` chose; the books
  adopt them.
- `Audit.score(corpus, ctx) -> Findings`: namespaced columns and a findings table.
- `Sync.send(corpus, ctx) -> Findings`: sends rows to a service; the corpus keeps its
  rows and fields and gains only namespaced columns.

Added rows (from `generate` or `Changes.added`) go through one adoption path: parent
fields inherited, empty texts and copies of the parent or of another row rejected, the
step's `reject(candidates, parents, corpus, ctx)` rule, `max_per_row`, a cap on added rows.
Derived ids are `{parent_id}~{step index}.{op}{k}` (see `assay.ids`).

`Step.apply` returns a `StepResult` whose report carries counts, timings, params and the
seed; `check_accounting` verifies `n_out = n_in - dropped + added`.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from assay import corpus as corpus_mod
from assay.books import (
    DROP_COLUMNS,
    EDITABLE,
    N_EXAMPLES,
    Changes,
    Findings,
    Keep,
    Rejections,
    StepReport,
    StepResult,
    attach_columns,
    check_step_columns,
    dropped_rows,
    partition,
    record,
)
from assay.context import RunContext
from assay.engine_steps import engine_for, merge_changes, merge_summaries, run_batches
from assay.errors import StepError

__all__ = [
    "DROP_COLUMNS",
    "EDITABLE",
    "N_EXAMPLES",
    "Audit",
    "Augmenter",
    "AugmenterConfig",
    "Changes",
    "Edit",
    "Filter",
    "Findings",
    "Keep",
    "Rejections",
    "Step",
    "StepConfig",
    "StepReport",
    "StepResult",
    "Sync",
    "Transform",
    "attach_columns",
    "check_accounting",
    "check_eval_protected",
    "dropped_rows",
    "partition",
]


class StepConfig(BaseModel):
    """Base of every step's Config: typed, frozen, unknown keys rejected.

    A config whose keys differ by method is a discriminated union: the base class holds
    the shared keys and maps each value of `variant_key` to a subclass in `variants`;
    `Base(**params)` builds the subclass the params name, so keys of another method are
    unknown keys, and `Base.model_json_schema()` is the union's schema.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    variant_key: ClassVar[str] = "method"
    variants: ClassVar[dict[str, type[StepConfig]]] = {}

    def __new__(cls, *args: Any, **params: Any) -> StepConfig:
        return super().__new__(cls.variant_for(params))

    @classmethod
    def _is_union(cls) -> bool:
        return bool(cls.variants) and cls not in cls.variants.values()

    @classmethod
    def variant_for(cls, params: dict[str, Any]) -> type[StepConfig]:
        """The class that validates `params`: this one, or the variant they name."""
        if not cls._is_union():
            return cls
        value = params.get(cls.variant_key, cls.model_fields[cls.variant_key].default)
        return cls.variants.get(value, cls) if isinstance(value, str) else cls

    @classmethod
    def known_keys(cls) -> list[str]:
        """Every key this config takes; for a union, the keys of any variant."""
        keys = dict.fromkeys(cls.model_fields)
        if cls._is_union():
            for sub in cls.variants.values():
                keys.update(dict.fromkeys(sub.model_fields))
        return list(keys)

    @classmethod
    def owners_of(cls, key: str) -> list[str]:
        """Values of `variant_key` whose variant has `key` (for error hints)."""
        return [v for v, sub in cls.variants.items() if key in sub.model_fields]

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The schema; for a union, one of the variants' schemas (the variant key is
        required but for the default variant), with every key listed in `properties`."""
        if not cls._is_union():
            return super().model_json_schema(*args, **kwargs)
        key = cls.variant_key
        default = cls.model_fields[key].default
        members, merged, owners = [], {}, {}
        for value, sub in cls.variants.items():
            schema = sub.model_json_schema(*args, **kwargs)
            if value != default:
                schema["required"] = [key, *schema.get("required", [])]
            members.append(schema)
            for name, prop in schema.get("properties", {}).items():
                merged.setdefault(name, dict(prop))
                owners.setdefault(name, []).append((value, prop.get("default")))
        merged[key] = {
            "enum": list(cls.variants),
            "default": default,
            "description": cls.model_fields[key].description or "",
        }
        for name, found in owners.items():
            if name == key:
                continue
            prop = merged[name]
            if len(found) < len(cls.variants):
                prop["description"] = (
                    f"{prop.get('description', '')} [{key}: {', '.join(v for v, _ in found)}]"
                )
            if len({repr(d) for _, d in found}) > 1:
                prop.pop("default", None)
                shown = ", ".join(f"{d} for {v}" for v, d in found)
                prop["description"] += f" (default {shown})"
        out: dict[str, Any] = {"title": cls.__name__, "type": "object", "properties": merged}
        if cls.__doc__ and cls.__doc__.strip():
            out["description"] = cls.__doc__.strip().splitlines()[0]
        out["oneOf"] = members
        return out


class Step:
    """Base of all steps. Subclasses set `Config` and implement the hook of their kind."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "step"
    Config: ClassVar[type[StepConfig]] = StepConfig
    op: ClassVar[str] = "add"  # tag of rows this step adds, in derived ids
    # May the step change text, label or weight of dev/test rows? Cleaning may; augmentation,
    # reweighting and relabelling may not unless the recipe allows it (`protect_eval: false`).
    touches_eval: ClassVar[bool] = True
    # Is the output a function of (input, config, seed) alone? Steps that read a remote
    # service (Label Studio pull) are not: a runner must rerun them instead of caching.
    cacheable: ClassVar[bool] = True
    # Is the hook row-local (each row's answer depends on that row, the config and the
    # seed alone)? Then an engine may run it on batches of rows anywhere (Ray actors) and
    # the books merge the answers. Steps that need the whole corpus say False.
    row_local: ClassVar[bool] = False
    # Rows per batch when the hook runs on an engine (the recipe's engine.ray.batch_size
    # overrides it), and whether a batch may use a GPU (engine.ray.gpus_per_actor).
    batch_rows: ClassVar[int] = 4096
    gpu_capable: ClassVar[bool] = False
    # Does the hook load a model? On Ray it then runs in an actor pool (loaded once per actor).
    loads_model: ClassVar[bool] = False

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

    def reject(
        self, candidates: pl.DataFrame, parents: pl.DataFrame, corpus: pl.DataFrame, ctx: RunContext
    ) -> Rejections | None:
        """An extra rule for rows this step adds, run inside the adoption before the
        duplicate checks and `max_per_row` (None: no rule). `candidates` carry their
        parent's fields and exclude copies of the parent."""
        return None

    def apply(self, corpus: pl.DataFrame, ctx: RunContext | None = None) -> StepResult:
        corpus = corpus_mod.as_corpus(corpus, f"step {self.name!r}")
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
        return record(self, corpus, ctx, self._changes(corpus, ctx))

    def _changes(self, corpus: pl.DataFrame, ctx: RunContext) -> Changes:
        if engine_for(self, ctx) is None:
            return self._local_changes(corpus, ctx)
        # A row-local hook on batches of rows, on the engine; the books stay here.
        return merge_changes(run_batches(self, ctx, corpus, "_local_changes"))

    def _local_changes(self, corpus: pl.DataFrame, ctx: RunContext) -> Changes:
        raise NotImplementedError(
            f"{type(self).__name__} must derive from a kind (Edit, Filter, Transform, "
            f"Augmenter, Audit, Sync) and implement its hook"
        )

    def _report(self, **fields: Any) -> StepReport:
        return StepReport(step=self.name, kind=self.kind, **fields)

    def _check_columns(self, frame: pl.DataFrame, where: str) -> None:
        check_step_columns(self.name, frame, where)


class Edit(Step):
    """Sets fields of rows by id, drops and adds rows: whatever its `Changes` say."""

    kind = "edit"

    def edit(self, corpus: pl.DataFrame, ctx: RunContext) -> Changes:
        raise NotImplementedError

    def _local_changes(self, corpus: pl.DataFrame, ctx: RunContext) -> Changes:
        return self.edit(corpus, ctx)


class Filter(Step):
    """Drops rows; every dropped row goes to dropped.parquet with the step and a reason."""

    kind = "filter"

    def keep(self, corpus: pl.DataFrame, ctx: RunContext) -> Keep:
        raise NotImplementedError

    def _local_changes(self, corpus: pl.DataFrame, ctx: RunContext) -> Changes:
        return Changes(keep=self.keep(corpus, ctx))


class Transform(Step):
    """Rewrites text; changed ids are counted and the old text kept in the lineage."""

    kind = "transform"
    row_local = True  # a rewrite that needs the whole corpus sets False

    def rewrite(self, corpus: pl.DataFrame, ctx: RunContext) -> pl.Series:
        raise NotImplementedError

    def keep(self, corpus: pl.DataFrame, ctx: RunContext) -> Keep | None:
        """Optionally drop rows after rewriting (e.g. text that became too short)."""
        return None

    def _local_changes(self, corpus: pl.DataFrame, ctx: RunContext) -> Changes:
        new_text = self.rewrite(corpus, ctx)
        if len(new_text) != corpus.height:
            raise StepError(
                f"step {self.name!r} rewrote {len(new_text)} texts for {corpus.height} rows"
            )
        new_text = new_text.cast(pl.String).alias("text")
        decision = self.keep(corpus.with_columns(text=new_text), ctx)
        return Changes(columns=pl.DataFrame([corpus["id"], new_text]), keep=decision)


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
    op = "aug"
    row_local = True  # generate(rows) answers per row; `select` and the books stay on the driver

    def generate(self, rows: pl.DataFrame, ctx: RunContext) -> pl.DataFrame:
        """Return new rows: `parent_id`, `text`, and optionally `op`, `label`, `lang`,
        `origin` (a detail the books append: `augment.<step>:<origin>`, e.g. the pivot,
        backend and model) or namespaced columns. Rows may be returned in any number per
        parent."""
        raise NotImplementedError

    def generation_summary(self) -> dict[str, Any]:
        """Report summary entries about the last `generate` call (e.g. uses per term)."""
        return {}

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

    def _changes(self, corpus: pl.DataFrame, ctx: RunContext) -> Changes:
        cfg = self.config
        rows = self.select(corpus, ctx)
        if rows.height and engine_for(self, ctx) is not None:
            answers = [a for _, a in run_batches(self, ctx, rows, "_generate_batch")]
            new = pl.concat([a[0] for a in answers], how="diagonal_relaxed")
            summary = merge_summaries(a[1] for a in answers)
        else:
            new, summary = self._generate_batch(rows, ctx)
        return Changes(
            added=new,
            parents=rows,
            max_per_row=cfg.max_per_row,
            max_added=int(cfg.budget * rows.height) if cfg.budget is not None else None,
            summary={**summary, "n_selected": rows.height},
        )

    def _generate_batch(
        self, rows: pl.DataFrame, ctx: RunContext
    ) -> tuple[pl.DataFrame, dict[str, Any]]:
        new = (
            self.generate(rows, ctx)
            if rows.height
            else pl.DataFrame(schema={"parent_id": pl.String, "text": pl.String})
        )
        return new, self.generation_summary()


class Audit(Step):
    """Scores rows and reports findings; never drops or rewrites."""

    kind = "audit"

    def score(self, corpus: pl.DataFrame, ctx: RunContext) -> Findings:
        raise NotImplementedError

    def _local_changes(self, corpus: pl.DataFrame, ctx: RunContext) -> Changes:
        return _observed(self, self.score(corpus, ctx))


class Sync(Step):
    """Sends rows to an outside service; the corpus gains only namespaced columns."""

    kind = "sync"
    cacheable = False

    def send(self, corpus: pl.DataFrame, ctx: RunContext) -> Findings:
        raise NotImplementedError

    def _local_changes(self, corpus: pl.DataFrame, ctx: RunContext) -> Changes:
        return _observed(self, self.send(corpus, ctx))


def _observed(step: Step, found: Findings) -> Changes:
    if found.columns is not None:
        step._check_columns(found.columns, "added")
    return Changes(columns=found.columns, findings=found.findings, summary=dict(found.summary))


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
    """Dev/test rows stay, keep their text, label and weight, and gain no new rows, unless
    allowed."""
    if not protect or step.touches_eval:
        return
    after = result.corpus
    if result.dropped is not None:
        gone = result.dropped.filter(
            ~pl.col("generated") & pl.col("split").is_in(corpus_mod.EVAL_SPLITS)
        )
        if gone.height:
            raise StepError(
                f"step {step.name!r} dropped {gone.height} dev/test rows, e.g. "
                f"{gone['id'].head(3).to_list()}; set protect_eval: false at the top level of "
                f"the recipe (a recipe setting, not a step parameter) to allow it"
            )
    new_eval = after.filter(
        pl.col("split").is_in(corpus_mod.EVAL_SPLITS) & ~pl.col("id").is_in(before["id"])
    )
    if new_eval.height:
        raise StepError(
            f"step {step.name!r} added {new_eval.height} rows to dev/test; set "
            f"protect_eval: false at the top level of the recipe (a recipe setting, not a step "
            f"parameter) to allow it"
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
            f"{changed['id'].head(3).to_list()}; set protect_eval: false at the top level of "
            f"the recipe (a recipe setting, not a step parameter) to allow it"
        )
