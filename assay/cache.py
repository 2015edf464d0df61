"""Per-step cache: a step's output is stored under a key of (input, step, config, version).

The input key of a step is the output key of the step before it (the first takes the hash
of the loaded data), so a rerun after a crash or an edit recomputes only from the first
changed step on, and ablation variants share their common prefix.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import polars as pl

from assay.hashing import json_hash
from assay.step import StepReport, StepResult

_TABLES = ("corpus", "dropped", "findings", "lineage")


def default_cache_dir() -> Path:
    """`ASSAY_CACHE_DIR`, else `steps/` in assay's home directory."""
    from assay.resources import home

    root = os.environ.get("ASSAY_CACHE_DIR")
    return Path(root) if root else home() / "steps"


def step_key(
    input_key: str, name: str, version: str, params: dict[str, Any], seed: int, index: int
) -> str:
    from assay import __version__

    return json_hash(
        {
            "input": input_key,
            "step": name,
            "version": version,
            "params": params,
            "seed": seed,
            "index": index,
            "assay": __version__,
            "polars": pl.__version__,
        }
    )


class StepCache:
    def __init__(self, root: str | os.PathLike[str] | None = None, enabled: bool = True) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.enabled = enabled

    def _dir(self, key: str) -> Path:
        return self.root / key[:2] / key

    def get(self, key: str) -> StepResult | None:
        if not self.enabled:
            return None
        entry = self._dir(key)
        report_path = entry / "report.json"
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
        except (OSError, ValueError, pl.exceptions.PolarsError):
            return None  # a damaged entry is a miss; it is rewritten below
        report.cached = True
        return StepResult(report=report, **tables)

    def put(self, key: str, result: StepResult) -> None:
        if not self.enabled:
            return
        target = self._dir(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=target.parent))
        try:
            for t in _TABLES:
                frame = getattr(result, t)
                if frame is not None:
                    frame.write_parquet(tmp / f"{t}.parquet", compression="zstd")
            (tmp / "report.json").write_text(json.dumps(result.report.to_dict(), default=str))
            if target.exists():
                shutil.rmtree(target, ignore_errors=True)
            os.replace(tmp, target)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
