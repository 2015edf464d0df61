"""Sentence embeddings cached by content: each distinct text is embedded once.

Vectors are keyed by (encoder, SHA-1 of the text) and kept in memory; given a directory,
also on disk under `directory/embeddings-<encoder tag>/`. Every call that embeds new texts
writes one shard holding only those vectors (named by their keys, written atomically), so
no call rewrites what is already stored and concurrent writers never lose each other's
vectors; a load that finds many shards merges them into one.

`shared(encoder, directory)` gives one cache per (encoder, directory) per process: the many
models an ablation or a cross-fit trains share most of their rows, and each row is
embedded once for all of them. In memory a vector costs about 1.7 KB at 384 dimensions
(MiniLM); `clear_shared()` frees them.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from assay.resources import MINILM_ALIASES

log = logging.getLogger(__name__)

MAX_SHARDS = 64  # a load that finds more merges them into one
LEGACY_SUFFIX = ".npz"  # the single-file layout of earlier versions, still read


def text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def encoder_tag(model: str | None) -> str:
    """A short stable name of an encoder for file names (every MiniLM alias is one)."""
    name = "minilm" if model in MINILM_ALIASES else str(model)
    return hashlib.sha256(name.encode()).hexdigest()[:12]


class EmbeddingCache:
    """Unit-length float32 sentence embeddings of texts, each text embedded once.

    `model` is a sentence-transformers name or path (the packaged MiniLM when unset);
    `embedded` counts the texts this cache sent to the encoder.
    """

    def __init__(
        self,
        directory: str | Path | None = None,
        model: str | None = None,
        *,
        batch_size: int = 64,
        purpose: str = "embeddings",
    ) -> None:
        self.dir = Path(directory) if directory is not None else None
        self.model = None if model in MINILM_ALIASES else model
        self.batch_size = batch_size
        self.purpose = purpose
        self.embedded = 0
        self._vectors: dict[str, np.ndarray] = {}
        self._loaded = False

    def __len__(self) -> int:
        return len(self._vectors)

    def forget(self) -> None:
        """Drop the vectors held in memory (files on disk stay and load again on use)."""
        self._vectors.clear()
        self._loaded = False

    def _shard_dir(self) -> Path | None:
        if self.dir is None:
            return None
        return self.dir / f"embeddings-{encoder_tag(self.model)}"

    def _load(self) -> None:
        self._loaded = True
        shards = self._shard_dir()
        if shards is None:
            return
        legacy = shards.with_suffix(LEGACY_SUFFIX)
        files = sorted(shards.glob("*.npz")) if shards.is_dir() else []
        for path in [legacy, *files] if legacy.is_file() else files:
            self._vectors.update(_read(path))
        if len(files) > MAX_SHARDS:
            merged = self._write(list(self._vectors))
            for path in files:
                if path != merged:
                    path.unlink(missing_ok=True)
        if self._vectors:
            log.debug("loaded %d cached embeddings from %s", len(self._vectors), shards)

    def embed(
        self,
        texts: Sequence[str],
        engine: Any = None,
        purpose: str | None = None,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """(len(texts), dim) embeddings; texts not seen before are embedded in one batched
        call (on `engine`'s actor pool when one is given; `purpose` names the caller in a
        missing-encoder error; `batch_size` overrides the cache's)."""
        if not self._loaded:
            self._load()
        keys = [text_key(t) for t in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in self._vectors))
        if missing:
            from assay import embeddings

            by_key = dict(zip(keys, texts, strict=True))
            fresh = embeddings.embed(
                [by_key[k] for k in missing],
                self.model,
                batch_size=batch_size or self.batch_size,
                engine=engine,
                purpose=purpose or self.purpose,
            )
            self._vectors.update(zip(missing, fresh, strict=True))
            self.embedded += len(missing)
            self._write(missing)
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self._vectors[k] for k in keys])

    def _write(self, keys: list[str]) -> Path | None:
        shards = self._shard_dir()
        if shards is None or not keys:
            return None
        from assay import atomic

        name = hashlib.sha1("".join(sorted(keys)).encode()).hexdigest()[:16]
        path = shards / f"{name}.npz"
        vectors = np.stack([self._vectors[k] for k in keys])
        atomic.write_with(path, lambda tmp: _savez(tmp, np.array(keys), vectors))
        return path


def _read(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path) as data:
            return dict(zip(map(str, data["keys"]), data["vectors"], strict=True))
    except (OSError, ValueError, KeyError) as exc:  # a damaged shard is only a cache miss
        log.warning("ignoring unreadable embedding cache file %s: %s", path, exc)
        return {}


def _savez(path: Path, keys: np.ndarray, vectors: np.ndarray) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, keys=keys, vectors=vectors)


_SHARED: dict[tuple[str | None, str | None], EmbeddingCache] = {}


def shared(model: str | None = None, directory: str | Path | None = None) -> EmbeddingCache:
    """This process's cache for (`model`, `directory`), made on first use."""
    model = None if model in MINILM_ALIASES else model
    key = (model, str(Path(directory).expanduser().resolve()) if directory else None)
    cache = _SHARED.get(key)
    if cache is None:
        cache = _SHARED[key] = EmbeddingCache(directory, model)
    return cache


def clear_shared() -> None:
    """Forget every shared cache's in-memory vectors (the files stay)."""
    _SHARED.clear()
