"""MinHash-LSH near-duplicate candidates: shingling, signatures, banding and verification.

The row-parallel parts are pure `pyarrow.Table -> pyarrow.Table` functions so that the
local engine and Ray Data run the same code:

- `signature_table(rows)`: `row, text` -> `row, bucket` (one row per document and band),
- `bucket_pairs(buckets)`: `row, bucket` -> `a, b` candidate pairs inside each bucket,
- `verify_pairs(pairs)`: `a, b, text_a, text_b` -> `a, b, jaccard` (true Jaccard).

The work happens in one fused numba kernel per stage: tokens are hashed straight from the
Arrow UTF-8 buffer (no Python strings, no intermediate token lists), shingles are hashed
as rolling combinations of token hashes, and the permutations are a multiply-add-shift
family over a 64-value row that stays in L1 cache.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Literal

import numpy as np
import pyarrow as pa

from assay.errors import InputError, require

Unit = Literal["word", "char"]
# Buckets larger than this are linked as a star around their first row instead of all
# pairs: a bucket of k rows yields k-1 pairs, not k(k-1)/2, and components are the same.
MAX_BUCKET_PAIRS = 32

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


@dataclasses.dataclass(frozen=True)
class MinHashParams:
    """Everything that decides a signature; equal params give equal buckets anywhere."""

    ngram: int = 5
    unit: Unit = "word"
    num_perm: int = 64
    bands: int = 0
    rows: int = 0
    seed: int = 1

    def __post_init__(self) -> None:
        if self.bands * self.rows > self.num_perm:
            raise InputError(
                f"bands x rows must be at most num_perm: {self.bands} x {self.rows} > "
                f"{self.num_perm}; lower bands or rows, or raise num_perm"
            )
        if self.bands < 1 or self.rows < 1:
            raise InputError(
                f"bands and rows must be >= 1, got bands={self.bands}, rows={self.rows}; "
                f"use MinHashParams.for_threshold to choose them"
            )

    @classmethod
    def for_threshold(
        cls,
        threshold: float,
        *,
        num_perm: int = 64,
        ngram: int = 5,
        unit: Unit = "word",
        seed: int = 1,
        weights: tuple[float, float] = (0.5, 0.5),
    ) -> MinHashParams:
        bands, rows = optimal_param(threshold, num_perm, *weights)
        return cls(ngram=ngram, unit=unit, num_perm=num_perm, bands=bands, rows=rows, seed=seed)

    @functools.cached_property
    def coefficients(self) -> tuple[np.ndarray, np.ndarray]:
        """(a, b) of the hash family h_k(x) = (a_k * x + b_k) >> 32, x a 32-bit value."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x6D696E68]))
        a = rng.integers(1, 2**63, size=self.num_perm, dtype=np.uint64) | np.uint64(1)
        b = rng.integers(0, 2**63, size=self.num_perm, dtype=np.uint64)
        return a, b


# -- parameters ------------------------------------------------------------------------------


