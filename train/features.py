"""TF-IDF over word and character n-grams, computed in bulk with numpy.

scikit-learn's TfidfVectorizer builds n-grams one Python string at a time; on short
sentences that is most of a fast-model fit. Here every n-gram is a 64-bit hash computed
for the whole batch at once (polynomial hashes over code points and token hashes), and
the vocabulary is the sorted set of hashes seen in training, so there are no bucket
collisions as in a HashingVectorizer. Each block (word, char) is TF-IDF weighted and
L2-normalised on its own, as a FeatureUnion of two TfidfVectorizers would be.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import xxhash

WORD_TOKEN = re.compile(r"(?u)\b\w+\b|[!?]")
"""How the fast model splits a text into words for its n-grams: runs of word characters,
and "!" and "?" (they carry sentiment). Error analysis names n-grams by the same split."""
_MULT = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit multiplier for polynomial hashes
_SEP = 0x1  # document separator code point (never in normalised text)
_SPACE = 0x20
_TOKEN_HASHES: dict[str, int] = {}  # token -> hash; tokens are few, texts are many
# The sorted n-grams of recent `transform` inputs, by content: an ablation's cells each fit
# a model and transform the same eval texts with it, and the n-grams do not depend on the fit.
_EVAL_GRAMS: OrderedDict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = OrderedDict()
_EVAL_GRAMS_KEPT = 4
_EVAL_GRAMS_MAX = 4_000_000  # n-grams: larger inputs are not kept (about 24 bytes each)
# Each text's n-gram hashes, by (kind, ngrams) and lowercased text: cross-fitting and the
# checks built on it fit many models on overlapping subsets of the same rows, and a text's
# n-grams do not depend on its neighbours. Bounded in n-grams (8 bytes each); inputs of
# more texts than _TEXT_GRAMS_TEXTS skip it.
_TEXT_GRAMS: dict[tuple[str, int, int], dict[str, np.ndarray]] = {}
_TEXT_GRAMS_MAX = 6_000_000
_TEXT_GRAMS_TEXTS = 50_000
_text_grams_held = [0]


def _token_hash(token: str) -> int:
    h = _TOKEN_HASHES.get(token)
    if h is None:
        if len(_TOKEN_HASHES) > 2_000_000:
            _TOKEN_HASHES.clear()
        h = xxhash.xxh3_64_intdigest(token.encode("utf-8"))
        _TOKEN_HASHES[token] = h
    return h


def _ngram_hashes(
    units: np.ndarray, doc: np.ndarray, lo: int, hi: int, blocked: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every window of lo..hi consecutive units inside one document.

    `blocked[i]` marks a boundary between units i and i+1 that a window may not span.
    Returns (document index, hash) per window.
    """
    n_units = len(units)
    docs, hashes = [], []
    if blocked is None:
        blocked = doc[:-1] != doc[1:] if n_units > 1 else np.zeros(0, dtype=bool)
    else:
        blocked = blocked | (doc[:-1] != doc[1:])
    crossings = np.concatenate([[0], np.cumsum(blocked, dtype=np.int64)])
    with np.errstate(over="ignore"):
        for n in range(lo, hi + 1):
            m = n_units - n + 1
            if m <= 0:
                break
            # A window [i, i+n) is valid when no blocked boundary lies inside it.
            ok = crossings[n - 1 : n - 1 + m] == crossings[:m]
            h = np.full(m, np.uint64(n) * np.uint64(0x51ED27), dtype=np.uint64)
            for k in range(n):
                h = h * _MULT + units[k : k + m]
            docs.append(doc[:m][ok])
            hashes.append(h[ok])
    if not docs:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint64)
    return np.concatenate(docs), np.concatenate(hashes)


