"""Keep a corpus and a Label Studio project in step: push tasks, pull annotations, status.

One import point for the sync: `push` (ls_push) is idempotent, `pull` (ls_pull) is
incremental, and both keep their state in a sync directory (ls_state).
"""

from __future__ import annotations

from assay.curate.labelstudio.pull import (
    LIGHT_FIELDS,
    PULL_MARGIN_S,
    TASK_SCHEMA,
    PullResult,
    annotation_schema,
    apply_labels,
    corpus_from_pull,
    pull,
    status,
    task_annotations,
)
from assay.curate.labelstudio.push import BATCH_SIZE, PushReport, push, select_rows
from assay.curate.labelstudio.state import (
    AGREEMENT,
    ANNOTATIONS,
    CONSENSUS,
    DISAGREEMENTS,
    STATE,
    TASKS,
    SyncState,
)

__all__ = [
    "AGREEMENT",
    "ANNOTATIONS",
    "BATCH_SIZE",
    "CONSENSUS",
    "DISAGREEMENTS",
    "LIGHT_FIELDS",
    "PULL_MARGIN_S",
    "STATE",
    "TASKS",
    "TASK_SCHEMA",
    "PullResult",
    "PushReport",
    "SyncState",
    "annotation_schema",
    "apply_labels",
    "corpus_from_pull",
    "pull",
    "push",
    "select_rows",
    "status",
    "task_annotations",
]
