from __future__ import annotations

import numpy as np
import pytest

from assay import resources
from assay.errors import ResourceError

pytest.importorskip("torch")
st = pytest.importorskip("sentence_transformers")


@pytest.fixture(scope="module")
def tiny_sentence_model(tmp_path_factory):
    """A tiny randomly initialised BERT that sentence-transformers can load (mean pooling)."""
    from assay.testing import tiny_bert

    path = tmp_path_factory.mktemp("tiny-st")
    words = ["good", "bad", "film", "plot"]
    return str(tiny_bert(path, words, hidden=16, layers=1, positions=32, classifier=False))


@pytest.fixture
def counted_loads(monkeypatch):
    """Count SentenceTransformer constructions, starting from an empty process cache."""
    monkeypatch.setattr(resources, "_SENTENCE_ENCODERS", {})
    loads: list[tuple[str, str]] = []

    class Counting(st.SentenceTransformer):
        def __init__(self, path, device=None, **kwargs):
            loads.append((path, device))
            super().__init__(path, device=device, **kwargs)

    monkeypatch.setattr(st, "SentenceTransformer", Counting)
    return loads


def test_dedup_and_guard_share_one_loaded_encoder(tiny_sentence_model, counted_loads):
    import polars as pl

    from assay.augment.guard import GuardConfig, check
    from assay.curate.dedup_semantic import embed

    first = embed(["good film", "bad plot"], tiny_sentence_model)
    second = embed(["good plot"], tiny_sentence_model)
    parents = pl.DataFrame({"id": ["p"], "text": ["good plot"], "label": ["pos"]})
    new = pl.DataFrame({"id": ["p~0"], "text": ["good film"], "parent_id": ["p"]})
    config = GuardConfig(model="none", similarity=-1.0, encoder=tiny_sentence_model)
    checked = check(config, parents, parents, new, seed=0, step="guard")
    sims = checked["guard__guard_similarity"].to_numpy()
    assert counted_loads == [(tiny_sentence_model, resources.embedding_device())]
    assert first.shape == (2, 16) and second.shape == (1, 16)
    assert np.allclose(np.linalg.norm(first, axis=1), 1, atol=1e-5)
    assert sims.shape == (1,) and -1.0 <= float(sims[0]) <= 1.0


def test_embeddings_use_cuda_when_there_is_one(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resources.embedding_device() == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resources.embedding_device() == "cpu"
    with pytest.raises(ResourceError, match="sees no CUDA device"):
        resources.embedding_device("cuda:1")
