"""Engines: where the row-parallel parts of a step run.

An engine-capable step writes its row-parallel work as pure `pyarrow.Table ->
pyarrow.Table` functions and hands them to an engine:

- `map_batches(table, fn)`: apply `fn` to batches of rows and concatenate the results;
- `shuffle_map(table, key, fn)`: route all rows with the same `key` to one call of `fn`
  (a hash shuffle), apply it, and concatenate.

`fn` may also be a callable class (with `fn_args` for its constructor): Ray then runs it
in an actor pool (`concurrency` actors, `num_gpus` each), so whatever it loads (a model)
is loaded once per actor; the local engine makes one instance.

`LocalEngine` runs the functions in-process on the whole table (the functions themselves
use polars, numpy or numba threads). `RayEngine` runs the same functions with Ray Data
(`map_batches(batch_format="pyarrow")`) and a two-stage hash shuffle in Ray tasks, so both
give the same rows; output ROW ORDER is not part of the contract: callers sort. Ray is imported lazily
and is the optional extra `assay[ray]`.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any, Protocol

import pyarrow as pa

from assay.errors import InputError, require

log = logging.getLogger(__name__)

TableFn = Callable[[pa.Table], pa.Table]
ENGINES = ("local", "ray")
MAX_PARTITION_ROWS = 2_000_000
RAY_SETTINGS = ("address", "num_cpus", "gpus_per_actor", "batch_size", "actors")


_waited = [0.0]


def engine_seconds() -> float:
    """Wall seconds this process has waited on the Ray engine so far: the difference
    around a step is the part of the step that ran on the cluster (the rest ran here)."""
    return _waited[0]


def _timed(method: Callable[..., pa.Table]) -> Callable[..., pa.Table]:
    @functools.wraps(method)
    def timed(*args: Any, **kwargs: Any) -> pa.Table:
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            _waited[0] += time.perf_counter() - started

    return timed


class Engine(Protocol):
    name: str

    def map_batches(
        self,
        table: pa.Table,
        fn: TableFn | type,
        *,
        batch_size: int | None = None,
        fn_args: tuple[Any, ...] = (),
        concurrency: int | None = None,
        num_gpus: float | None = None,
    ) -> pa.Table:
        """`fn` applied to consecutive batches of `table` (all of it when batch_size is
        None); a class `fn` is built with `fn_args` (once per actor on Ray)."""
        ...

    def shuffle_map(self, table: pa.Table, key: str, fn: TableFn) -> pa.Table:
        """`fn` applied to partitions of `table` in which each `key` value is complete."""
        ...


class LocalEngine:
    """In-process: the functions see the whole table (they parallelise inside)."""

    name = "local"

    def map_batches(
        self,
        table: pa.Table,
        fn: TableFn | type,
        *,
        batch_size: int | None = None,
        fn_args: tuple[Any, ...] = (),
        concurrency: int | None = None,
        num_gpus: float | None = None,
    ) -> pa.Table:
        if isinstance(fn, type):
            fn = fn(*fn_args)
        if batch_size is None or table.num_rows <= batch_size:
            return fn(table)
        parts = [fn(table.slice(i, batch_size)) for i in range(0, table.num_rows, batch_size)]
        return pa.concat_tables(parts)

    def shuffle_map(self, table: pa.Table, key: str, fn: TableFn) -> pa.Table:
        # One partition holds every key: no shuffle needed.
        return fn(table)


class RayEngine:
    """Ray Data over a local or remote Ray cluster (started on first use if none is up)."""

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        num_cpus: int | None = 2,
        num_partitions: int | None = None,
        batch_size: int = 65536,
        actors: int | None = None,
        gpus_per_actor: float | None = None,
    ) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.num_partitions = num_partitions
        self.batch_size = batch_size
        self.actors = actors
        self.gpus_per_actor = gpus_per_actor  # for actor pools that load a model

    def _ray(self) -> Any:
        ray = require("ray", "ray", "the Ray engine")
        require("ray.data", "ray", "the Ray engine")
        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, include_dashboard=False)
            else:
                ray.init(
                    num_cpus=self.num_cpus,
                    include_dashboard=False,
                    _node_ip_address="127.0.0.1",
                    log_to_driver=False,
                )
            log.info("started Ray: %s", ray.cluster_resources())
        return ray

    def _partitions(self, ray: Any, rows: int = 0) -> int:
        if self.num_partitions:
            return self.num_partitions
        # Enough partitions that none nears Ray Data's block size limit (a block split in
        # two would hand one key to two calls of the function).
        return max(
            2, int(ray.cluster_resources().get("CPU", 2)) * 2, -(-rows // MAX_PARTITION_ROWS)
        )

    def _dataset(self, ray: Any, table: pa.Table, blocks: int) -> Any:
        size = max(1, -(-table.num_rows // blocks))
        parts = [table.slice(i, size) for i in range(0, max(table.num_rows, 1), size)]
        return ray.data.from_arrow(parts)

    def _collect(self, ray: Any, ds: Any, like: Callable[[], pa.Table] | None = None) -> pa.Table:
        tables = [t for t in ray.get(ds.to_arrow_refs()) if t.num_rows]
        if not tables:
            return like() if like is not None else pa.table({})
        return pa.concat_tables(tables, promote_options="default")

    @_timed
    def map_batches(
        self,
        table: pa.Table,
        fn: TableFn | type,
        *,
        batch_size: int | None = None,
        fn_args: tuple[Any, ...] = (),
        concurrency: int | None = None,
        num_gpus: float | None = None,
    ) -> pa.Table:
        ray = self._ray()
        if table.num_rows == 0:
            return (fn(*fn_args) if isinstance(fn, type) else fn)(table)
        size = batch_size or self.batch_size
        blocks = max(self._partitions(ray), -(-table.num_rows // size))
        ds = self._dataset(ray, table, blocks)
        options: dict[str, Any] = {}
        if isinstance(fn, type):
            # An actor pool: the class is built once per actor (a model loads once).
            options["fn_constructor_args"] = fn_args
            size_of_pool = concurrency or self.actors or self._cpus(ray)
            options["compute"] = ray.data.ActorPoolStrategy(size=size_of_pool)
            if num_gpus:
                options["num_gpus"] = num_gpus
        out = ds.map_batches(
            fn, batch_format="pyarrow", batch_size=size, zero_copy_batch=True, **options
        )
        # Only when no batch came back: the schema of an empty answer.
        like = None if isinstance(fn, type) else (lambda: fn(table.slice(0, 0)))
        return self._collect(ray, out, like=like)

    def _cpus(self, ray: Any) -> int:
        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    @_timed
    def shuffle_map(self, table: pa.Table, key: str, fn: TableFn) -> pa.Table:
        ray = self._ray()
        if table.num_rows == 0:
            return fn(table)
        parts = self._partitions(ray, table.num_rows)
        size = max(1, -(-table.num_rows // parts))
        # A two-stage hash shuffle in plain Ray tasks (no shuffle actors to start): each
        # block splits its rows by the hash of `key` into `parts` pieces; reducer p
        # concatenates piece p of every block, so it holds every row of its keys.
        split = ray.remote(num_returns=parts)(split_by_key) if parts > 1 else None
        pieces = []
        for i in range(0, table.num_rows, size):
            block = ray.put(table.slice(i, size))
            got = split.remote(block, key, parts) if split else [block]
            pieces.append(got)
        reduce = ray.remote(_reduce_pieces)
        outs = [reduce.remote(fn, *[p[j] for p in pieces]) for j in range(parts)]
        tables = [t for t in ray.get(outs) if t.num_rows]
        if not tables:
            return fn(table.slice(0, 0))
        return pa.concat_tables(tables, promote_options="default")


def cpu_budget() -> int:
    """The cores this process should keep busy: inside a Ray task or actor, the CPUs Ray
    assigned to it (other workers share the node); elsewhere, the cores it may run on."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        try:
            cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
        except Exception:  # a driver, or a Ray without the call: no assignment to honour
            cpus = None
        if cpus:
            return max(1, int(cpus))
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def split_by_key(block: pa.Table, key: str, parts: int) -> list[pa.Table]:
    """`block` in `parts` pieces by a hash of `key` (the same key, the same piece): the
    partition `shuffle_map` uses on Ray, shared by engines that stand in for it."""
    import polars as pl

    column = pl.from_arrow(block.select([key])).to_series()
    target = (column.hash(seed=0x5EED) % parts).to_numpy()
    return [block.filter(pa.array(target == p)) for p in range(parts)]


def _reduce_pieces(fn: TableFn, *pieces: pa.Table) -> pa.Table:
    return fn(pa.concat_tables(pieces, promote_options="default"))


_RAY_ENGINES: dict[tuple[tuple[str, Any], ...], RayEngine] = {}


def get_engine(
    engine: str | Engine | None = None, settings: dict[str, Any] | None = None
) -> Engine:
    """An engine by name ("local" or "ray", with the recipe's `engine.ray` settings), or
    the engine passed in."""
    if engine is None or engine == "local":
        return LocalEngine()
    if engine == "ray":
        given = {k: v for k, v in (settings or {}).items() if v is not None}
        key = tuple(sorted(given.items()))
        if key not in _RAY_ENGINES:
            kw: dict[str, Any] = {
                k: given[k]
                for k in ("address", "num_cpus", "batch_size", "actors", "gpus_per_actor")
                if k in given
            }
            _RAY_ENGINES[key] = RayEngine(**kw)
        return _RAY_ENGINES[key]
    if isinstance(engine, str):
        raise InputError(f"unknown engine {engine!r}: expected one of {list(ENGINES)}")
    return engine
