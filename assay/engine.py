"""Engines: where the row-parallel parts of a step run.

An engine-capable step writes its row-parallel work as pure `pyarrow.Table ->
pyarrow.Table` functions and hands them to an engine:

- `map_batches(table, fn)`: apply `fn` to batches of rows and concatenate the results;
- `shuffle_map(table, key, fn)`: route all rows with the same `key` to one call of `fn`
  (a hash shuffle), apply it, and concatenate.

`LocalEngine` runs the functions in-process on the whole table (the functions themselves
use polars, numpy or numba threads). `RayEngine` runs the same functions with Ray Data
(`map_batches(batch_format="pyarrow")`, `repartition(keys=...)`), so both give the same
rows; output ROW ORDER is not part of the contract: callers sort. Ray is imported lazily
and is the optional extra `assay[ray]`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

import pyarrow as pa

from assay.errors import InputError, require

log = logging.getLogger(__name__)

TableFn = Callable[[pa.Table], pa.Table]
ENGINES = ("local", "ray")
MAX_PARTITION_ROWS = 2_000_000


class Engine(Protocol):
    name: str

    def map_batches(
        self, table: pa.Table, fn: TableFn, *, batch_size: int | None = None
    ) -> pa.Table:
        """`fn` applied to consecutive batches of `table` (all of it when batch_size is None)."""
        ...

    def shuffle_map(self, table: pa.Table, key: str, fn: TableFn) -> pa.Table:
        """`fn` applied to partitions of `table` in which each `key` value is complete."""
        ...


class LocalEngine:
    """In-process: the functions see the whole table (they parallelise inside)."""

    name = "local"

    def map_batches(
        self, table: pa.Table, fn: TableFn, *, batch_size: int | None = None
    ) -> pa.Table:
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
    ) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.num_partitions = num_partitions
        self.batch_size = batch_size

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

    def _collect(self, ray: Any, ds: Any, like: pa.Table | None = None) -> pa.Table:
        tables = [t for t in ray.get(ds.to_arrow_refs()) if t.num_rows]
        if not tables:
            return like if like is not None else pa.table({})
        return pa.concat_tables(tables, promote_options="default")

    def map_batches(
        self, table: pa.Table, fn: TableFn, *, batch_size: int | None = None
    ) -> pa.Table:
        ray = self._ray()
        if table.num_rows == 0:
            return fn(table)
        ds = self._dataset(ray, table, self._partitions(ray))
        out = ds.map_batches(
            fn,
            batch_format="pyarrow",
            batch_size=batch_size or self.batch_size,
            zero_copy_batch=True,
        )
        return self._collect(ray, out, like=fn(table.slice(0, 0)))

    def shuffle_map(self, table: pa.Table, key: str, fn: TableFn) -> pa.Table:
        ray = self._ray()
        if table.num_rows == 0:
            return fn(table)
        blocks = self._partitions(ray, table.num_rows)
        ds = self._dataset(ray, table, blocks).repartition(blocks, keys=[key])
        # batch_size=None hands each hash partition to fn whole, so no key is split.
        out = ds.map_batches(fn, batch_format="pyarrow", batch_size=None, zero_copy_batch=True)
        return self._collect(ray, out, like=fn(table.slice(0, 0)))


_DEFAULT_RAY: RayEngine | None = None


def get_engine(engine: str | Engine | None = None) -> Engine:
    """An engine by name ("local" or "ray"), or the engine passed in."""
    global _DEFAULT_RAY
    if engine is None or engine == "local":
        return LocalEngine()
    if engine == "ray":
        if _DEFAULT_RAY is None:
            _DEFAULT_RAY = RayEngine()
        return _DEFAULT_RAY
    if isinstance(engine, str):
        raise InputError(f"unknown engine {engine!r}: expected one of {list(ENGINES)}")
    return engine
