"""Connected components of a duplicate graph, on the driver.

Rows are numbered 0..n-1 and edges are pairs of row numbers. Every component is labelled
by its smallest row (union by smaller root), so the labels do not depend on edge order and
both engines get the same clusters.
"""

from __future__ import annotations

import importlib.util

import numpy as np


def components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Component label (the smallest member row) of every row; singletons label themselves."""
    parent = np.arange(n, dtype=np.int64)
    if len(a) == 0:
        return parent
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if a.min() < 0 or b.min() < 0 or max(a.max(), b.max()) >= n:
        raise ValueError(f"edges name rows outside 0..{n - 1}")
    if importlib.util.find_spec("numba") is None:
        return _union_find(parent, a, b)
    return _compiled()(parent, a, b)


def _union_find(parent: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    for k in range(len(a)):
        ra = _find(parent, a[k])
        rb = _find(parent, b[k])
        if ra != rb:
            if ra < rb:
                parent[rb] = ra
            else:
                parent[ra] = rb
    # Roots are the smallest members, so one pass in row order resolves every row.
    for i in range(len(parent)):
        if parent[i] < i:
            parent[i] = parent[parent[i]]
    return parent


def _find(parent: np.ndarray, x: int) -> int:
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:  # path compression
        parent[x], x = root, parent[x]
    return root


_KERNEL = None


def _compiled():
    """The union-find compiled with numba (once); `_find` is compiled first so the kernel
    calls the compiled version."""
    global _KERNEL, _find
    if _KERNEL is None:
        from numba import njit

        _find = njit(cache=True, nogil=True)(_find)
        _KERNEL = njit(cache=True, nogil=True)(_union_find)
    return _KERNEL
