"""Sentence embeddings of texts, in-process or in an engine's actor pool.

Without an engine (or on the local one) the encoder runs in this process, loaded once per
process (`resources.sentence_encoder`). On Ray the texts go in batches to an actor pool:
each actor loads the encoder once (with the engine's `gpus_per_actor` GPUs) and embeds
its batches; the vectors come back in text order. Semantic dedup, the semantic and
cross-lingual leakage methods, the augmentation guard and translate_train's round-trip
check all embed through here. `MULTILINGUAL` names the multilingual Universal Sentence
Encoder (`resources.multilingual_encoder`, 512 dimensions) instead of a
sentence-transformers model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

ROWS_PER_TASK = 1024  # texts per actor call on an engine (the encoder batches inside it)
MULTILINGUAL = "use-multilingual"
USE_BLOCK = 2048  # texts per call of the multilingual encoder (its memory grows with them)


def embed(
    texts: Sequence[str],
    model: str | None = None,
    *,
    batch_size: int = 64,
    engine: Any = None,
    purpose: str = "embeddings",
) -> np.ndarray:
    """Unit-length float32 embeddings (n, dim) of `texts`, by the sentence encoder `model`
    (the packaged MiniLM by default; a name or a path; `MULTILINGUAL` for the USE)."""
    texts = list(texts)
    if engine is None or engine.name == "local" or not texts:
        return Encoder(model, batch_size, purpose).encode(texts)
    table = pa.table({"_i": pa.array(np.arange(len(texts), dtype=np.int64)), "text": texts})
    out = engine.map_batches(
        table,
        Encoder,
        fn_args=(model, batch_size, purpose),
        batch_size=ROWS_PER_TASK,
        num_gpus=getattr(engine, "gpus_per_actor", None),
    )
    flat = out.sort_by("_i")["emb"].combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return np.asarray(flat, dtype=np.float32).reshape(out.num_rows, -1)


class Encoder:
    """A sentence encoder (loaded on construction) that embeds texts, or batches of them
    as an engine's callable class."""

    def __init__(self, model: str | None, batch_size: int = 64, purpose: str = "embeddings"):
        from assay import resources

        self.name = model
        self.batch_size = batch_size
        if model == MULTILINGUAL:
            self.model = resources.multilingual_encoder()
        else:
            self.model = resources.sentence_encoder(model, purpose=purpose)

    def encode(self, texts: list[str]) -> np.ndarray:
        if self.name == MULTILINGUAL:
            if not texts:
                return np.zeros((0, 512), dtype=np.float32)
            blocks = range(0, len(texts), USE_BLOCK)
            v = np.concatenate(
                [
                    np.asarray(self.model.encode(texts[i : i + USE_BLOCK]), np.float32)
                    for i in blocks
                ]
            )
            return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def __call__(self, batch: pa.Table) -> pa.Table:
        vectors = self.encode(batch["text"].to_pylist())
        dim = vectors.shape[1] if vectors.ndim == 2 else 0
        emb = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim)
        return pa.table({"_i": batch["_i"], "emb": emb})
