"""Push a corpus to a Label Studio project: one task per example, idempotently.

Every task carries the example id in `task.data.assay_id`. A push lists the project's
tasks first and only creates tasks for new ids, updates tasks whose text changed, and
removes unannotated duplicates (left by an import whose response was lost), so a rerun
after any failure converges to exactly one task per example. Imports are never retried
automatically: a retried request whose first attempt landed would duplicate tasks.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from assay import corpus as corpus_mod
from assay.curate.labelstudio.client import Client
from assay.curate.labelstudio.config import ID_KEY, LabelConfig, Project
from assay.curate.labelstudio.state import SyncState, fresh_project, utc_now
from assay.errors import InputError
from assay.progress import Progress, SilentProgress

log = logging.getLogger(__name__)

# Tasks per import request: far below the server's 250k-task / 200 MB request limit, and
# small enough that an interrupted request loses little work.
BATCH_SIZE = 10_000
FULL_PAGE = 1000


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
    n_overlap: int = 0
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
    task_data: pl.DataFrame | None = None,
    overlap_ids: Sequence[str] = (),
    annotators: int = 2,
) -> PushReport:
    """Make the project hold exactly one task per corpus row, with the row's current text.

    `task_data` (id + columns) adds fields to each task's data, shown in Label Studio's
    data manager (why a row was chosen, the label under review); a task whose fields
    changed is updated. `overlap_ids` are tasks that `annotators` people should label.
    """
    started = time.perf_counter()
    progress = progress or SilentProgress()
    project = fresh_project(client, project)
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
    extra = _extra_data(task_data, cfg)
    for example, text in corpus.select("id", "text").iter_rows():
        data = {**extra.get(example, {}), cfg.text_key: text, ID_KEY: example}
        found = keep.get(example)
        if found is None:
            task: dict[str, Any] = {"data": data}
            if example in preds:
                task["predictions"] = [preds[example]]
            new_rows.append(task)
        elif found["text"] != text or any(found["data"].get(k) != v for k, v in data.items()):
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
            _import_batches(
                client,
                project,
                "tasks",
                client.sdk.projects.import_tasks,
                new_rows,
                batch_size,
                bar.advance,
            )
    report.n_created = len(new_rows)
    report.n_predictions = sum(1 for t in new_rows if "predictions" in t)
    report.n_predictions += _predict_existing(client, project, keep, preds, batch_size)
    report.n_tasks = len(keep) + len(new_rows)
    if overlap_ids:
        report.n_overlap = _set_overlap(client, project, keep, new_rows, overlap_ids, annotators)
    report.seconds = round(time.perf_counter() - started, 3)
    if state_dir is not None:
        sync = SyncState(state_dir)
        state = sync.bind(client.url, project)
        state["last_push"] = {**report.to_dict(), "at": utc_now()}
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


def _extra_data(task_data: pl.DataFrame | None, config: LabelConfig) -> dict[str, dict[str, Any]]:
    """id -> extra task fields; the text and id keys stay assay's."""
    if task_data is None or task_data.height == 0:
        return {}
    if "id" not in task_data.columns:
        raise InputError(f"task data needs an id column; found {task_data.columns}")
    clash = sorted({config.text_key, ID_KEY} & set(task_data.columns))
    if clash:
        raise InputError(f"task data may not set {clash}: push sets the text and example id")
    out = {}
    for row in task_data.iter_rows(named=True):
        example = row.pop("id")
        out[example] = {k: v for k, v in row.items() if v is not None}
    return out


def _set_overlap(
    client: Client,
    project: Project,
    keep: dict[str, dict[str, Any]],
    new_rows: list[dict[str, Any]],
    overlap_ids: Sequence[str],
    annotators: int,
) -> int:
    """Ask for `annotators` annotations on the overlap tasks (Label Studio's task overlap)."""
    task_ids = {ex: t["task_id"] for ex, t in keep.items()}
    if new_rows:
        wanted = set(overlap_ids) - set(task_ids)
        if wanted:
            for task in client.tasks(project.id, include="id,data"):
                example = (task.get("data") or {}).get(ID_KEY)
                if example in wanted:
                    task_ids[example] = int(task["id"])
    done = 0
    for example in overlap_ids:
        if example in task_ids:
            client.call(
                f"set the overlap of task {task_ids[example]}",
                client.sdk.tasks.update,
                id=str(task_ids[example]),
                overlap=int(annotators),
            )
            done += 1
    return done


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
    _import_batches(
        client, project, "predictions", client.sdk.projects.import_predictions, todo, batch_size
    )
    return len(todo)


def _import_batches(
    client: Client,
    project: Project,
    what: str,
    importer: Callable[..., Any],
    rows: list[dict[str, Any]],
    batch_size: int,
    advance: Callable[[int], None] | None = None,
) -> None:
    """Send `rows` to an import endpoint in batches of `batch_size`.

    No automatic retry: a retried import whose first attempt landed would duplicate rows.
    A rerun of push lists first and fills what is missing."""
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        client.call(
            f"import {len(batch)} {what} into project {project.id}",
            importer,
            id=project.id,
            request=batch,
            request_options={"max_retries": 0},
        )
        if advance is not None:
            advance(len(batch))


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