def optimal_param(
    threshold: float,
    num_perm: int,
    false_positive_weight: float = 0.5,
    false_negative_weight: float = 0.5,
) -> tuple[int, int]:
    """(bands, rows) minimising the weighted false positive and negative areas.

    The same objective as datasketch's `_optimal_param`; the integrands are polynomials of
    degree <= num_perm, so Gauss-Legendre quadrature with enough nodes is exact.
    """
    if not 0.0 < threshold < 1.0:
        raise InputError(f"threshold must be in (0, 1), got {threshold}")
    nodes, weights = np.polynomial.legendre.leggauss(num_perm // 2 + 2)
    best, best_error = (1, 1), np.inf
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp = _integrate(lambda s, b=b, r=r: 1 - (1 - s**r) ** b, 0.0, threshold, nodes, weights)
            fn = _integrate(lambda s, b=b, r=r: (1 - s**r) ** b, threshold, 1.0, nodes, weights)
            error = fp * false_positive_weight + fn * false_negative_weight
            if error < best_error:
                best, best_error = (b, r), error
    return best


def _integrate(f, lo: float, hi: float, nodes: np.ndarray, weights: np.ndarray) -> float:
    half = (hi - lo) / 2
    return float(half * np.sum(weights * f(half * nodes + (hi + lo) / 2)))


# -- Arrow <-> numpy ---------------------------------------------------------------------------


def utf8_buffers(texts: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(data bytes, int64 offsets) of a string array; nulls read as empty strings."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks() if texts.num_chunks != 1 else texts.chunk(0)
    if texts.type != pa.large_string():
        texts = texts.cast(pa.large_string())
    if texts.null_count:
        texts = texts.fill_null("")
    _, offsets_buf, data_buf = texts.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[
        texts.offset : texts.offset + len(texts) + 1
    ]
    data = (
        np.frombuffer(data_buf, dtype=np.uint8)
        if data_buf is not None
        else np.zeros(0, dtype=np.uint8)
    )
    return data, offsets


# -- kernels (compiled lazily: numba is imported on first use) ----------------------------------


def _tokenise(data, start, end, unit, ngram, toks, buf):  # pragma: no cover - compiled
    """Shingle hashes of one document into `toks`; returns how many."""
    ntok = 0
    if unit == 0:
        h = _FNV_OFFSET
        inside = False
        for p in range(start, end):
            c = data[p]
            if 65 <= c <= 90:
                c += 32
            if (48 <= c <= 57) or (97 <= c <= 122) or c >= 128:
                h = (h ^ np.uint64(c)) * _FNV_PRIME
                inside = True
            elif inside:
                toks[ntok] = h
                ntok += 1
                h = _FNV_OFFSET
                inside = False
        if inside:
            toks[ntok] = h
            ntok += 1
        if ntok == 0:
            return 0
        nsh = ntok - ngram + 1 if ntok >= ngram else 1
        width = ngram if ntok >= ngram else ntok
        for s in range(nsh):
            x = np.uint64(0x9E3779B97F4A7C15)
            for j in range(width):
                x = (x ^ toks[s + j]) * np.uint64(0xBF58476D1CE4E5B9)
                x ^= x >> np.uint64(31)
            toks[s] = x
        return nsh
    # characters: lowercase, runs of non-word bytes become one space, then n-grams of code
    # points (a UTF-8 continuation byte never starts a character).
    m = 0
    space = True
    for p in range(start, end):
        c = data[p]
        if 65 <= c <= 90:
            c += 32
        if (48 <= c <= 57) or (97 <= c <= 122) or c >= 128:
            buf[m] = c
            m += 1
            space = False
        elif not space:
            buf[m] = 32
            m += 1
            space = True
    if m > 0 and buf[m - 1] == 32:
        m -= 1
    if m == 0:
        return 0
    nchar = 0
    for p in range(m):
        if (buf[p] & 0xC0) != 0x80:
            toks[nchar] = p  # start of character nchar (reused as positions here)
            nchar += 1
    toks[nchar] = m
    nsh = nchar - ngram + 1 if nchar >= ngram else 1
    width = ngram if nchar >= ngram else nchar
    for s in range(nsh):
        h = _FNV_OFFSET
        for p in range(toks[s], toks[s + width]):
            h = (h ^ np.uint64(buf[p])) * _FNV_PRIME
        h ^= h >> np.uint64(29)
        toks[s] = h  # s < s + width: positions still needed are never overwritten
    return nsh


def _signatures(data, offsets, a, b, unit, ngram, sig, ok):  # pragma: no cover - compiled
    n = len(offsets) - 1
    num_perm = len(a)
    chunk = 512
    for c in _prange((n + chunk - 1) // chunk):
        lo = c * chunk
        hi = min(n, lo + chunk)
        longest = 1
        for i in range(lo, hi):
            longest = max(longest, offsets[i + 1] - offsets[i])
        toks = np.empty(longest + 2, dtype=np.uint64)
        buf = np.empty(longest + 1, dtype=np.uint8)
        mins = np.empty(num_perm, dtype=np.uint64)
        for i in range(lo, hi):
            nsh = _tokenise_jit(data, offsets[i], offsets[i + 1], unit, ngram, toks, buf)
            if nsh == 0:
                ok[i] = False
                for k in range(num_perm):
                    sig[i, k] = np.uint32(0xFFFFFFFF)
                continue
            ok[i] = True
            for k in range(num_perm):
                mins[k] = np.uint64(0xFFFFFFFF)
            for s in range(nsh):
                x = toks[s]
                x = (x ^ (x >> np.uint64(32))) & np.uint64(0xFFFFFFFF)
                for k in range(num_perm):
                    # branch-free so that LLVM vectorises the permutation loop
                    mins[k] = min(mins[k], (a[k] * x + b[k]) >> np.uint64(32))
            for k in range(num_perm):
                sig[i, k] = np.uint32(mins[k])


def _band_keys(sig, ok, rows_in, bands, rows, keys, out_rows):  # pragma: no cover - compiled
    """Bucket key of every (document, band), document-major, and the row numbers."""
    n = sig.shape[0]
    for i in _prange(n):
        for j in range(bands):
            out_rows[i * bands + j] = rows_in[i]
            if not ok[i]:
                keys[i * bands + j] = np.uint64(0)
                continue
            h = np.uint64(j + 1) * np.uint64(0x9E3779B97F4A7C15)
            for t in range(rows):
                h = (h ^ np.uint64(sig[i, j * rows + t])) * np.uint64(0xFF51AFD7ED558CCD)
                h ^= h >> np.uint64(33)
            h = (h ^ (h >> np.uint64(29))) * np.uint64(0xC4CEB9FE1A85EC53)
            h ^= h >> np.uint64(32)
            keys[i * bands + j] = h | np.uint64(1)  # 0 is reserved for "no signature"


def _emit_run(idx, rows, max_pairs, out_a, out_b, m, emit):  # pragma: no cover - compiled
    """Pairs of one bucket (row numbers of its members at `idx`); returns the new count."""
    size = len(idx)
    if size <= max_pairs:
        for p in range(size):
            for q in range(p + 1, size):
                if emit:
                    x, y = rows[idx[p]], rows[idx[q]]
                    out_a[m] = min(x, y)
                    out_b[m] = max(x, y)
                m += 1
        return m
    first = rows[idx[0]]
    for p in range(1, size):
        first = min(first, rows[idx[p]])
    for p in range(size):
        r = rows[idx[p]]
        if r != first:
            if emit:
                out_a[m] = first
                out_b[m] = r
            m += 1
    return m


def _packed_runs(
    packed, buckets, rows, idx_bits, max_pairs, out_a, out_b, emit
):  # pragma: no cover - compiled
    """Walk sorted (bucket high bits | input index) values; emit pairs per equal bucket.

    Equal high bits are only a hint: members are grouped by their full bucket value, so
    truncation never creates a false pair.
    """
    n = len(packed)
    mask = (np.uint64(1) << np.uint64(idx_bits)) - np.uint64(1)
    shift = np.uint64(idx_bits)
    m = 0
    i = 0
    while i < n:
        hi = packed[i] >> shift
        j = i + 1
        while j < n and (packed[j] >> shift) == hi:
            j += 1
        if j - i > 1:
            idx = np.empty(j - i, dtype=np.int64)
            same = True
            for t in range(i, j):
                idx[t - i] = np.int64(packed[t] & mask)
                if buckets[idx[t - i]] != buckets[idx[0]]:
                    same = False
            if same:
                if buckets[idx[0]] != 0:
                    m = _emit_run_jit(idx, rows, max_pairs, out_a, out_b, m, emit)
            else:
                full = np.empty(j - i, dtype=np.uint64)
                for t in range(j - i):
                    full[t] = buckets[idx[t]]
                order = np.argsort(full)
                s = 0
                while s < j - i:
                    e = s + 1
                    while e < j - i and full[order[e]] == full[order[s]]:
                        e += 1
                    if e - s > 1 and full[order[s]] != 0:
                        sub = np.empty(e - s, dtype=np.int64)
                        for t in range(s, e):
                            sub[t - s] = idx[order[t]]
                        m = _emit_run_jit(sub, rows, max_pairs, out_a, out_b, m, emit)
                    s = e
        i = j
    return m


def _jaccard(data_a, off_a, data_b, off_b, unit, ngram, out):  # pragma: no cover - compiled
    n = len(off_a) - 1
    for i in _prange(n):
        la = off_a[i + 1] - off_a[i]
        lb = off_b[i + 1] - off_b[i]
        ta = np.empty(la + 2, dtype=np.uint64)
        tb = np.empty(lb + 2, dtype=np.uint64)
        buf = np.empty(max(la, lb) + 1, dtype=np.uint8)
        na = _tokenise_jit(data_a, off_a[i], off_a[i + 1], unit, ngram, ta, buf)
        nb = _tokenise_jit(data_b, off_b[i], off_b[i + 1], unit, ngram, tb, buf)
        if na == 0 or nb == 0:
            out[i] = 0.0
            continue
        sa = np.unique(ta[:na])
        sb = np.unique(tb[:nb])
        p = 0
        q = 0
        inter = 0
        while p < len(sa) and q < len(sb):
            if sa[p] == sb[q]:
                inter += 1
                p += 1
                q += 1
            elif sa[p] < sb[q]:
                p += 1
            else:
                q += 1
        out[i] = inter / (len(sa) + len(sb) - inter)


_prange = range
_tokenise_jit = _tokenise
_emit_run_jit = _emit_run


@functools.cache
def _kernels():
    global _prange, _tokenise_jit, _emit_run_jit
    numba = require("numba", "dedup", "the compiled MinHash kernel")
    _prange = numba.prange
    _tokenise_jit = numba.njit(cache=True, nogil=True)(_tokenise)
    _emit_run_jit = numba.njit(cache=True, nogil=True)(_emit_run)
    opts = {"cache": True, "nogil": True, "parallel": True}
    return {
        "signatures": numba.njit(**opts)(_signatures),
        "band_keys": numba.njit(**opts)(_band_keys),
        "runs": numba.njit(cache=True, nogil=True)(_packed_runs),
        "jaccard": numba.njit(**opts)(_jaccard),
    }


# -- numpy-level API -----------------------------------------------------------------------------


def _unit_code(unit: str) -> int:
    return 0 if unit == "word" else 1


def signatures(
    texts: pa.Array | pa.ChunkedArray, params: MinHashParams, banded_only: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(n, num_perm) uint32 MinHash signatures and a mask of documents that had any shingle.

    With `banded_only`, only the bands x rows permutations that LSH reads are computed.
    """
    data, offsets = utf8_buffers(texts)
    n = len(offsets) - 1
    a, b = params.coefficients
    if banded_only:
        used = params.bands * params.rows
        a, b = np.ascontiguousarray(a[:used]), np.ascontiguousarray(b[:used])
    sig = np.empty((n, len(a)), dtype=np.uint32)
    ok = np.empty(n, dtype=np.bool_)
    _kernels()["signatures"](data, offsets, a, b, _unit_code(params.unit), params.ngram, sig, ok)
    return sig, ok


def band_keys(
    sig: np.ndarray, ok: np.ndarray, params: MinHashParams, rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Flat (n * bands) uint64 bucket keys, document-major, and the row of each; a document
    without shingles gets key 0, which never forms a bucket."""
    n = sig.shape[0]
    rows = np.arange(n, dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
    keys = np.empty(params.bands * n, dtype=np.uint64)
    out_rows = np.empty(params.bands * n, dtype=np.int64)
    _kernels()["band_keys"](sig, ok, rows, params.bands, params.rows, keys, out_rows)
    return keys, out_rows


def pairs_from_buckets(
    rows: np.ndarray, buckets: np.ndarray, max_bucket: int = MAX_BUCKET_PAIRS
) -> tuple[np.ndarray, np.ndarray]:
    """Unique candidate pairs (a < b, sorted) of rows that share a bucket key.

    Buckets of more than `max_bucket` rows are linked as a star around their first row.
    """
    kernels = _kernels()
    n = len(buckets)
    if n < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    buckets = np.ascontiguousarray(buckets, dtype=np.uint64)
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    # Sort one u64 per entry (bucket high bits | input index): numpy's vectorised sort of
    # plain integers is several times faster than an argsort of the keys.
    idx_bits = max(1, int(n - 1).bit_length())
    low = np.uint64((1 << idx_bits) - 1)
    packed = (buckets & ~low) | np.arange(n, dtype=np.uint64)
    packed.sort()
    empty = np.zeros(0, np.int64)
    count = kernels["runs"](packed, buckets, rows, idx_bits, max_bucket, empty, empty, False)
    a = np.empty(count, np.int64)
    b = np.empty(count, np.int64)
    kernels["runs"](packed, buckets, rows, idx_bits, max_bucket, a, b, True)
    return unique_pairs(a, b)


def unique_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct pairs, sorted by (a, b)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if len(a) == 0:
        return a, b
    if max(a.max(), b.max()) < 2**31:  # one packed integer per pair sorts much faster
        packed = np.unique((a << 32) | b)
        return packed >> 32, packed & 0xFFFFFFFF
    pairs = np.unique(np.stack([a, b], axis=1), axis=0)
    return pairs[:, 0].copy(), pairs[:, 1].copy()


def jaccard(
    texts_a: pa.Array | pa.ChunkedArray, texts_b: pa.Array | pa.ChunkedArray, params: MinHashParams
) -> np.ndarray:
    """True Jaccard similarity of the shingle sets of aligned text pairs."""
    da, oa = utf8_buffers(texts_a)
    db, ob = utf8_buffers(texts_b)
    out = np.empty(len(oa) - 1, dtype=np.float64)
    _kernels()["jaccard"](da, oa, db, ob, _unit_code(params.unit), params.ngram, out)
    return out


# -- pure table functions (what the engines run) ------------------------------------------------


def signature_table(table: pa.Table, params: MinHashParams) -> pa.Table:
    """`row, text` -> `row, bucket`: one row per document and band (bucket 0: no shingles)."""
    sig, ok = signatures(table["text"], params, banded_only=True)
    keys, rows = band_keys(sig, ok, params, np.asarray(table["row"], dtype=np.int64))
    return pa.table({"row": rows, "bucket": keys})


def bucket_pairs(table: pa.Table) -> pa.Table:
    """`row, bucket` -> `a, b`: candidate pairs inside every bucket present in `table`."""
    a, b = pairs_from_buckets(
        np.asarray(table["row"], dtype=np.int64), np.asarray(table["bucket"], dtype=np.uint64)
    )
    return pa.table({"a": a, "b": b})


def verify_pairs(table: pa.Table, params: MinHashParams) -> pa.Table:
    """`a, b, text_a, text_b` -> `a, b, jaccard` (true Jaccard of the shingle sets)."""
    score = jaccard(table["text_a"], table["text_b"], params)
    return pa.table({"a": table["a"], "b": table["b"], "jaccard": score})
