from __future__ import annotations

from pathlib import Path

import pytest

from assay.testing import tiny_bert

WORDS = [
    "good", "great", "fine", "lovely", "superb", "bad", "awful", "poor", "dull", "boring",
    "the", "film", "movie", "was", "is", "a", "plot", "very", "and", "it", "##film",
]  # fmt: skip


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> Path:
    """A tiny randomly initialised BERT with a word-level vocabulary, saved to disk."""
    return tiny_bert(tmp_path_factory.mktemp("tiny-bert"), WORDS)
