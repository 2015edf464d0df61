"""Scoring texts with a fitted classifier: in-process, or in batches in an engine's actor
pool.

The model audit fits its model once on the driver; scoring the audited split and the
counterfactual texts is row-wise, so on an engine other than the local one the texts go
in batches to an actor pool (`ProbaBatches`, the model shipped once per actor) and the
probabilities come back in text order. A row's probabilities do not depend on the rows
scored with it, so the answer is the one in-process scoring gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa


class ProbaBatches:
    """A fitted model (given once per actor) that scores batches of `_i`, `text` rows."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __call__(self, batch: pa.Table) -> pa.Table:
        proba = np.asarray(self.model.predict_proba(batch["text"].to_pylist()), dtype=np.float64)
        return pa.table({"_i": batch["_i"], "proba": pa.array(list(proba), pa.list_(pa.float64()))})


def predict_proba(
    model: Any, texts: Sequence[str], engine: Any = None, num_gpus: float | None = None
) -> np.ndarray:
    """Class probabilities (n, classes) of `texts`; on `engine`, in its actor pool."""
    texts = list(texts)
    if engine is None or not texts:
        return np.asarray(model.predict_proba(texts))
    table = pa.table({"_i": pa.array(np.arange(len(texts), dtype=np.int64)), "text": texts})
    out = engine.map_batches(table, ProbaBatches, fn_args=(model,), num_gpus=num_gpus)
    flat = out.sort_by("_i")["proba"].combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return np.asarray(flat, dtype=np.float64).reshape(len(texts), -1)


class EngineScorer:
    """A fitted model whose `predict_proba` runs on an engine and remembers what it scored
    (the counterfactual audit asks again for the audited texts: they are not sent twice,
    and each call starts an actor pool); everything else is the model's own."""

    def __init__(self, model: Any, engine: Any, num_gpus: float | None = None) -> None:
        self.model = model
        self.engine = engine
        self.num_gpus = num_gpus
        self.known: dict[str, np.ndarray] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["model"], name)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        new = [t for t in dict.fromkeys(texts) if t not in self.known]
        if new:
            proba = predict_proba(self.model, new, self.engine, self.num_gpus)
            self.known.update(zip(new, proba, strict=True))
        if not texts:
            return np.zeros((0, len(self.model.classes_)))
        return np.stack([self.known[t] for t in texts])
