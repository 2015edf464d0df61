"""Read a Label Studio JSON export (a list of tasks) as a corpus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from assay import corpus as corpus_mod
from assay.curate import agreement as agreement_mod
from assay.curate.labelstudio import sync as ls_sync
from assay.curate.labelstudio.config import ID_KEY, TEXT_KEY, LabelConfig
from assay.errors import InputError


def corpus_from_export(
    export: str | Path | list[dict[str, Any]],
    *,
    labels: list[str] | None = None,
    method: str = agreement_mod.MAJORITY,
) -> pl.DataFrame:
    """Read a Label Studio JSON export (a list of tasks) as a corpus.

    The example id is `data.assay_id` when present (tasks pushed by assay), else
    `ls-<task id>`. The text is `data.text` (or the only string field). The label is the
    majority of the non-skipped annotations; tasks without one are in split 'unlabeled'.
    Annotation labels outside `labels` (when given) raise an InputError naming them.
    """
    tasks = _load_export(export)
    text_key = _text_key(tasks)
    from_name, seen, multilabel = _choices_of(tasks)
    if labels is not None:
        unknown = sorted(seen - set(labels))
        if unknown:
            raise InputError(
                f"the export has labels {unknown} that are not in the label set {labels}"
            )
    config = LabelConfig(
        labels=tuple(labels if labels is not None else sorted(seen)),
        multilabel=multilabel,
        from_name=from_name,
        text_key=text_key,
    )
    task_rows, ann_rows = [], []
    for task in tasks:
        t, a = ls_sync.task_annotations(task, config, {})
        task_rows.append(t)
        ann_rows.extend(a)
    tasks_frame = pl.DataFrame(task_rows, schema=ls_sync.TASK_SCHEMA)
    annotations = pl.DataFrame(ann_rows, schema=ls_sync.annotation_schema(multilabel))
    dup = tasks_frame.filter(pl.col("id").is_duplicated())["id"].unique().to_list()
    if dup:
        raise InputError(f"the export has several tasks for example ids {sorted(dup)[:5]}")
    cons = agreement_mod.consensus(annotations, config.labels, method=method)
    label_type = pl.List(pl.String) if multilabel else pl.String
    base = tasks_frame.select("id", "text").with_columns(label=pl.lit(None, dtype=label_type))
    frame = ls_sync.apply_labels(corpus_mod.conform(base), cons, prefix="labelstudio")
    frame = frame.drop("labelstudio__previous_label").with_columns(
        split=pl.when(pl.col("label").is_null()).then(pl.lit("unlabeled")).otherwise(None),
        origin=pl.lit("labelstudio"),
    )
    return frame


def _load_export(export: str | Path | list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(export, list):
        return export
    path = Path(export)
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path} as a Label Studio JSON export: {exc}") from None
    if not isinstance(tasks, list):
        raise InputError(f"{path}: expected a JSON list of tasks, found {type(tasks).__name__}")
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


def _choices_of(tasks: list[dict[str, Any]]) -> tuple[str, set[str], bool]:
    names: set[str] = set()
    labels: set[str] = set()
    multilabel = False
    for task in tasks:
        for ann in task.get("annotations") or []:
            for item in ann.get("result") or []:
                if item.get("type") == "choices":
                    names.add(item.get("from_name", ""))
                    chosen = item.get("value", {}).get("choices") or []
                    labels.update(chosen)
                    multilabel |= len(chosen) > 1
    if len(names) > 1:
        raise InputError(f"the export has several choice controls {sorted(names)}; assay reads one")
    return (names.pop() if names else "label"), labels, multilabel
