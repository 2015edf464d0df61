"""The sync directory of one Label Studio project: state and tables, written atomically.

Layout (a run directory's `labelstudio/`, or the CLI's `--dir`):
    state.json          url, project, labels, last push and pull (never the token)
    annotations.parquet one row per annotation: id, annotator, label, skipped, lead time...
    tasks.parquet       one row per task: task_id, id, text, updated_at
    consensus.parquet   the resolved label per example
    disagreements.parquet, agreement.json
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import polars as pl

from assay import atomic
from assay.curate.labelstudio.client import LS_TIME, Client
from assay.curate.labelstudio.config import Project, get_project
from assay.errors import InputError

log = logging.getLogger(__name__)


STATE = "state.json"
ANNOTATIONS = "annotations.parquet"
TASKS = "tasks.parquet"
CONSENSUS = "consensus.parquet"
DISAGREEMENTS = "disagreements.parquet"
AGREEMENT = "agreement.json"


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


def fresh_project(client: Client, project: int | str | Project) -> Project:
    """The project as the server has it now (its task count changes between calls)."""
    ref = project.id if isinstance(project, Project) else project
    return get_project(client, ref)


def utc_now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).strftime(LS_TIME)
