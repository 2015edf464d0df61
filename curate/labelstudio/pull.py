"""Pull annotations from a Label Studio project, incrementally, and resolve labels.

A pull asks only for tasks updated since the last pull (on the server's clock, kept in the
sync directory), replaces those tasks' annotations in the local annotations table, and
resolves one label per example. Tables are written first and the sync mark last, so a
failed pull records nothing as synced and is simply repeated.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import polars as pl

from assay import atomic
from assay import corpus as corpus_mod
from assay.curate import agreement as agreement_mod
from assay.curate.labelstudio.client import LS_TIME, Client
from assay.curate.labelstudio.config import ID_KEY, LabelConfig, Project
from assay.curate.labelstudio.state import (
    AGREEMENT,
    ANNOTATIONS,
    CONSENSUS,
    DISAGREEMENTS,
    TASKS,
    SyncState,
    fresh_project,
)
from assay.errors import InputError
from assay.progress import Progress, SilentProgress

log = logging.getLogger(__name__)

# A pull asks for tasks updated after (its start on the server's clock - margin): requests
# in flight at the boundary are pulled twice rather than never; pulling twice is harmless.
PULL_MARGIN_S = 1.0
LIGHT_FIELDS = "id,data,updated_at,total_annotations,cancelled_annotations"
FULL_PAGE = 1000


# -- pull -------------------------------------------------------------------------------------


@dataclasses.dataclass
class PullResult:
    project: int
    n_tasks_pulled: int
    n_annotations_pulled: int
    annotations: pl.DataFrame
    tasks: pl.DataFrame
    consensus: pl.DataFrame
    agreement: agreement_mod.AgreementReport | None
    unknown_labels: pl.DataFrame
    since: str | None
    synced_at: str | None
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "since": self.since,
            "synced_at": self.synced_at,
            "n_tasks_pulled": self.n_tasks_pulled,
            "n_annotations_pulled": self.n_annotations_pulled,
            "n_annotations": self.annotations.height,
            "n_skipped": int(self.annotations["skipped"].sum()) if self.annotations.height else 0,
            "n_resolved": int(self.consensus["label"].is_not_null().sum()),
            "n_disagreements": self.agreement.disagreements.height if self.agreement else 0,
            "n_unknown_labels": self.unknown_labels.height,
            "agreement": self.agreement.overall if self.agreement else {},
            "seconds": self.seconds,
        }


def annotation_schema(multilabel: bool) -> dict[str, pl.DataType]:
    return {
        "id": pl.String(),
        "task_id": pl.Int64(),
        "annotation_id": pl.Int64(),
        "annotator": pl.String(),
        "label": pl.List(pl.String()) if multilabel else pl.String(),
        "skipped": pl.Boolean(),
        "unknown_labels": pl.List(pl.String()),
        "lead_time": pl.Float64(),
        "created_at": pl.String(),
        "updated_at": pl.String(),
        "ground_truth": pl.Boolean(),
    }


TASK_SCHEMA = {
    "task_id": pl.Int64(),
    "id": pl.String(),
    "text": pl.String(),
    "updated_at": pl.String(),
}


def task_annotations(
    task: dict[str, Any], config: LabelConfig, users: dict[int, str]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One exported or listed task -> (task row, annotation rows)."""
    data = task.get("data") or {}
    task_id = int(task["id"])
    example = str(data.get(ID_KEY) or f"ls-{task_id}")
    task_row = {
        "task_id": task_id,
        "id": example,
        "text": data.get(config.text_key),
        "updated_at": task.get("updated_at"),
    }
    rows = []
    for ann in task.get("annotations") or []:
        chosen: list[str] = []
        for item in ann.get("result") or []:
            if item.get("from_name") == config.from_name and item.get("type") == "choices":
                chosen.extend(item.get("value", {}).get("choices") or [])
        skipped = bool(ann.get("was_cancelled"))
        unknown = sorted(set(chosen) - set(config.labels))
        valid = [c for c in chosen if c in config.labels]
        if skipped or not valid:
            label: Any = None
        elif config.multilabel:
            label = sorted(set(valid))
        else:
            label = valid[0] if len(valid) == 1 and not unknown else None
        who = ann.get("completed_by")
        if isinstance(who, dict):
            who = who.get("id")
        rows.append(
            {
                "id": example,
                "task_id": task_id,
                "annotation_id": int(ann["id"]),
                "annotator": users.get(int(who), str(who)) if who is not None else None,
                "label": label,
                "skipped": skipped,
                "unknown_labels": unknown,
                "lead_time": ann.get("lead_time"),
                "created_at": ann.get("created_at"),
                "updated_at": ann.get("updated_at"),
                "ground_truth": bool(ann.get("ground_truth")),
            }
        )
    return task_row, rows


