"""Per-step cache: a step's output is stored under a key of (input, step code, config, seed).

The input key of a step is the output key of the step before it (the first takes the hash
of the loaded data), so a rerun after a crash or an edit recomputes only from the first
changed step on, and ablation variants share their common prefix.

The step's code is part of the key: a hash of the source of the step's module, of the
modules of its base classes, and of the modules the step's module imports from its own
package and from assay. Editing a step (or an editable install of a newer assay) therefore
recomputes that step and every step after it; nobody has to remember to bump a version.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import inspect
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl
import xxhash

from assay.errors import InputError
from assay.hashing import json_hash
from assay.step import StepReport, StepResult

log = logging.getLogger(__name__)

_TABLES = ("corpus", "dropped", "findings", "lineage")
_REPORT = "report.json"
# Half-written entries of a crashed writer are removed by `prune` once they are this old.
_STALE_TMP_S = 3600.0


def default_cache_dir() -> Path:
    """`ASSAY_CACHE_DIR`, else `steps/` in assay's home directory."""
    from assay.resources import home

    root = os.environ.get("ASSAY_CACHE_DIR")
    return Path(root) if root else home() / "steps"


# -- the key ----------------------------------------------------------------------------------

_CODE_HASHES: dict[type, str] = {}


def step_key(input_key: str, step: Any, seed: int, index: int) -> str:
    """The cache key of `step` run at position `index` on the output keyed `input_key`."""
    return json_hash(
        {
            "input": input_key,
            "step": step.name,
            "code": code_hash(type(step)),
            "params": step.params,
            "seed": seed,
            "index": index,
            # frame hashes (the first input key) are only stable within one polars version
            "polars": pl.__version__,
        }
    )


def code_hash(cls: type) -> str:
    """Hash of the source that computes a step class, computed once per class and process.

    Covers the class's own module, the modules of its base classes that live in assay or in
    the class's own top-level package, and every module of those packages that they import,
    directly or through one another (imports inside functions included): a change to a
    helper a step calls changes the key as surely as a change to the step.
    """
    cached = _CODE_HASHES.get(cls)
    if cached is None:
        cached = _CODE_HASHES[cls] = _compute_code_hash(cls)
    return cached


def code_modules(cls: type) -> list[str]:
    """The module names whose source `code_hash` covers, sorted."""
    roots = {"assay", cls.__module__.split(".")[0]}
    names = {cls.__module__}
    for base in cls.__mro__:
        if base.__module__.split(".")[0] in roots:
            names.add(base.__module__)
    todo = list(names)
    while todo:
        for found in _imported_modules(todo.pop(), roots) - names:
            names.add(found)
            todo.append(found)
    return sorted(names)


def _compute_code_hash(cls: type) -> str:
    h = xxhash.xxh3_128()
    for name in code_modules(cls):
        h.update(name.encode() + b"\0")
        h.update(_module_source(name) + b"\0")
    if cls.__module__ in ("__main__", "builtins") or not _module_file(cls.__module__):
        try:  # a class without a module file (a notebook): its own source, if inspect finds it
            h.update(inspect.getsource(cls).encode())
        except (OSError, TypeError):
            h.update(cls.__qualname__.encode())
    return h.hexdigest()


def _module_file(name: str) -> str | None:
    spec = _find_spec(name)
    path = spec.origin if spec is not None else None
    return path if path and path.endswith(".py") and os.path.exists(path) else None


def _find_spec(name: str) -> Any:
    """A module's spec without importing anything (`importlib.util.find_spec` imports the
    parent package, and a lazily imported module may pull in torch)."""
    module = sys.modules.get(name)
    if module is not None:
        return getattr(module, "__spec__", None)
    parent = name.rpartition(".")[0]
    path = None
    if parent:
        parent_spec = _find_spec(parent)
        if parent_spec is None or parent_spec.submodule_search_locations is None:
            return None
        path = list(parent_spec.submodule_search_locations)
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        try:
            spec = find(name, path)
        except (ImportError, ValueError, TypeError, AttributeError):
            continue
        if spec is not None:
            return spec
    return None


def _module_source(name: str) -> bytes:
    path = _module_file(name)
    if path is None:
        return b""
    try:
        return Path(path).read_bytes()
    except OSError:
        return b""


# (module, hash of its source) -> every module it imports: each source is parsed once per
# process, not once per step class whose code reaches it.
_IMPORTS: dict[tuple[str, int], frozenset[str]] = {}


def _imported_modules(name: str, roots: set[str]) -> set[str]:
    """Modules under `roots` that module `name` imports, as written in its source."""
    source = _module_source(name)
    if not source:
        return set()
    key = (name, xxhash.xxh3_64_intdigest(source))
    found = _IMPORTS.get(key)
    if found is None:
        found = _IMPORTS[key] = _imports_in(name, source)
    return {m for m in found if m.split(".")[0] in roots and _module_file(m) is not None}


