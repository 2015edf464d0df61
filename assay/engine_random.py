"""Randomness per row, so a step's output does not depend on how its rows are partitioned.

A draw is a function of (seed, step position, step name, stream, row id, counter): each
row gets a 64-bit key (the row id hashed with BLAKE2b, salted by the step's
`ctx.rng(stream)`), and its k-th uniform is the SplitMix64 output of `key + k * golden`,
a counter-based generator that numpy evaluates for many rows and counters at once. An
engine may then split the rows into any batches, in any order, on any worker: every row
sees the same draws.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from assay.context import RunContext

Draw = Callable[[], float]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TO_UNIT = 2.0**-53
ROW_BLOCK = 32  # uniforms computed per row up front; more are computed when a row needs them


def row_keys(ctx: RunContext, stream: str, ids: Sequence[str]) -> np.ndarray:
    """One 64-bit key per row id, for this step and stream (uint64 array)."""
    salt = int(ctx.rng(stream).integers(0, 2**63, dtype=np.int64)).to_bytes(8, "little")
    digest = b"".join(
        hashlib.blake2b(str(i).encode(), digest_size=8, key=salt).digest() for i in ids
    )
    return np.frombuffer(digest, dtype="<u8").astype(np.uint64)


def _mix(x: np.ndarray) -> np.ndarray:
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def uniforms(keys: np.ndarray, start: int, count: int) -> np.ndarray:
    """Uniform [0, 1) draws `start .. start + count - 1` of every key: shape (rows, count)."""
    counters = np.arange(start + 1, start + count + 1, dtype=np.uint64) * _GOLDEN
    x = _mix(keys.astype(np.uint64)[:, None] + counters[None, :])
    return (x >> np.uint64(11)).astype(np.float64) * _TO_UNIT


def row_uniform(ctx: RunContext, stream: str, ids: Sequence[str]) -> np.ndarray:
    """The first uniform draw of each row: one float per id."""
    return uniforms(row_keys(ctx, stream, ids), 0, 1)[:, 0]


def row_draw(key: int, first: list[float] | None = None) -> Draw:
    """The stream of uniforms of one row key (`first`: its first draws, precomputed)."""
    one = np.array([key], dtype=np.uint64)

    def stream() -> Iterator[float]:
        done = 0
        if first is not None:
            yield from first
            done = len(first)
        while True:
            yield from uniforms(one, done, ROW_BLOCK * 8)[0].tolist()
            done += ROW_BLOCK * 8

    return stream().__next__


def row_draws(ctx: RunContext, stream: str, ids: Sequence[str]) -> list[Draw]:
    """A draw stream per row id: what `augment(text, draw)` consumes for that row."""
    keys = row_keys(ctx, stream, ids)
    first = uniforms(keys, 0, ROW_BLOCK).tolist()
    return [row_draw(int(k), f) for k, f in zip(keys.tolist(), first, strict=True)]
