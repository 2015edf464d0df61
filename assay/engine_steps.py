"""Running the row-local hooks of steps on an engine, in batches of rows.

A step whose hook is row-local (`row_local = True`: each row's answer depends only on that
row, the config and the seed) can run on any partition of the corpus. On an engine other
than the local one, the step base classes hand the hook to `engine.map_batches` here:

- the corpus becomes a pyarrow table with a `__row` column (its row positions);
- each batch of rows is given to `HookBatches`, a callable class: for a step that loads a
  model (`loads_model = True`) Ray keeps it in an actor pool, so the model is loaded once
  per actor (with `engine.ray.gpus_per_actor` GPUs for a `gpu_capable` step); other steps
  run as Ray tasks, whose worker processes keep module-level caches between batches;
- the hook's answer for the batch (a `Changes`, or generated rows) travels back as one
  pickled row keyed by the batch's first row position;
- the driver puts the answers back in corpus order and merges them into one `Changes`:
  columns, masks, reasons and added rows concatenated, summaries added up (numbers are
  summed, dicts merged key by key). The books (adoption, ids, lineage, drops) then run on
  the driver exactly as for the local engine, so both give the same corpus.
"""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pyarrow as pa

from assay.books import Changes, Keep
from assay.context import RunContext
from assay.engine import Engine, get_engine
from assay.progress import SilentProgress

if TYPE_CHECKING:
    from assay.step import Step

ROW = "__row"


def run_engine(ctx: RunContext) -> Engine | None:
    """The run's engine, or None when it is the local one (work then stays in-process)."""
    if ctx.engine == "local":
        return None
    return get_engine(ctx.engine, ctx.options.get("ray"))


def engine_for(step: Step, ctx: RunContext) -> Engine | None:
    """The engine to run this step's hook on in batches, or None for the whole-corpus
    call (the local engine, or a step whose hook needs the whole corpus)."""
    if not getattr(step, "row_local", False):
        return None
    return run_engine(ctx)


class HookBatches:
    """One step's hook over batches of rows (a Ray Data callable class: one per actor)."""

    def __init__(self, step: Step, ctx: RunContext, method: str) -> None:
        self.step = step
        self.ctx = ctx
        self.method = method

    def __call__(self, batch: pa.Table) -> pa.Table:
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        first = int(frame[ROW].min()) if frame.height else -1
        answer = getattr(self.step, self.method)(frame.drop(ROW), self.ctx)
        return pa.table(
            {
                ROW: pa.array([first], pa.int64()),
                "rows": pa.array([frame.height], pa.int64()),
                "answer": pa.array([pickle.dumps(answer)], pa.large_binary()),
            }
        )


def run_batches(
    step: Step, ctx: RunContext, frame: pl.DataFrame, method: str
) -> list[tuple[int, Any]]:
    """`step.<method>(batch, ctx)` over batches of `frame` on the engine: (rows in the
    batch, answer) per batch, in row order."""
    engine = engine_for(step, ctx)
    assert engine is not None
    settings = ctx.options.get("ray") or {}
    remote_ctx = dataclasses.replace(ctx, progress=SilentProgress())
    table = frame.with_row_index(ROW).with_columns(pl.col(ROW).cast(pl.Int64)).to_arrow()
    with ctx.task(f"{step.name}: {method} on {engine.name}", total=frame.height) as task:
        size = settings.get("batch_size") or step_batch_size(step)
        if getattr(step, "loads_model", False):
            # An actor pool: the model loads once per actor, not once per batch.
            gpus = settings.get("gpus_per_actor") if getattr(step, "gpu_capable", False) else None
            out = engine.map_batches(
                table,
                HookBatches,
                batch_size=size,
                fn_args=(step, remote_ctx, method),
                concurrency=settings.get("actors"),
                num_gpus=gpus,
            )
        else:
            # Tasks: cheaper to start than actors; a worker process keeps what a step
            # caches (word lists) from one task to the next.
            out = engine.map_batches(table, HookBatches(step, remote_ctx, method), batch_size=size)
        task.advance(frame.height)
    out = out.sort_by(ROW)
    answers = zip(out["rows"].to_pylist(), out["answer"].to_pylist(), strict=True)
    return [(rows, pickle.loads(answer)) for rows, answer in answers]


def step_batch_size(step: Step) -> int:
    return int(getattr(step, "batch_rows", 4096))


def merge_summaries(parts: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Batch summaries as one: numbers added, dicts merged key by key, else the first."""
    out: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if key not in out:
                out[key] = dict(value) if isinstance(value, dict) else value
            elif isinstance(value, dict) and isinstance(out[key], dict):
                out[key] = merge_summaries([out[key], value])
            elif _number(value) and _number(out[key]):
                out[key] = out[key] + value
    return out


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _concat(frames: Iterable[pl.DataFrame | None]) -> pl.DataFrame | None:
    present = [f for f in frames if f is not None]
    if not present:
        return None
    return pl.concat(present, how="diagonal_relaxed")


def merge_keeps(keeps: list[Keep | None], sizes: list[int]) -> Keep | None:
    """The keep decisions of consecutive batches as one decision over all their rows."""
    if all(k is None for k in keeps):
        return None
    masks: list[np.ndarray] = []
    reasons: list[Any] = []
    for keep, size in zip(keeps, sizes, strict=True):
        if keep is None:
            masks.append(np.ones(size, dtype=bool))
            reasons.extend([None] * size)
            continue
        masks.append(np.asarray(keep.mask, dtype=bool))
        if isinstance(keep.reason, str):
            reasons.extend([keep.reason] * size)
        else:
            reasons.extend(list(keep.reason))
    return Keep(
        mask=np.concatenate(masks) if masks else np.ones(0, dtype=bool),
        reason=pl.Series("reason", reasons, dtype=pl.String),
        columns=_concat(k.columns for k in keeps if k is not None),
        findings=_concat(k.findings for k in keeps if k is not None),
        summary=merge_summaries(k.summary for k in keeps if k is not None),
    )


def merge_changes(answers: list[tuple[int, Changes]]) -> Changes:
    """The `Changes` of consecutive batches (keep masks, columns, findings) as one."""
    sizes = [n for n, _ in answers]
    parts = [c for _, c in answers]
    return Changes(
        columns=_concat(c.columns for c in parts),
        keep=merge_keeps([c.keep for c in parts], sizes),
        added=_concat(c.added for c in parts),
        findings=_concat(c.findings for c in parts),
        summary=merge_summaries(c.summary for c in parts),
    )
