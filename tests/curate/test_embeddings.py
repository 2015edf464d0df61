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
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path = tmp_path_factory.mktemp("tiny-st")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "film", "plot"]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=32)  # fmt: skip
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


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
    from assay.augment.guard import GuardConfig, _similarity
    from assay.curate.dedup_semantic import embed

    first = embed(["good film", "bad plot"], tiny_sentence_model)
    second = embed(["good plot"], tiny_sentence_model)
    sims = _similarity(GuardConfig(encoder=tiny_sentence_model), ["good film"], ["good plot"])
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
