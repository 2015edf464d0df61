"""Label Studio sync as recipe steps.

`labelstudio_push` sends (a selection of) the corpus to a project; `labelstudio_pull`
brings the annotators' work back: resolved labels, agreement numbers and the annotations
table in the run directory. The token comes only from an environment variable named in the
recipe (`token_env`), never from the recipe itself.

The library functions behind them are in `client` (connection), `config` (projects and
label configs), `sync` (push, pull, status) and `assay.curate.agreement`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import polars as pl
from pydantic import Field, field_validator

from assay import corpus as corpus_mod
from assay.context import RunContext
from assay.curate import agreement as agreement_mod
from assay.curate.labelstudio import sync as ls_sync
from assay.curate.labelstudio.client import TOKEN_ENV, Connection
from assay.curate.labelstudio.config import ID_KEY, init_project
from assay.registry import register
from assay.step import Changes, Edit, Findings, Keep, StepConfig, Sync

log = logging.getLogger(__name__)

SYNC_DIR = "labelstudio"
_TOKEN_LIKE = re.compile(r"^[0-9a-f]{32,}$|^eyJ")


class _ConnectionConfig(StepConfig):
    url: str | None = Field(
        None, description="Label Studio URL; defaults to the ASSAY_LS_URL environment variable"
    )
    token_env: str = Field(
        TOKEN_ENV, description="name of the environment variable that holds the API token"
    )
    project: int | str = Field(description="project id, or title (created by push if missing)")
    state_dir: str | None = Field(
        None, description="sync directory; defaults to <run dir>/labelstudio"
    )

    @field_validator("token_env")
    @classmethod
    def _not_a_token(cls, value: str) -> str:
        if _TOKEN_LIKE.search(value) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError(
                "token_env is the NAME of an environment variable (e.g. ASSAY_LS_TOKEN), not "
                "the token; never put a token in a recipe"
            )
        return value


def _connection(cfg: _ConnectionConfig) -> Connection:
    return Connection.from_env(cfg.url, cfg.token_env)


def _sync_dir(cfg: _ConnectionConfig, ctx: RunContext) -> Path:
    if cfg.state_dir:
        return Path(cfg.state_dir)
    if ctx.run_dir is not None:
        return Path(ctx.run_dir) / SYNC_DIR
    return ctx.workdir(SYNC_DIR)


@register("labelstudio_push")
class LabelStudioPush(Sync):
    """Push corpus rows to a Label Studio project as tasks (idempotent; never changes the corpus).

    Creates the project from the corpus's label set when it does not exist, or checks the
    existing project's labels. A second push of the same corpus creates no task; changed
    text updates its task; new rows add tasks. Optional pre-annotations come from corpus
    columns holding a model's predicted label and score.
    """

    class Config(_ConnectionConfig):
        labels: list[str] | None = Field(
            None, description="label set for a new project (default: the corpus's labels)"
        )
        only_unlabeled: bool = Field(False, description="push only rows without a label")
        flagged: str | None = Field(
            None, description="push only rows where this boolean column is true"
        )
        splits: list[str] | None = Field(None, description="push only rows of these splits")
        sample: int | None = Field(None, ge=1, description="push a random sample of this size")
        prediction_column: str | None = Field(
            None, description="column with a model's predicted label, sent as pre-annotation"
        )
        score_column: str | None = Field(None, description="column with the prediction's score")
        model_version: str = Field("assay", description="model version named on predictions")
        batch_size: int = Field(ls_sync.BATCH_SIZE, ge=1, description="tasks per import request")
        strategy: str | None = Field(
            None,
            description="active learning: random, uncertainty, diversity or hybrid; pushes "
            "`batch` unlabelled rows chosen by the model trained on the labelled train rows",
        )
        batch: int = Field(100, ge=1, description="rows per active-learning batch")
        overlap: int = Field(
            0, ge=0, description="the k most uncertain rows of a batch go to two annotators"
        )
        model: str = Field(
            "fast",
            description="model behind the uncertainty strategies: fast, probe, or an encoder "
            "name or path",
        )

        @field_validator("strategy")
        @classmethod
        def _strategy(cls, value: str | None) -> str | None:
            from assay.curate import active

            if value is not None and value not in active.STRATEGIES:
                raise ValueError(f"strategy must be one of {list(active.STRATEGIES)}")
            return value

    def send(self, corpus: pl.DataFrame, ctx: RunContext) -> Findings:
        cfg = self.config
        client = _connection(cfg).client()
        labels = cfg.labels or corpus_mod.label_set(corpus)
        project = init_project(client, cfg.project, labels, corpus_mod.is_multilabel(corpus))
        rows = ls_sync.select_rows(
            corpus,
            only_unlabeled=cfg.only_unlabeled,
            flagged=cfg.flagged,
            splits=cfg.splits,
            sample=cfg.sample,
            rng=ctx.rng("sample"),
        )
        predictions = None
        task_data = None
        overlap_ids: list[str] = []
        if cfg.strategy:
            from assay.curate.labelstudio import round as round_mod

            # The pool: the selected rows that have no task yet.
            tasks = {
                (t.get("data") or {}).get(ID_KEY)
                for t in client.tasks(project.id, include="id,data")
            }
            chosen = round_mod.select_batch(
                corpus,
                cfg.batch,
                cfg.strategy,
                ctx.rng("active"),
                exclude=(set(corpus["id"].to_list()) - set(rows["id"].to_list())) | tasks,
                model=cfg.model,
                seed=ctx.step_seed("active"),
                overlap=cfg.overlap,
            )
            rows = rows.filter(pl.col("id").is_in(chosen.selection.ids))
            predictions, task_data = chosen.predictions, chosen.reasons
            sel = chosen.selection
            overlap_ids = [i for i, o in zip(sel.ids, sel.overlap, strict=True) if o]
        elif cfg.prediction_column:
            cols = [pl.col("id"), pl.col(cfg.prediction_column).alias("label")]
            if cfg.score_column:
                cols.append(pl.col(cfg.score_column).cast(pl.Float64).alias("score"))
            predictions = rows.select(cols)
        report = ls_sync.push(
            client,
            project,
            rows,
            predictions=predictions,
            model_version=cfg.model_version,
            batch_size=cfg.batch_size,
            state_dir=_sync_dir(cfg, ctx),
            progress=ctx.progress,
            task_data=task_data,
            overlap_ids=overlap_ids,
        )
        pushed = corpus.select(
            "id", pl.col("id").is_in(rows["id"].implode()).alias(f"{self.name}__pushed")
        )
        return Findings(columns=pushed, summary=report.to_dict())


@register("labelstudio_pull")
class LabelStudioPull(Edit):
    """Pull annotations from a Label Studio project and resolve one label per example.

    Incremental: only tasks updated since the last pull are fetched (the mark lives in the
    sync directory with the annotations table). Skipped annotations are kept as skipped,
    never as labels; labels outside the project's label set are reported, not added.
    Resolved labels replace the labels of rows in `relabel_splits`; agreement numbers and
    disagreements go to the report and the sync directory.
    """

    kind = "sync"  # an Edit whose changes come from a service
    touches_eval = False
    cacheable = False

    class Config(_ConnectionConfig):
        method: str = Field(
            agreement_mod.MAJORITY, description="consensus: 'majority' or 'crowdlab'"
        )
        prob_prefix: str | None = Field(
            None,
            description="for crowdlab: prefix of columns '<prefix><label>' holding model "
            "probabilities",
        )
        relabel_splits: list[str] = Field(
            ["train", "unlabeled"],
            description="splits whose labels the resolved labels replace",
        )
        labelled_split: str | None = Field(
            "train", description="split for 'unlabeled' rows that received a label"
        )
        full: bool = Field(False, description="pull every task, not only the updated ones")

        @field_validator("method")
        @classmethod
        def _method(cls, value: str) -> str:
            if value not in agreement_mod.METHODS:
                raise ValueError(f"method must be one of {list(agreement_mod.METHODS)}")
            return value

    def edit(self, corpus: pl.DataFrame, ctx: RunContext) -> Changes:
        cfg = self.config
        client = _connection(cfg).client()
        pred_probs = None
        if cfg.prob_prefix:
            cols = [c for c in corpus.columns if c.startswith(cfg.prob_prefix)]
            pred_probs = corpus.select(
                "id", *[pl.col(c).alias(c[len(cfg.prob_prefix) :]) for c in cols]
            )
        result = ls_sync.pull(
            client,
            cfg.project,
            _sync_dir(cfg, ctx),
            full=cfg.full,
            method=cfg.method,
            pred_probs=pred_probs,
            progress=ctx.progress,
        )
        cons = result.consensus
        # Rows not split yet (null split) are relabelled too: no split protects them.
        eligible = corpus.filter(
            pl.col("split").is_in(cfg.relabel_splits) | pl.col("split").is_null()
        )["id"]
        cons = cons.filter(pl.col("id").is_in(eligible.implode()))
        out = ls_sync.apply_labels(corpus, cons, prefix=self.name)
        if cfg.labelled_split:
            got = pl.col(f"{self.name}__status").is_not_null() & pl.col("label").is_not_null()
            out = out.with_columns(
                split=pl.when((pl.col("split") == "unlabeled") & got)
                .then(pl.lit(cfg.labelled_split))
                .otherwise(pl.col("split"))
            )
        n_relabelled = int(corpus["label"].ne_missing(out["label"]).sum())
        summary = result.summary()
        summary["n_relabelled"] = n_relabelled
        own = [c for c in out.columns if c.startswith(f"{self.name}__")]
        disagreements = result.agreement.disagreements if result.agreement else None
        return Changes(
            columns=out.select("id", "label", "split", *own),
            findings=disagreements,
            summary=summary,
        )


@register("labelstudio_review")
class LabelStudioReview(Sync):
    """Push rows marked for review to a review project (never changes the corpus).

    Rows come from `label_noise` (action review or flag), annotator `disagreement` (the
    disagreements table of a pull's sync directory, `disagreements_dir`) or a boolean column
    named in `source`. Each is one task showing the label under review, with the suggested
    label as a pre-annotation; a second push of the same rows creates no task.
    """

    class Config(_ConnectionConfig):
        source: str = Field(
            "label_noise",
            description="label_noise (or label_noise:<step name>), disagreement, or a boolean "
            "column",
        )
        suggested_column: str | None = Field(None, description="column with a suggested label")
        score_column: str | None = Field(None, description="column with the suggestion's score")
        disagreements_dir: str | None = Field(
            None, description="sync directory whose disagreements.parquet to review"
        )
        model_version: str = Field("assay", description="model version named on suggestions")
        labels: list[str] | None = Field(
            None, description="label set for a new project (default: the corpus's labels)"
        )

    def send(self, corpus: pl.DataFrame, ctx: RunContext) -> Findings:
        from assay.curate.labelstudio import review

        cfg = self.config
        disagreements = None
        if cfg.source == review.DISAGREEMENT:
            directory = (
                Path(cfg.disagreements_dir) if cfg.disagreements_dir else _sync_dir(cfg, ctx)
            )
            disagreements = ls_sync.SyncState(directory).table(ls_sync.DISAGREEMENTS)
        rows = review.review_rows(
            corpus,
            cfg.source,
            disagreements=disagreements,
            suggested_column=cfg.suggested_column,
            score_column=cfg.score_column,
        )
        client = _connection(cfg).client()
        labels = cfg.labels or corpus_mod.label_set(corpus)
        project = init_project(
            client, cfg.project, labels, corpus_mod.is_multilabel(corpus), review=True
        )
        report = review.push_review(
            client,
            project,
            rows,
            labels,
            multilabel=corpus_mod.is_multilabel(corpus),
            model_version=cfg.model_version,
            state_dir=_sync_dir(cfg, ctx),
            progress=ctx.progress,
        )
        marked = corpus.select(
            "id", pl.col("id").is_in(rows["id"].implode()).alias(f"{self.name}__pushed")
        )
        return Findings(columns=marked, findings=rows, summary=report.to_dict())


@register("labelstudio_review_pull")
class LabelStudioReviewPull(Edit):
    """Apply reviewers' decisions: relabels go to the lineage, rejected rows are dropped.

    `<step>__decision` (keep, relabel, reject), `__old_label`, `__reviewers` and
    `__reviewed_at` say what was decided, by whom and when; rejected rows leave with reason
    `review_rejected`.
    """

    kind = "sync"
    touches_eval = False
    cacheable = False

    class Config(_ConnectionConfig):
        full: bool = Field(False, description="pull every task, not only the updated ones")
        splits: list[str] = Field(
            ["train", "unlabeled"], description="splits whose rows the decisions may change"
        )

    def edit(self, corpus: pl.DataFrame, ctx: RunContext) -> Changes:
        from assay.curate.labelstudio import review

        cfg = self.config
        client = _connection(cfg).client()
        result = review.pull_review(
            client, cfg.project, _sync_dir(cfg, ctx), corpus, full=cfg.full, progress=ctx.progress
        )
        eligible = corpus.filter(pl.col("split").is_in(cfg.splits) | pl.col("split").is_null())
        decisions = result.decisions.filter(pl.col("id").is_in(eligible["id"].implode()))
        columns, keep = review.apply_decisions(corpus, decisions, self.name)
        summary = {**result.summary(), "n_applied": decisions.height}
        return Changes(
            columns=columns,
            keep=Keep(keep, review.REJECT_REASON),
            findings=decisions,
            summary=summary,
        )