def word_ngrams(texts: Sequence[str], lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    tokens_per_doc = [WORD_TOKEN.findall(t) for t in texts]
    lengths = np.fromiter((len(x) for x in tokens_per_doc), dtype=np.int64, count=len(texts))
    units = np.fromiter(
        (_token_hash(tok) for toks in tokens_per_doc for tok in toks),
        dtype=np.uint64,
        count=int(lengths.sum()),
    )
    doc = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
    return _ngram_hashes(units, doc, lo, hi)


def char_ngrams(texts: Sequence[str], lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Character n-grams inside space-padded words (scikit-learn's `char_wb`)."""
    padded = ["".join(f" {w} " for w in t.split()) for t in texts]
    lengths = np.fromiter((len(p) for p in padded), dtype=np.int64, count=len(texts))
    joined = "".join(padded)
    units = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    doc = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
    # Between two padded words sit two spaces: no window may span that gap.
    blocked = (units[:-1] == _SPACE) & (units[1:] == _SPACE)
    return _ngram_hashes(units, doc, lo, hi, blocked)


class HashedTfidf:
    """One TF-IDF block (word or char n-grams) with a vocabulary fitted on training texts."""

    def __init__(
        self,
        kind: str,
        ngrams: tuple[int, int],
        min_df: int = 1,
        max_features: int | None = None,
        sublinear_tf: bool = True,
    ) -> None:
        self.kind = kind
        self.ngrams = (int(ngrams[0]), int(ngrams[1]))
        self.min_df = min_df
        self.max_features = max_features
        self.sublinear_tf = sublinear_tf
        self.vocabulary_: np.ndarray | None = None
        self.idf_: np.ndarray | None = None

    def _grams(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(document, hash) of every n-gram of `texts` (lowercased), each text's n-grams
        together: a document's grams may come in any order (they are counted)."""
        texts = [t.lower() for t in texts]
        fn = word_ngrams if self.kind == "word" else char_ngrams
        if len(texts) > _TEXT_GRAMS_TEXTS:
            return fn(texts, *self.ngrams)
        store = _TEXT_GRAMS.setdefault((self.kind, *self.ngrams), {})
        missing = list(dict.fromkeys(t for t in texts if t not in store))
        if missing:
            docs, hashes = fn(missing, *self.ngrams)
            if _text_grams_held[0] + len(hashes) > _TEXT_GRAMS_MAX:
                # Full: start afresh, and keep this input's texts whole.
                for kept in _TEXT_GRAMS.values():
                    kept.clear()
                _text_grams_held[0] = 0
                missing = list(dict.fromkeys(texts))
                docs, hashes = fn(missing, *self.ngrams)
            order = np.argsort(docs, kind="stable")
            bounds = np.searchsorted(docs[order], np.arange(len(missing) + 1))
            by_doc = hashes[order]
            for j, text in enumerate(missing):
                store[text] = by_doc[bounds[j] : bounds[j + 1]]
            _text_grams_held[0] += len(hashes)
        parts = [store[t] for t in texts]
        lengths = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
        docs = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
        hashes = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)
        return docs, hashes.astype(np.uint64, copy=False)

    def fit_transform(self, texts: Sequence[str]):
        docs, hashes = self._grams(texts)
        n_docs = len(texts)
        vocab, col = np.unique(hashes, return_inverse=True)
        counts = _counts(docs, hashes, n_docs, vocab, col.ravel())
        df = np.bincount(counts.indices, minlength=len(vocab))
        keep = df >= self.min_df
        if self.max_features is not None and keep.sum() > self.max_features:
            totals = np.where(keep, np.asarray(counts.sum(axis=0)).ravel(), -1)
            top = np.argsort(-totals, kind="stable")[: self.max_features]
            keep = np.zeros(len(vocab), dtype=bool)
            keep[top] = True
        if not keep.all():
            counts = counts[:, keep]
        self.vocabulary_ = vocab[keep]
        self.idf_ = (np.log((1 + n_docs) / (1 + df[keep])) + 1.0).astype(np.float32)
        return self._weight(counts)

    def transform(self, texts: Sequence[str]):
        assert self.vocabulary_ is not None
        docs, hashes, order = self._sorted_grams(texts)
        return self._weight(_counts(docs, hashes, len(texts), self.vocabulary_, order=order))

    def _sorted_grams(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(document, hash, hash order) of every n-gram, kept for the last few inputs."""
        digest = xxhash.xxh3_128()
        for text in texts:
            digest.update(text.encode("utf-8", "surrogatepass"))
            digest.update(b"\x00")
        key = (self.kind, self.ngrams, len(texts), digest.intdigest())
        got = _EVAL_GRAMS.get(key)
        if got is not None:
            _EVAL_GRAMS.move_to_end(key)
            return got
        docs, hashes = self._grams(texts)
        got = (docs, hashes, np.argsort(hashes))
        if len(hashes) <= _EVAL_GRAMS_MAX:
            _EVAL_GRAMS[key] = got
            while len(_EVAL_GRAMS) > _EVAL_GRAMS_KEPT:
                _EVAL_GRAMS.popitem(last=False)
        return got

    def _weight(self, counts):
        from scipy import sparse

        tf = counts.astype(np.float32)
        if self.sublinear_tf:
            np.log(tf.data, out=tf.data)
            tf.data += 1.0
        # Scaling columns by idf and rows by 1/norm in place: the products a multiplication
        # by diagonal matrices computes, without building them (4x faster, same bits).
        tf.data *= self.idf_[tf.indices]
        norms = np.sqrt(np.asarray(tf.multiply(tf).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        tf.data *= np.repeat((1.0 / norms).astype(np.float32), np.diff(tf.indptr))
        return sparse.csr_matrix(tf)


def _counts(
    docs: np.ndarray,
    hashes: np.ndarray,
    n_docs: int,
    vocab: np.ndarray,
    col: np.ndarray | None = None,
    order: np.ndarray | None = None,
):
    """Term counts (n_docs, len(vocab)); grams outside the vocabulary are ignored. `order`
    is `np.argsort(hashes)` where the caller has it."""
    from scipy import sparse

    if len(vocab) == 0:
        return sparse.csr_matrix((n_docs, 0), dtype=np.float32)
    if col is None:
        # Searching sorted needles is cache-friendly: twice as fast as random order.
        order = np.argsort(hashes) if order is None else order
        col = np.empty(len(hashes), dtype=np.int64)
        col[order] = np.searchsorted(vocab, hashes[order])
        col = np.minimum(col, len(vocab) - 1)
    known = vocab[col] == hashes
    counts = sparse.csr_matrix(
        (np.ones(int(known.sum()), dtype=np.float32), (docs[known], col[known])),
        shape=(n_docs, len(vocab)),
    )
    counts.sum_duplicates()
    return counts


class NgramTfidf:
    """Word and char TF-IDF blocks side by side (each block L2-normalised)."""

    def __init__(self, blocks: list[HashedTfidf]) -> None:
        self.blocks = blocks

    def fit_transform(self, texts: Sequence[str]):
        from scipy import sparse

        return sparse.hstack([b.fit_transform(texts) for b in self.blocks], format="csr")

    def transform(self, texts: Sequence[str]):
        from scipy import sparse

        return sparse.hstack([b.transform(texts) for b in self.blocks], format="csr")
