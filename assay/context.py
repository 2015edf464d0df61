"""The run context: the seed, per-step random generators, engine, progress and cache.

Randomness comes only from `ctx.rng(...)`: a numpy Generator derived from the recipe seed,
the step's position and its name, so inserting a step elsewhere does not reshuffle others
unless their position changes, and the same recipe + seed gives the same output.
"""

from __future__ import annotations

import dataclasses
import logging
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from assay.progress import Progress, SilentProgress

DEFAULT_SEED = 13


@dataclasses.dataclass(frozen=True)
class RunContext:
    seed: int = DEFAULT_SEED
    run_dir: Path | None = None
    engine: str = "local"
    progress: Progress = dataclasses.field(default_factory=SilentProgress)
    step_index: int = 0
    step_name: str = ""
    options: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def log(self) -> logging.Logger:
        return logging.getLogger(f"assay.step.{self.step_name or 'run'}")

    def for_step(self, index: int, name: str) -> RunContext:
        return dataclasses.replace(self, step_index=index, step_name=name)

    def rng(self, stream: str = "") -> np.random.Generator:
        """A fresh Generator for this step (and an optional named stream within it)."""
        key = [self.step_index, zlib.crc32(self.step_name.encode()), zlib.crc32(stream.encode())]
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=key))

    def step_seed(self, stream: str = "") -> int:
        """A 32-bit integer seed for libraries that take an int (torch, sklearn)."""
        return int(self.rng(stream).integers(0, 2**31 - 1))

    def task(self, description: str, total: int | None = None):
        return self.progress.task(description, total)

    def workdir(self, name: str) -> Path:
        """A scratch directory inside the run (or a temporary one outside a run)."""
        if self.run_dir is None:
            import tempfile

            return Path(tempfile.mkdtemp(prefix=f"assay-{name}-"))
        path = Path(self.run_dir) / "work" / name
        path.mkdir(parents=True, exist_ok=True)
        return path
