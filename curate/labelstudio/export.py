"""Read a Label Studio JSON export (a list of tasks): the one reader of exports.

A task may carry several annotations (several annotators, or one annotator changing their
mind). The label rule says which label a task gets:

- `latest`: the newest non-cancelled annotation (by updated_at, then created_at, then id);
- `majority`: the consensus of the annotators (each annotator's latest annotation counts
  once; a tie leaves the task unlabelled);
- `all`: the majority label, and every annotation kept in `labelstudio__annotations`
  (a list of {annotator, label, skipped, updated_at}).

Every rule also adds the annotators' consensus: `labelstudio__status` (agreed, majority,
tie, single), `labelstudio__n_annotations` and `labelstudio__agreement`.
Recipes read exports through `curate.io` (input option `annotations`), which calls this.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import polars as pl

from assay import corpus as corpus_mod
from assay.curate import agreement as agreement_mod
from assay.curate.labelstudio import sync as ls_sync
from assay.curate.labelstudio.config import ID_KEY, TEXT_KEY, LabelConfig
from assay.errors import InputError

LATEST, MAJORITY, ALL = "latest", "majority", "all"
LabelRule = Literal["latest", "majority", "all"]
LABEL_RULES: tuple[str, ...] = (LATEST, MAJORITY, ALL)
DEFAULT_RULE: LabelRule = "majority"
TASK_ID = "ls_task_id"
PREFIX = "labelstudio"
ANNOTATIONS = f"{PREFIX}__annotations"


def read_export(
    export: str | Path | list[dict[str, Any]],
    *,
    annotations: LabelRule = DEFAULT_RULE,
    labels: list[str] | None = None,
    text_key: str | None = None,
    multilabel: bool = False,
) -> pl.DataFrame:
    """One row per task: every `data` field as a column, `ls_task_id`, `label` by the label
    rule `annotations`, and the consensus columns (see the module docstring).

    Labels are strings unless `multilabel` is set or some annotation chose several. The text
    field is `text_key`, else `data.text`, else the only string field. Annotation labels
    outside `labels` (when given) raise an InputError naming them.
    """
    if annotations not in LABEL_RULES:
        raise InputError(
            f"annotations must be one of {list(LABEL_RULES)} (how to label a task with "
            f"several annotations), got {annotations!r}"
        )
    tasks = _load_export(export)
    from_name, seen, several = _choices_of(tasks)
    tasks = _normalise(tasks, from_name)
    if text_key is None:
        text_key = _text_key(tasks)
    elif tasks and not any(text_key in (t.get("data") or {}) for t in tasks):
        found = sorted({k for t in tasks for k in (t.get("data") or {})})
        raise InputError(
            f"the Label Studio tasks have no data field {text_key!r}; found {found}; set "
            "text_column to the field holding the text"
        )
    if labels is not None:
        unknown = sorted(seen - set(labels))
        if unknown:
            raise InputError(
                f"the export has labels {unknown} that are not in the label set {labels}"
            )
    config = LabelConfig(
        labels=tuple(labels if labels is not None else sorted(seen)),
        multilabel=multilabel or several,
        from_name=from_name,
        text_key=text_key,
    )
    label_type = pl.List(pl.String) if config.multilabel else pl.String
    ann_rows: list[dict[str, Any]] = []
    data_rows: list[dict[str, Any]] = []
    for task in tasks:
        _, rows = ls_sync.task_annotations(task, config, {})
        ann_rows.extend(rows)
        data = {k: v for k, v in (task.get("data") or {}).items() if k != "label"}
        data[TASK_ID] = int(task["id"])
        data_rows.append(data)
    # Annotations are keyed by task here (two tasks may carry the same example id).
    anns = pl.DataFrame(ann_rows, schema=ls_sync.annotation_schema(config.multilabel))
    anns = anns.with_columns(pl.col("task_id").cast(pl.String).alias("id"))
    frame = pl.DataFrame(data_rows, infer_schema_length=None, strict=False)
    if not data_rows:
        frame = pl.DataFrame(schema={TASK_ID: pl.Int64})
    cons = agreement_mod.consensus(anns, config.labels, method=agreement_mod.MAJORITY)
    by_task = cons.select(
        pl.col("id").cast(pl.Int64).alias(TASK_ID),
        pl.col("label").cast(label_type),
        pl.col("status").alias(f"{PREFIX}__status"),
        pl.col("n_annotations").alias(f"{PREFIX}__n_annotations"),
        pl.col("agreement").alias(f"{PREFIX}__agreement"),
    )
    if annotations == LATEST:
        by_task = by_task.drop("label").join(
            _latest(anns, label_type), on=TASK_ID, how="full", coalesce=True
        )
    frame = frame.join(by_task, on=TASK_ID, how="left", maintain_order="left")
    if annotations == ALL:
        frame = frame.join(_every_annotation(anns), on=TASK_ID, how="left", maintain_order="left")
    return frame


def corpus_from_export(
    export: str | Path | list[dict[str, Any]],
    *,
    labels: list[str] | None = None,
    annotations: LabelRule = DEFAULT_RULE,
) -> pl.DataFrame:
    """Read a Label Studio JSON export as a corpus.

    The example id is `data.assay_id` when present (tasks pushed by assay), else
    `ls-<task id>`. The text is `data.text` (or the only string field). The label follows
    the rule `annotations`; tasks without one are in split 'unlabeled'.
    """
    tasks = _load_export(export)
    text_key = _text_key(tasks)
    raw = read_export(tasks, annotations=annotations, labels=labels, text_key=text_key)
    task_ids = pl.lit("ls-") + pl.col(TASK_ID).cast(pl.String)
    example = (
        pl.coalesce(pl.col(ID_KEY).cast(pl.String), task_ids) if ID_KEY in raw.columns else task_ids
    )
    frame = raw.with_columns(id=example, text=pl.col(text_key).cast(pl.String))
    dup = frame.filter(pl.col("id").is_duplicated())["id"].unique().to_list()
    if dup:
        raise InputError(f"the export has several tasks for example ids {sorted(dup)[:5]}")
    ours = [c for c in frame.columns if c.startswith(f"{PREFIX}__")]
    frame = corpus_mod.conform(frame.select("id", "text", "label", *ours))
    return frame.with_columns(
        split=pl.when(pl.col("label").is_null()).then(pl.lit("unlabeled")).otherwise(None),
        origin=pl.lit("labelstudio"),
    )


def _latest(anns: pl.DataFrame, label_type: pl.DataType) -> pl.DataFrame:
    """The label of each task's newest non-cancelled annotation."""
    accepted = anns.filter(~pl.col("skipped")).with_columns(
        _when=pl.coalesce("updated_at", "created_at").fill_null("")
    )
    newest = accepted.sort(["task_id", "_when", "annotation_id"]).unique(
        "task_id", keep="last", maintain_order=True
    )
    return newest.select(pl.col("task_id").alias(TASK_ID), pl.col("label").cast(label_type))


