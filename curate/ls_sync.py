"""Keep a corpus and a Label Studio project in step: push tasks, pull annotations.

Push is idempotent: every task carries the example id in `task.data.assay_id`; a push
lists the project's tasks first and only creates tasks for new ids, updates tasks whose
text changed, and removes unannotated duplicates (left by an interrupted import), so a
rerun after any failure converges to exactly one task per example.

Pull is incremental: it asks only for tasks updated since the last pull (the server's
clock, kept in the sync directory), replaces those tasks' annotations in the local
annotations table, and resolves one label per example. Files in the sync directory are
written atomically and the sync mark last, so a failed pull records nothing as synced.

Sync directory (a run directory's `labelstudio/`, or the CLI's `--dir`):
    state.json          url, project, labels, last push and pull (never the token)
    annotations.parquet one row per annotation: id, annotator, label, skipped, lead time...
    tasks.parquet       one row per task: task_id, id, text, updated_at
    consensus.parquet   the resolved label per example
    disagreements.parquet, agreement.json
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Sequence
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from assay import atomic
from assay import corpus as corpus_mod
from assay.curate import agreement as agreement_mod
from assay.curate.ls_client import LS_TIME, Client
from assay.curate.ls_config import ID_KEY, LabelConfig, Project, get_project
from assay.errors import InputError
from assay.progress import Progress, SilentProgress

log = logging.getLogger(__name__)

# Tasks per import request: far below the server's 250k-task / 200 MB request limit, and
# small enough that an interrupted request loses little work.
BATCH_SIZE = 10_000
STATE = "state.json"
ANNOTATIONS = "annotations.parquet"
TASKS = "tasks.parquet"
CONSENSUS = "consensus.parquet"
DISAGREEMENTS = "disagreements.parquet"
AGREEMENT = "agreement.json"
# A pull asks for tasks updated after (its start on the server's clock - margin): requests
# in flight at the boundary are pulled twice rather than never; pulling twice is harmless.
PULL_MARGIN_S = 1.0
LIGHT_FIELDS = "id,data,updated_at,total_annotations,cancelled_annotations"
FULL_PAGE = 1000


# -- local state --------------------------------------------------------------------------


class SyncState:
    """The sync directory of one project on one server."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)

    def read(self) -> dict[str, Any]:
        path = self.dir / STATE
        if not path.exists():
            return {}
        try:
            return json.loads(path.read_text())
        except ValueError as exc:
            raise InputError(f"{path} is damaged ({exc}); delete it to pull everything") from None

    def bind(self, url: str, project: Project) -> dict[str, Any]:
        """The state for this server and project; an error if the directory syncs another."""
        state = self.read()
        if state and (state.get("url") != url or state.get("project") != project.id):
            raise InputError(
                f"{self.dir} syncs project {state.get('project')} at {state.get('url')}, not "
                f"project {project.id} at {url}; use another directory"
            )
        state.update(
            url=url,
            project=project.id,
            title=project.title,
            labels=list(project.config.labels),
            multilabel=project.config.multilabel,
        )
        return state

    def write(self, state: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic.write_json(self.dir / STATE, state)

    def table(self, name: str) -> pl.DataFrame | None:
        path = self.dir / name
        return pl.read_parquet(path) if path.exists() else None

    def write_table(self, name: str, frame: pl.DataFrame) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic.write_parquet(self.dir / name, frame)


# -- selecting what to push -----------------------------------------------------------------


def select_rows(
    corpus: pl.DataFrame,
    *,
    only_unlabeled: bool = False,
    flagged: str | None = None,
    splits: Sequence[str] | None = None,
    sample: int | None = None,
    rng: np.random.Generator | None = None,
) -> pl.DataFrame:
    """The rows to send for labelling: unlabelled ones, ones an audit flagged, a sample."""
    rows = corpus
    if splits:
        rows = rows.filter(pl.col("split").is_in(list(splits)))
    if only_unlabeled:
        rows = rows.filter(pl.col("label").is_null())
    if flagged:
        if flagged not in rows.columns:
            flags = [c for c, t in corpus.schema.items() if t == pl.Boolean]
            raise InputError(
                f"no column {flagged!r} to select flagged rows; boolean columns found: {flags} "
                "(run the audit first, e.g. label_noise gives label_noise__is_issue)"
            )
        if rows.schema[flagged] != pl.Boolean:
            raise InputError(
                f"column {flagged!r} has type {rows.schema[flagged]}, expected a boolean flag"
            )
        rows = rows.filter(pl.col(flagged).fill_null(False))
    if sample is not None and sample < rows.height:
        if rng is None:
            raise InputError("sampling rows to push needs a random generator (a seed)")
        pick = np.sort(rng.choice(rows.height, size=sample, replace=False))
        rows = rows[pick]
    return rows


# -- push -------------------------------------------------------------------------------------


@dataclasses.dataclass
class PushReport:
    project: int
    n_selected: int = 0
    n_created: int = 0
    n_updated: int = 0
    n_unchanged: int = 0
    n_duplicates_removed: int = 0
    n_duplicates_kept: int = 0
    n_predictions: int = 0
    n_tasks: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _prediction_table(
    predictions: pl.DataFrame | None, config: LabelConfig, model_version: str | None
) -> dict[str, dict[str, Any]]:
    """id -> prediction payload, from a table with id, label and optional score/model_version."""
    if predictions is None or predictions.height == 0:
        return {}
    missing = [c for c in ("id", "label") if c not in predictions.columns]
    if missing:
        raise InputError(
            f"predictions need the columns id and label (+ score, model_version); missing "
            f"{missing}, found {predictions.columns}"
        )
    values = predictions["label"].explode() if config.multilabel else predictions["label"]
    unknown = sorted(set(values.drop_nulls().to_list()) - set(config.labels))
    if unknown:
        raise InputError(
            f"predicted labels {unknown} are not choices in the project {list(config.labels)}"
        )
    out: dict[str, dict[str, Any]] = {}
    for row in predictions.iter_rows(named=True):
        if row["label"] is None:
            continue
        label = row["label"]
        if config.multilabel and isinstance(label, str):
            label = [label]
        pred: dict[str, Any] = {
            "model_version": str(row.get("model_version") or model_version or "assay"),
            "result": config.result(label),
        }
        if row.get("score") is not None:
            pred["score"] = float(row["score"])
        out[row["id"]] = pred
    return out


def push(
    client: Client,
    project: int | str | Project,
    corpus: pl.DataFrame,
    *,
    predictions: pl.DataFrame | None = None,
    model_version: str | None = None,
    batch_size: int = BATCH_SIZE,
    state_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> PushReport:
    """Make the project hold exactly one task per corpus row, with the row's current text."""
    started = time.perf_counter()
    progress = progress or SilentProgress()
    project = _fresh(client, project)
    cfg = project.config
    labels = corpus_mod.label_set(corpus)
    unknown = sorted(set(labels) - set(cfg.labels))
    if unknown:
        raise InputError(
            f"the corpus has labels {unknown} that project {project.id} does not offer "
            f"{list(cfg.labels)}; add them to the project or run `assay ls init` on a new one"
        )
    report = PushReport(project=project.id, n_selected=corpus.height)
    preds = _prediction_table(predictions, cfg, model_version)
    existing = _existing_tasks(client, project, progress)
    keep, extra_ids, kept_dups = _resolve_duplicates(existing)
    if extra_ids:
        with progress.task("removing duplicate tasks", total=len(extra_ids)) as bar:
            for task_id in extra_ids:
                client.call(
                    f"delete duplicate task {task_id}", client.sdk.tasks.delete, id=str(task_id)
                )
                bar.advance(1)
    report.n_duplicates_removed = len(extra_ids)
    report.n_duplicates_kept = kept_dups
    new_rows: list[dict[str, Any]] = []
    changed: list[tuple[int, dict[str, Any]]] = []
    for example, text in corpus.select("id", "text").iter_rows():
        data = {cfg.text_key: text, ID_KEY: example}
        found = keep.get(example)
        if found is None:
            task: dict[str, Any] = {"data": data}
            if example in preds:
                task["predictions"] = [preds[example]]
            new_rows.append(task)
        elif found["text"] != text:
            changed.append((found["task_id"], {**found["data"], **data}))
        else:
            report.n_unchanged += 1
    if changed:
        with progress.task("updating changed tasks", total=len(changed)) as bar:
            for task_id, data in changed:
                client.call(
                    f"update task {task_id}", client.sdk.tasks.update, id=str(task_id), data=data
                )
                bar.advance(1)
    report.n_updated = len(changed)
    if new_rows:
        with progress.task(
            f"importing tasks into project {project.id}", total=len(new_rows)
        ) as bar:
            for start in range(0, len(new_rows), batch_size):
                batch = new_rows[start : start + batch_size]
                # No automatic retry: a retried import whose first attempt landed would
                # duplicate tasks. A rerun of push lists first and fills what is missing.
                client.call(
                    f"import {len(batch)} tasks into project {project.id}",
                    client.sdk.projects.import_tasks,
                    id=project.id,
                    request=batch,
                    request_options={"max_retries": 0},
                )
                bar.advance(len(batch))
    report.n_created = len(new_rows)
    report.n_predictions = sum(1 for t in new_rows if "predictions" in t)
    report.n_predictions += _predict_existing(client, project, keep, preds, batch_size)
    report.n_tasks = len(keep) + len(new_rows)
    report.seconds = round(time.perf_counter() - started, 3)
    if state_dir is not None:
        sync = SyncState(state_dir)
        state = sync.bind(client.url, project)
        state["last_push"] = {**report.to_dict(), "at": _utc_now()}
        sync.write(state)
    log.info(
        "pushed to project %d: %d created, %d updated, %d unchanged, %d duplicates removed",
        project.id,
        report.n_created,
        report.n_updated,
        report.n_unchanged,
        report.n_duplicates_removed,
    )
    return report


def _predict_existing(
    client: Client,
    project: Project,
    keep: dict[str, dict[str, Any]],
    preds: dict[str, dict[str, Any]],
    batch_size: int,
) -> int:
    """Attach predictions to tasks that already exist, once per model version."""
    targets = {ex: keep[ex]["task_id"] for ex in preds if ex in keep}
    if not targets:
        return 0
    have = {
        (int(p.task), str(p.model_version or ""))
        for p in client.call(
            f"list the predictions of project {project.id}",
            client.sdk.predictions.list,
            project=project.id,
        )
        if p.task is not None
    }
    todo = [
        {"task": task_id, **preds[ex]}
        for ex, task_id in targets.items()
        if (task_id, preds[ex]["model_version"]) not in have
    ]
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        client.call(
            f"import {len(batch)} predictions into project {project.id}",
            client.sdk.projects.import_predictions,
            id=project.id,
            request=batch,
            request_options={"max_retries": 0},
        )
    return len(todo)


def _fresh(client: Client, project: int | str | Project) -> Project:
    ref = project.id if isinstance(project, Project) else project
    return get_project(client, ref)


def _existing_tasks(client: Client, project: Project, progress: Progress) -> list[dict[str, Any]]:
    if project.task_number == 0:
        return []
    out = []
    with progress.task(f"listing tasks of project {project.id}", total=project.task_number) as bar:
        for task in client.tasks(project.id, include="id,data"):
            data = task.get("data") or {}
            out.append(
                {
                    "task_id": int(task["id"]),
                    "id": data.get(ID_KEY),
                    "text": data.get(project.config.text_key),
                    "data": data,
                    "n_annotations": 0,
                }
            )
            bar.advance(1)
    _count_duplicate_annotations(client, project, out)
    return out


def _count_duplicate_annotations(
    client: Client, project: Project, tasks: list[dict[str, Any]]
) -> None:
    """Annotation counts, fetched only for tasks that share an example id (rare)."""
    seen: dict[str, int] = {}
    for t in tasks:
        if t["id"] is not None:
            seen[t["id"]] = seen.get(t["id"], 0) + 1
    dup = [t for t in tasks if seen.get(t["id"], 0) > 1]
    if not dup:
        return
    counts: dict[int, int] = {}
    ids = [t["task_id"] for t in dup]
    for start in range(0, len(ids), FULL_PAGE):
        for task in client.tasks(
            project.id,
            include="id,total_annotations,cancelled_annotations",
            selected=ids[start : start + FULL_PAGE],
            page_size=FULL_PAGE,
        ):
            counts[int(task["id"])] = int(task.get("total_annotations") or 0) + int(
                task.get("cancelled_annotations") or 0
            )
    for t in dup:
        t["n_annotations"] = counts.get(t["task_id"], 0)


def _resolve_duplicates(
    existing: list[dict[str, Any]],
) -> tuple[dict[str, dict[str, Any]], list[int], int]:
    """One task per example id: keep the most annotated (then oldest); drop unannotated extras."""
    by_id: dict[str, list[dict[str, Any]]] = {}
    for task in existing:
        if task["id"] is not None:
            by_id.setdefault(task["id"], []).append(task)
    keep: dict[str, dict[str, Any]] = {}
    extra: list[int] = []
    kept_dups = 0
    for example, tasks in by_id.items():
        tasks.sort(key=lambda t: (-t["n_annotations"], t["task_id"]))
        keep[example] = tasks[0]
        for t in tasks[1:]:
            if t["n_annotations"]:
                # Annotated work is never deleted; pull merges it under the same example id.
                kept_dups += 1
            else:
                extra.append(t["task_id"])
    if kept_dups:
        log.warning(
            "%d duplicate tasks carry annotations and were kept; their annotations are pulled "
            "under the same example id",
            kept_dups,
        )
    return keep, sorted(extra), kept_dups


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
    project = _fresh(client, project)
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


def _utc_now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).strftime(LS_TIME)


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
    project = _fresh(client, project)
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
    }
    if state_dir is not None:
        sync = SyncState(state_dir)
        state = sync.read()
        if state.get("project") == project.id:
            out["last_push"] = (state.get("last_push") or {}).get("at")
            out["last_pull"] = state.get("last_pull")
            summary = state.get("last_pull_summary") or {}
            out["n_disagreements"] = summary.get("n_disagreements")
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
