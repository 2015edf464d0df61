"""The run directory: corpus, dropped rows, lineage, findings and the manifest.

A run is written whole or not at all: `prepare()` stages it in a hidden sibling folder and
`commit()` swaps that in for the target, so a crash leaves the previous run untouched and a
new run never inherits files of an older one. The manifest is written last, as the mark of a
complete run. Folders that hold state across runs (`STATE_DIRS`: the Label Studio sync
state) are carried into the new run, and back into the old one if the run fails.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import polars as pl

from assay import atomic
from assay.errors import OutputError
from assay.hashing import file_hash

CORPUS = "corpus.parquet"
DROPPED = "dropped.parquet"
LINEAGE = "lineage.parquet"
MANIFEST = "manifest.json"
REPORT = "report.html"
# Kept across reruns: the Label Studio sync state, and ablation cells (keyed by content).
STATE_DIRS = ("labelstudio", "cells")
# Where runs go when no --out is given.
RUNS = Path("runs")


def default_run_dir(name: str, suffix: str = "") -> Path:
    """`runs/<name><suffix>`, the name made one safe folder name: a recipe is named by
    whoever wrote it, and no name (`../../x`, `/etc`, `~`) may lead outside `runs/`."""
    return RUNS / folder_name(name + suffix)


def folder_name(name: str) -> str:
    """`name` as one folder name: letters, digits, `.`, `_` and `-` kept, any other run of
    characters (path separators among them) one `-`, no leading dot (`..`, hidden)."""
    safe = re.sub(r"[^\w.-]+", "-", name).strip(".-")
    return safe[:120] or "run"


class RunDirectory:
    """A run's folder; `path` is where files go now (the staging folder until `commit`)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.target = self.path
        self._staged = False

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def prepare(self) -> RunDirectory:
        """Check the target can be written, then stage the run in a sibling folder."""
        target = self.target
        check_writable_target(target)
        try:
            staging = Path(
                tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".staging", dir=target.parent)
            )
            os.chmod(staging, 0o755)  # mkdtemp creates 0700; runs are meant to be shared
        except OSError as exc:
            raise OutputError(
                f"cannot write the run directory {str(target)!r}: {exc.strerror or exc}; "
                "choose a writable --out"
            ) from None
        for name in STATE_DIRS:
            if (target / name).is_dir():
                shutil.copytree(target / name, staging / name, symlinks=True)
        self.path = staging
        self._staged = True
        return self

    def commit(self) -> RunDirectory:
        """Swap the staged run in for the target (the old run, if any, is removed)."""
        if not self._staged:
            return self
        _replace_dir(self.path, self.target)
        self.path = self.target
        self._staged = False
        return self

    def abort(self) -> None:
        """Drop the staged run; state folders it updated go back to the old run."""
        if not self._staged:
            return
        staging = self.path
        for name in STATE_DIRS:
            if (staging / name).is_dir():
                try:
                    self.target.mkdir(parents=True, exist_ok=True)
                    _replace_dir(staging / name, self.target / name)
                except OSError:
                    pass  # the old state stays; sync converges on the next run
        shutil.rmtree(staging, ignore_errors=True)
        self.path = self.target
        self._staged = False

    def write_table(self, name: str, frame: pl.DataFrame) -> Path:
        target = self.path / name
        atomic.write_parquet(target, frame)
        return target

    def write_findings(self, index: int, step: str, frame: pl.DataFrame) -> Path:
        return self.write_table(f"findings/{index:02d}_{step}.parquet", frame)

    def write_manifest(self, manifest: dict[str, Any]) -> Path:
        target = self.path / MANIFEST
        atomic.write_json(target, manifest)
        return target

    def hashes(self, names: list[str]) -> dict[str, str]:
        """Content hash of each named output; a folder (a DatasetDict) hashes its files."""
        return {n: path_hash(self.path / n) for n in names if (self.path / n).exists()}

    def read_corpus(self) -> pl.DataFrame:
        return pl.read_parquet(self.path / CORPUS)

    def read_dropped(self) -> pl.DataFrame:
        return pl.read_parquet(self.path / DROPPED)

    def read_manifest(self) -> dict[str, Any]:
        import json

        return json.loads((self.path / MANIFEST).read_text())


def path_hash(path: Path) -> str:
    if not path.is_dir():
        return file_hash(path)
    from assay.hashing import json_hash

    files = sorted(p for p in path.rglob("*") if p.is_file())
    return json_hash([[p.relative_to(path).as_posix(), file_hash(p)] for p in files])


def check_writable_target(target: Path) -> None:
    """One clear error, before any work, when a run cannot be written at `target`."""
    where = f"the run directory {str(target)!r}"
    resolved, here = target.resolve(), Path.cwd().resolve()
    if resolved == here or resolved in here.parents or resolved.parent == resolved:
        raise OutputError(
            f"{where} is the current folder or one of its parents; a run replaces its folder "
            "whole, so choose a new --out"
        )
    parent = target.parent
    for ancestor in [target, *target.parents]:
        if ancestor.exists() and not ancestor.is_dir():
            raise OutputError(
                f"cannot write {where}: {str(ancestor)!r} is a file, not a folder; "
                "choose another --out"
            )
        if ancestor.exists():
            break
    if target.exists():
        # A first run that failed leaves only its sync state: that folder is still a run's.
        others = [p for p in target.iterdir() if p.name not in STATE_DIRS]
        if others and not (target / MANIFEST).exists():
            raise OutputError(
                f"{where} exists and is not a run (no {MANIFEST}); a run replaces its folder "
                "whole, so choose a new or empty --out"
            )
        if not os.access(target, os.W_OK):
            raise OutputError(f"{where} is read-only; make it writable or choose another --out")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create {str(parent)!r} for {where}: {exc.strerror or exc}; "
            "choose a writable --out"
        ) from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(
            f"cannot write {where}: its folder {str(parent)!r} is read-only; "
            "choose a writable --out"
        )


def _replace_dir(source: Path, target: Path) -> None:
    """Put `source` where `target` is; the old folder is renamed aside, then removed."""
    old = None
    if target.exists():
        # A sibling name: renaming within one folder needs no write access to `target` itself.
        old = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.old")
        os.replace(target, old)
    os.replace(source, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