def _every_annotation(anns: pl.DataFrame) -> pl.DataFrame:
    fields = ["annotator", "label", "skipped", "updated_at"]
    return (
        anns.sort(["task_id", "annotation_id"])
        .group_by("task_id", maintain_order=True)
        .agg(pl.struct(fields).alias(ANNOTATIONS))
        .rename({"task_id": TASK_ID})
    )


def _load_export(export: Any) -> list[dict[str, Any]]:
    """The tasks of an export given as a path or as parsed JSON."""
    if not isinstance(export, (str, Path)):
        tasks: Any = export
        where = "the Label Studio export"
    else:
        path = Path(export)
        where = str(path)
        try:
            tasks = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read {path} as a Label Studio JSON export: {exc}") from None
    if not isinstance(tasks, list):
        raise InputError(f"{where}: expected a JSON list of tasks, found {type(tasks).__name__}")
    bad = [i for i, t in enumerate(tasks) if not isinstance(t, dict) or "id" not in t]
    if bad:
        raise InputError(
            f"{where}: a Label Studio export is a JSON list of tasks with an 'id' each; "
            f"item {bad[0]} is not"
        )
    return tasks


def _text_key(tasks: list[dict[str, Any]]) -> str:
    for task in tasks:
        data = task.get("data") or {}
        if TEXT_KEY in data:
            return TEXT_KEY
        strings = [k for k, v in data.items() if isinstance(v, str) and k != ID_KEY]
        if len(strings) == 1:
            return strings[0]
    raise InputError(
        "cannot find the text in the export's task data: expected a 'text' field or exactly "
        "one string field"
    )


def _is_choice(item: dict[str, Any]) -> bool:
    # Hand-written or older exports may omit `type`; a `choices` value is a choice.
    value = item.get("value") or {}
    return item.get("type", "choices") == "choices" and "choices" in value


def _choices_of(tasks: list[dict[str, Any]]) -> tuple[str, set[str], bool]:
    names: set[str] = set()
    labels: set[str] = set()
    multilabel = False
    for task in tasks:
        for ann in task.get("annotations") or []:
            for item in ann.get("result") or []:
                if _is_choice(item):
                    if "from_name" in item:
                        names.add(item["from_name"])
                    chosen = item["value"].get("choices") or []
                    labels.update(chosen)
                    multilabel |= len(chosen) > 1
    if len(names) > 1:
        raise InputError(f"the export has several choice controls {sorted(names)}; assay reads one")
    return (names.pop() if names else "label"), labels, multilabel


def _normalise(tasks: list[dict[str, Any]], from_name: str) -> list[dict[str, Any]]:
    """Tasks whose choice results all name their type and control (copies where needed)."""
    out = []
    for task in tasks:
        anns = task.get("annotations") or []
        if all(
            "type" in item and "from_name" in item
            for ann in anns
            for item in ann.get("result") or []
            if _is_choice(item)
        ):
            out.append(task)
            continue
        fixed = []
        for ann in anns:
            result = [
                {"type": "choices", "from_name": from_name, **item} if _is_choice(item) else item
                for item in ann.get("result") or []
            ]
            fixed.append({**ann, "result": result})
        out.append({**task, "annotations": fixed})
    return out