def _imports_in(name: str, source: bytes) -> frozenset[str]:
    """Every module the source of module `name` names in an import statement."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return frozenset()
    module = sys.modules.get(name)
    package = getattr(module, "__package__", None) or name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                prefix = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{prefix}.{base}" if base else prefix
            found.add(base)
            # `from pkg import module` names a module; `from module import name` does not
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return frozenset(found)


# -- the store --------------------------------------------------------------------------------


class StepCache:
    """Step outputs on disk, one directory per key. Safe to share between processes."""

    def __init__(self, root: str | os.PathLike[str] | None = None, enabled: bool = True) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.enabled = enabled

    def _dir(self, key: str) -> Path:
        return self.root / key[:2] / key

    def get(self, key: str) -> StepResult | None:
        if not self.enabled:
            return None
        entry = self._dir(key)
        report_path = entry / _REPORT
        if not report_path.exists():
            return None
        try:
            report = StepReport.from_dict(json.loads(report_path.read_text()))
            tables = {
                t: pl.read_parquet(entry / f"{t}.parquet")
                if (entry / f"{t}.parquet").exists()
                else None
                for t in _TABLES
            }
            if tables["corpus"] is None:
                raise ValueError("no corpus table")
        except (OSError, ValueError, TypeError, KeyError, pl.exceptions.PolarsError) as exc:
            log.warning("removing damaged cache entry %s (%s); recomputing", entry, exc)
            _remove(entry)
            return None
        # a hit counts as a use: `prune --older-than` removes what was not used lately
        with contextlib.suppress(OSError):
            os.utime(report_path)
        report.cached = True
        return StepResult(report=report, **tables)

    def put(self, key: str, result: StepResult) -> None:
        """Store a result. If another process stored the same key meanwhile, keep theirs.

        A cache that cannot be written (read-only, full disk) logs one warning and the run
        goes on uncached."""
        if not self.enabled:
            return
        target = self._dir(key)
        tmp: Path | None = None
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=target.parent))
            for t in _TABLES:
                frame = getattr(result, t)
                if frame is not None:
                    frame.write_parquet(tmp / f"{t}.parquet", compression="zstd")
            (tmp / _REPORT).write_text(json.dumps(result.report.to_dict(), default=str))
            try:
                # rename, not replace: it fails on an existing non-empty directory, so
                # a concurrent writer's complete entry is never swapped out from under a reader
                os.rename(tmp, target)
                tmp = None
            except OSError:
                if not target.exists():
                    raise
                # the same key was stored meanwhile: same inputs, same code, same output
        except OSError as exc:
            log.warning(
                "cannot write the step cache at %s (%s); running without it. Set "
                "ASSAY_CACHE_DIR to a writable directory, or run with --no-cache",
                self.root,
                exc.strerror or exc,
            )
            self.enabled = False
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)

    # -- housekeeping -------------------------------------------------------------------------

    def entries(self) -> list[CacheEntry]:
        """Every complete entry, with its size and the time it was last written or used."""
        out: list[CacheEntry] = []
        for shard in _listdir(self.root):
            if not shard.is_dir() or shard.name.startswith("."):
                continue
            for entry in _listdir(shard):
                if entry.name.startswith(".") or not entry.is_dir():
                    continue
                try:
                    used = (entry / _REPORT).stat().st_mtime
                except OSError:
                    used = entry.stat().st_mtime
                out.append(CacheEntry(entry.name, entry, _size(entry), used))
        return out

    def info(self) -> CacheInfo:
        """Root, total size, number of entries, and when the oldest and newest were used."""
        entries = self.entries()
        size = _size(self.root) if self.root.is_dir() else 0
        used = [e.used for e in entries]
        return CacheInfo(
            root=self.root,
            size=size,
            entries=len(entries),
            oldest=min(used) if used else None,
            newest=max(used) if used else None,
        )

    def prune(
        self, older_than: timedelta | None = None, *, everything: bool = False
    ) -> PruneResult:
        """Remove entries not used for `older_than`, or every entry; returns what was freed.

        Half-written entries left by a crashed writer are removed too once an hour old
        (younger ones may belong to a writer at work)."""
        if older_than is None and not everything:
            raise InputError("prune needs an age (older_than) or everything=True")
        now = time.time()
        cutoff = now if everything else now - older_than.total_seconds()  # type: ignore[union-attr]
        removed = freed = 0
        for entry in self.entries():
            if everything or entry.used < cutoff:
                freed += entry.size
                removed += 1
                _remove(entry.path)
        for shard in _listdir(self.root):
            if shard.is_dir():
                for tmp in shard.glob(".*"):
                    try:
                        # even with everything: a young one may be a writer at work
                        stale = now - tmp.stat().st_mtime > _STALE_TMP_S
                    except OSError:
                        continue
                    if stale:
                        freed += _size(tmp)
                        _remove(tmp)
                with contextlib.suppress(OSError):
                    shard.rmdir()  # only if empty
        return PruneResult(removed=removed, freed=freed)


@dataclasses.dataclass(frozen=True)
class CacheEntry:
    key: str
    path: Path
    size: int
    used: float  # epoch seconds of the last write or hit


@dataclasses.dataclass(frozen=True)
class CacheInfo:
    root: Path
    size: int
    entries: int
    oldest: float | None
    newest: float | None

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        return {
            "root": str(self.root),
            "size": self.size,
            "entries": self.entries,
            "oldest_age_s": None if self.oldest is None else round(now - self.oldest, 1),
            "newest_age_s": None if self.newest is None else round(now - self.newest, 1),
        }


@dataclasses.dataclass(frozen=True)
class PruneResult:
    removed: int
    freed: int


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """'90s', '15m', '12h', '30d', '2w' -> a timedelta."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text.lower())
    if not match:
        raise InputError(
            f"expected a duration such as 12h, 30d or 2w (units s, m, h, d, w), got {text!r}"
        )
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def format_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def format_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, span in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= span:
            return f"{seconds / span:.1f}{unit}"
    return f"{seconds:.0f}s"


def _listdir(path: Path) -> list[Path]:
    try:
        return sorted(path.iterdir())
    except OSError:  # missing or unreadable: nothing to list
        return []


def _size(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue
    return total


def _remove(path: Path) -> None:
    """Remove an entry so that no reader sees it half-deleted: rename away, then delete."""
    grave = path.with_name(f".{path.name}.removing.{os.getpid()}")
    try:
        os.rename(path, grave)
    except OSError:
        return  # already gone (another process removed or replaced it)
    shutil.rmtree(grave, ignore_errors=True)