def pull(
    client: Client,
    project: int | str | Project,
    state_dir: str | Path,
    *,
    full: bool = False,
    method: str = agreement_mod.MAJORITY,
    pred_probs: pl.DataFrame | None = None,
    progress: Progress | None = None,
) -> PullResult:
    """Fetch annotations of tasks updated since the last pull and resolve labels."""
    started = time.perf_counter()
    progress = progress or SilentProgress()
    project = fresh_project(client, project)
    cfg = project.config
    sync = SyncState(state_dir)
    state = sync.bind(client.url, project)
    since = None if full else state.get("last_pull")
    mark = _server_mark(client)
    filters = []
    if since:
        filters.append(
            {
                "filter": "filter:tasks:updated_at",
                "operator": "greater",
                "type": "Datetime",
                "value": since,
            }
        )
    users = client.users()
    task_rows: list[dict[str, Any]] = []
    ann_rows: list[dict[str, Any]] = []
    # A light listing of the updated tasks first, then full records only for tasks with
    # annotations: full records cost ~5x more to serve, and most tasks have none.
    light = list(client.tasks(project.id, include=LIGHT_FIELDS, filters=filters))
    annotated = [
        int(t["id"])
        for t in light
        if int(t.get("total_annotations") or 0) + int(t.get("cancelled_annotations") or 0)
    ]
    records: dict[int, dict[str, Any]] = {}
    with progress.task(f"pulling annotations of project {project.id}", total=len(annotated)) as bar:
        for start in range(0, len(annotated), FULL_PAGE):
            chunk = annotated[start : start + FULL_PAGE]
            for task in client.tasks(
                project.id, include=None, fields="all", selected=chunk, page_size=FULL_PAGE
            ):
                records[int(task["id"])] = task
            bar.advance(len(chunk))
    for task in light:
        t, a = task_annotations(records.get(int(task["id"]), task), cfg, users)
        task_rows.append(t)
        ann_rows.extend(a)
    schema = annotation_schema(cfg.multilabel)
    pulled_tasks = pl.DataFrame(task_rows, schema=TASK_SCHEMA)
    pulled = pl.DataFrame(ann_rows, schema=schema)
    old_ann = None if full else sync.table(ANNOTATIONS)
    old_tasks = None if full else sync.table(TASKS)
    annotations = _replace(old_ann, pulled, pulled_tasks["task_id"], schema)
    tasks = _replace(old_tasks, pulled_tasks, pulled_tasks["task_id"], TASK_SCHEMA)
    annotations = annotations.sort(["id", "annotator", "annotation_id"])
    tasks = tasks.sort("task_id")
    unknown = annotations.filter(pl.col("unknown_labels").list.len() > 0).select(
        "id", "task_id", "annotation_id", "annotator", "unknown_labels"
    )
    if unknown.height:
        log.warning(
            "%d annotations use labels that are not in the label set %s (e.g. %s); they are "
            "reported and left out of consensus",
            unknown.height,
            list(cfg.labels),
            unknown["unknown_labels"].explode().unique().sort().head(5).to_list(),
        )
    labelled = annotations.filter(pl.col("unknown_labels").list.len() == 0)
    report = None
    if agreement_mod.usable(labelled).height:
        report = agreement_mod.agreement(labelled, cfg.labels, method=method, pred_probs=pred_probs)
        cons = report.consensus
    else:
        cons = agreement_mod.consensus(labelled, cfg.labels)
    result = PullResult(
        project=project.id,
        n_tasks_pulled=pulled_tasks.height,
        n_annotations_pulled=pulled.height,
        annotations=annotations,
        tasks=tasks,
        consensus=cons,
        agreement=report,
        unknown_labels=unknown,
        since=since,
        synced_at=mark,
    )
    result.seconds = round(time.perf_counter() - started, 3)
    # Tables first, the sync mark last: an interrupted pull is simply repeated.
    sync.write_table(ANNOTATIONS, annotations)
    sync.write_table(TASKS, tasks)
    sync.write_table(CONSENSUS, cons)
    if report is not None:
        sync.write_table(DISAGREEMENTS, report.disagreements)
    atomic.write_json(sync.dir / AGREEMENT, report.to_dict() if report else {})
    state["last_pull"] = mark
    state["last_pull_summary"] = {
        k: v for k, v in result.summary().items() if k not in ("agreement",)
    }
    sync.write(state)
    log.info(
        "pulled %d tasks (%d annotations) from project %d",
        pulled_tasks.height,
        pulled.height,
        project.id,
    )
    return result


