"""Review batches: send rows whose label is in doubt to reviewers, apply their decisions.

Rows come marked for review by `label_noise` (its `__review` or `__is_issue` column, with
the suggested label and score), by annotator disagreement (the disagreements table of a
pull), or by a boolean column the user names. Each becomes one task of a review project
(`review_config_xml`: the label under review above the text, the labels and a reject
choice) with the suggested label as a pre-annotation (score, model version). Pushing
reuses the push's lookup by example id, so a row pushed twice is still one task.

Pulling a review project resolves one decision per reviewed row: `keep` (the reviewers
chose the given label), `relabel` (another label) or `reject` (the reject choice; the row
is dropped with reason `review_rejected`). Relabels go through the books, so the lineage
keeps the old and new label; who decided and when are namespaced columns.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from assay import corpus as corpus_mod
from assay.curate.labelstudio import pull as pull_mod
from assay.curate.labelstudio import push as push_mod
from assay.curate.labelstudio.client import Client
from assay.curate.labelstudio.config import GIVEN_KEY, REJECT, Project, init_project
from assay.errors import InputError
from assay.progress import Progress

log = logging.getLogger(__name__)

LABEL_NOISE = "label_noise"
DISAGREEMENT = "disagreement"
REJECT_REASON = "review_rejected"
KEEP, RELABEL, REJECTED = "keep", "relabel", "reject"
SUGGESTED_KEY = "assay_suggested_label"
REASON_KEY = "assay_review_reason"
SCORE_KEY = "assay_score"

ROW_SCHEMA = {
    "id": pl.String,
    "text": pl.String,
    "given": pl.String,
    "suggested": pl.String,
    "score": pl.Float64,
    "reason": pl.String,
}
DECISION_SCHEMA = {
    "id": pl.String,
    "decision": pl.String,
    "old_label": pl.String,
    "new_label": pl.String,
    "reviewers": pl.String,
    "reviewed_at": pl.String,
    "n_reviews": pl.Int64,
}


def _label_text(label: Any) -> str | None:
    """A label as the reviewers read it (multi-label: JSON array)."""
    if label is None:
        return None
    if isinstance(label, (list, tuple)):
        return json.dumps(sorted(label))
    return str(label)


def review_rows(
    corpus: pl.DataFrame,
    source: str = LABEL_NOISE,
    *,
    disagreements: pl.DataFrame | None = None,
    suggested_column: str | None = None,
    score_column: str | None = None,
) -> pl.DataFrame:
    """The rows to review: id, text, given, suggested, score, reason.

    `source` is `label_noise` (the step's columns; another prefix as `label_noise:<step>`),
    `disagreement` (ids of `disagreements`, the pull's table, suggested = its consensus)
    or the name of a boolean column of the corpus.
    """
    if source == DISAGREEMENT:
        return _from_disagreements(corpus, disagreements)
    if source == LABEL_NOISE or source.startswith(LABEL_NOISE + ":"):
        step = source.split(":", 1)[1] if ":" in source else LABEL_NOISE
        flag = f"{step}__review" if f"{step}__review" in corpus.columns else f"{step}__is_issue"
        if flag not in corpus.columns:
            raise InputError(
                f"no {step}__review or {step}__is_issue column to select rows for review; run "
                f"the {LABEL_NOISE} step first (action: review) or name a boolean column"
            )
        return _from_flag(
            corpus,
            flag,
            suggested_column or f"{step}__suggested",
            score_column or f"{step}__score",
            reason=step,
        )
    return _from_flag(corpus, source, suggested_column, score_column, reason=source)


def _from_flag(
    corpus: pl.DataFrame,
    flag: str,
    suggested: str | None,
    score: str | None,
    reason: str,
) -> pl.DataFrame:
    rows = push_mod.select_rows(corpus, flagged=flag)
    for name in (suggested, score):
        if name is not None and name not in corpus.columns:
            raise InputError(f"no column {name!r} in the corpus; found {corpus.columns}")
    out = {
        "id": rows["id"].to_list(),
        "text": rows["text"].to_list(),
        "given": [_label_text(x) for x in rows["label"].to_list()],
        "suggested": [_label_text(x) for x in rows[suggested].to_list()]
        if suggested
        else [None] * rows.height,
        "score": rows[score].cast(pl.Float64).to_list() if score else [None] * rows.height,
        "reason": [reason] * rows.height,
    }
    return pl.DataFrame(out, schema=ROW_SCHEMA)


def _from_disagreements(corpus: pl.DataFrame, disagreements: pl.DataFrame | None) -> pl.DataFrame:
    if disagreements is None:
        raise InputError(
            "reviewing disagreements needs the disagreements table of a pull "
            "(disagreements.parquet in the sync directory); pull first"
        )
    found = corpus.join(disagreements.select("id", *_maybe(disagreements, "consensus")), on="id")
    suggested = (
        [_label_text(x) for x in found["consensus"].to_list()]
        if "consensus" in found.columns
        else [None] * found.height
    )
    return pl.DataFrame(
        {
            "id": found["id"].to_list(),
            "text": found["text"].to_list(),
            "given": [_label_text(x) for x in found["label"].to_list()],
            "suggested": suggested,
            "score": [None] * found.height,
            "reason": [DISAGREEMENT] * found.height,
        },
        schema=ROW_SCHEMA,
    )


def _maybe(frame: pl.DataFrame, column: str) -> list[str]:
    return [column] if column in frame.columns else []


def push_review(
    client: Client,
    project: int | str | Project,
    rows: pl.DataFrame,
    labels: Sequence[str],
    *,
    multilabel: bool = False,
    model_version: str = "assay",
    state_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> push_mod.PushReport:
    """One review task per row (created once), the suggested label as pre-annotation."""
    if not isinstance(project, Project):
        project = init_project(client, project, labels, multilabel, review=True)
    elif REJECT not in project.config.labels:
        raise InputError(
            f"project {project.id} is not a review project (no {REJECT!r} choice); create one "
            "with the labelstudio_review step or init_project(..., review=True)"
        )
    data = rows.select(
        "id",
        pl.col("given").fill_null("(none)").alias(GIVEN_KEY),
        pl.col("suggested").alias(SUGGESTED_KEY),
        pl.col("score").alias(SCORE_KEY),
        pl.col("reason").alias(REASON_KEY),
    )
    preds = None
    with_suggestion = rows.filter(pl.col("suggested").is_not_null())
    if with_suggestion.height:
        label = pl.col("suggested")
        if multilabel:
            label = label.map_elements(json.loads, return_dtype=pl.List(pl.String))
        preds = with_suggestion.select(
            "id", label.alias("label"), "score", pl.lit(model_version).alias("model_version")
        )
    corpus = corpus_mod.conform(
        rows.select("id", "text", pl.lit(None, dtype=pl.String).alias("label"))
    )
    return push_mod.push(
        client,
        project,
        corpus,
        predictions=preds,
        model_version=model_version,
        state_dir=state_dir,
        progress=progress,
        task_data=data,
    )


@dataclasses.dataclass
class ReviewResult:
    pulled: pull_mod.PullResult
    decisions: pl.DataFrame  # id, decision, old_label, new_label, reviewers, reviewed_at

    def summary(self) -> dict[str, Any]:
        counts = self.decisions["decision"].value_counts()
        by = dict(zip(counts["decision"].to_list(), counts["count"].to_list(), strict=True))
        return {
            **{k: v for k, v in self.pulled.summary().items() if k != "agreement"},
            "n_reviewed": self.decisions.height,
            "n_kept": by.get(KEEP, 0),
            "n_relabelled": by.get(RELABEL, 0),
            "n_rejected": by.get(REJECTED, 0),
        }


def pull_review(
    client: Client,
    project: int | str | Project,
    state_dir: str | Path,
    corpus: pl.DataFrame,
    *,
    full: bool = False,
    progress: Progress | None = None,
) -> ReviewResult:
    """Pull the reviewers' work (incrementally) and decide keep / relabel / reject per row."""
    result = pull_mod.pull(client, project, state_dir, full=full, progress=progress)
    return ReviewResult(result, decisions(corpus, result.consensus, result.annotations))


def decisions(
    corpus: pl.DataFrame, consensus: pl.DataFrame, annotations: pl.DataFrame
) -> pl.DataFrame:
    """One decision per corpus row the reviewers resolved; unresolved rows are left out."""
    multi = corpus_mod.is_multilabel(corpus)
    resolved = consensus.filter(pl.col("label").is_not_null()).select(
        "id", pl.col("label").alias("_new")
    )
    done = annotations.filter(~pl.col("skipped") & pl.col("label").is_not_null())
    who = done.group_by("id").agg(
        pl.col("annotator").unique().sort().str.join(", ").alias("reviewers"),
        pl.max_horizontal(pl.col("updated_at"), pl.col("created_at")).max().alias("reviewed_at"),
        pl.len().cast(pl.Int64).alias("n_reviews"),
    )
    rows = corpus.select("id", "label").join(resolved, on="id", how="inner").join(who, on="id")
    out = []
    for r in rows.iter_rows(named=True):
        new, old = r["_new"], r["label"]
        rejected = (REJECT in new) if multi else new == REJECT
        if rejected:
            decision, new = REJECTED, None
        elif _label_text(new) == _label_text(old):
            decision = KEEP
        else:
            decision = RELABEL
        out.append(
            {
                "id": r["id"],
                "decision": decision,
                "old_label": _label_text(old),
                "new_label": _label_text(new),
                "reviewers": r["reviewers"],
                "reviewed_at": r["reviewed_at"],
                "n_reviews": r["n_reviews"],
            }
        )
    return pl.DataFrame(out, schema=DECISION_SCHEMA).sort("id")


def apply_decisions(
    corpus: pl.DataFrame, decisions: pl.DataFrame, prefix: str
) -> tuple[pl.DataFrame, pl.Series]:
    """(columns for the books: id, label and `<prefix>__` provenance; keep mask in corpus order).

    The books record each relabel in the lineage (old and new label); the provenance
    columns say who decided and when.
    """
    multi = corpus_mod.is_multilabel(corpus)
    relabel = decisions.filter(pl.col("decision") == RELABEL)
    new = relabel["new_label"]
    if multi:
        new = new.map_elements(json.loads, return_dtype=pl.List(pl.String))
    fixes = pl.DataFrame({"id": relabel["id"], "_new": new})
    cols = (
        corpus.select("id", "label")
        .join(fixes, on="id", how="left", maintain_order="left")
        .join(
            decisions.select(
                "id",
                pl.col("decision").alias(f"{prefix}__decision"),
                pl.col("old_label").alias(f"{prefix}__old_label"),
                pl.col("reviewers").alias(f"{prefix}__reviewers"),
                pl.col("reviewed_at").alias(f"{prefix}__reviewed_at"),
            ),
            on="id",
            how="left",
            maintain_order="left",
        )
        .with_columns(pl.coalesce(pl.col("_new"), pl.col("label")).alias("label"))
        .drop("_new")
    )
    rejected = decisions.filter(pl.col("decision") == REJECTED)["id"]
    keep = ~corpus["id"].is_in(rejected.implode())
    return cols, keep