def _replace(
    old: pl.DataFrame | None, new: pl.DataFrame, task_ids: pl.Series, schema: dict[str, Any]
) -> pl.DataFrame:
    """The old table without the pulled tasks' rows, plus the pulled rows."""
    if old is None or old.height == 0:
        return new
    old = old.filter(~pl.col("task_id").is_in(task_ids.implode()))
    return pl.concat([old.cast(schema), new], how="vertical")


def _server_mark(client: Client) -> str:
    """The server's time minus a margin, formatted for the data manager's filter."""
    date = client.server_time()
    from datetime import datetime, timedelta, timezone

    now = parsedate_to_datetime(date) if date else datetime.now(timezone.utc)
    return (now - timedelta(seconds=PULL_MARGIN_S)).astimezone(timezone.utc).strftime(LS_TIME)


# -- applying pulled labels, and status ------------------------------------------------------


def apply_labels(
    corpus: pl.DataFrame, consensus: pl.DataFrame, prefix: str = "labelstudio_pull"
) -> pl.DataFrame:
    """The corpus with resolved labels where annotators reached one; other labels unchanged.

    Adds `<prefix>__status`, `__n_annotations` and `__agreement` (null for rows without
    annotations) and `__previous_label` (the label before the pull).
    """
    multi = corpus_mod.is_multilabel(corpus)
    cons = consensus.select(
        "id",
        pl.col("label").alias("_resolved"),
        pl.col("status").alias(f"{prefix}__status"),
        pl.col("n_annotations").alias(f"{prefix}__n_annotations"),
        pl.col("agreement").alias(f"{prefix}__agreement"),
    )
    if isinstance(cons.schema["_resolved"], pl.List) != multi:
        raise InputError(
            "the project is "
            + ("multi-label" if not multi else "single-label")
            + " but the corpus is "
            + ("multi-label" if multi else "single-label")
        )
    ours = [c for c in cons.columns if c.startswith(f"{prefix}__")] + [f"{prefix}__previous_label"]
    out = corpus.drop([c for c in ours if c in corpus.columns]).join(
        cons, on="id", how="left", maintain_order="left"
    )
    return out.with_columns(
        pl.col("label").alias(f"{prefix}__previous_label"),
        pl.coalesce(pl.col("_resolved"), pl.col("label")).alias("label"),
    ).drop("_resolved")


def corpus_from_pull(result: PullResult) -> pl.DataFrame:
    """A corpus of the pulled tasks: text from Label Studio, label from consensus."""
    tasks = result.tasks.unique("id", keep="first", maintain_order=True)
    base = corpus_mod.conform(
        tasks.select("id", "text").with_columns(
            label=pl.lit(None, dtype=result.consensus.schema["label"])
        )
    )
    return apply_labels(base, result.consensus)


def status(client: Client, project: int | str | Project, state_dir: str | Path | None) -> dict:
    """Counts of tasks, annotated tasks and disagreements, and the last sync times."""
    project = fresh_project(client, project)
    _, total = _count(client, project.id, [])
    _, annotated = _count(
        client,
        project.id,
        [
            {
                "filter": "filter:tasks:total_annotations",
                "operator": "greater",
                "type": "Number",
                "value": 0,
            }
        ],
    )
    out: dict[str, Any] = {
        "url": client.url,
        "project": project.id,
        "title": project.title,
        "labels": list(project.config.labels),
        "n_tasks": total,
        "n_annotated": annotated,
        "n_disagreements": None,
        "last_push": None,
        "last_pull": None,
        "rounds": [],
    }
    if state_dir is not None:
        sync = SyncState(state_dir)
        state = sync.read()
        if state.get("project") == project.id:
            out["last_push"] = (state.get("last_push") or {}).get("at")
            out["last_pull"] = state.get("last_pull")
            summary = state.get("last_pull_summary") or {}
            out["n_disagreements"] = summary.get("n_disagreements")
            out["rounds"] = list(state.get("rounds") or [])
    return out


def _count(client: Client, project: int, filters: list[dict[str, Any]]) -> tuple[dict, int]:
    query = {"filters": {"conjunction": "and", "items": filters}}
    body, _ = client.raw_get(
        "api/tasks/",
        {
            "project": project,
            "page": 1,
            "page_size": 1,
            "include": "id",
            "query": json.dumps(query),
        },
        f"count the tasks of project {project}",
    )
    return body, int(body.get("total", 0))
