"""The Hugging Face and CTranslate2 backends on a tiny randomly initialised Marian model,
built offline in the test (its sentencepiece tokenizer is trained here too)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from assay import testing
from assay.augment import translate as tr

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("torch", "transformers", "sentencepiece")),
    reason="torch, transformers or sentencepiece absent",
)
needs_ct2 = pytest.mark.skipif(
    importlib.util.find_spec("ctranslate2") is None, reason="ctranslate2 absent"
)

SENTENCES = [
    "the film is good",
    "it was a bad movie",
    "a long story told badly",
    "i love this great story",
    "the actors are wonderful and the plot is thin",
    "nothing works in this dull comedy",
    "a warm funny and clever film",
    "the worst movie of the year",
] * 8
TOKENIZER_FILES = ["source.spm", "target.spm", "vocab.json", "tokenizer_config.json"]


@pytest.fixture(scope="module")
def tiny_marian(tmp_path_factory) -> Path:
    return testing.tiny_marian(tmp_path_factory.mktemp("marian"), SENTENCES)


@pytest.fixture(autouse=True)
def _own_home(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_HOME", str(tmp_path / "home"))


def test_hf_backend_translates_in_batches_and_caches(tiny_marian):
    texts = SENTENCES[:8]
    hf = tr.translator("hf", str(tiny_marian), device="cpu", batch_size=3, max_length=16)
    out = hf.translate(texts, "eng", "spa")
    assert len(out) == 8 and all(isinstance(t, str) and t for t in out)
    assert hf.computed == 8
    again = tr.translator("hf", str(tiny_marian), device="cpu", max_length=16)
    assert again.translate(texts, "eng", "spa") == out
    assert again.computed == 0
    fresh = tr.translator("hf", str(tiny_marian), device="cpu", max_length=16, cache=False)
    assert fresh.translate(texts[::-1], "eng", "spa") == out[::-1]  # greedy: deterministic
    assert tr.HFTranslator(str(tiny_marian)).tag() == f"hf:{tiny_marian}"


def test_hf_backend_loads_the_model_once_per_process(tiny_marian):
    first = tr.HFTranslator(str(tiny_marian), device="cpu", cache=False)
    second = tr.HFTranslator(str(tiny_marian), device="cpu", cache=False)
    assert first.load()[1] is second.load()[1]


def test_hf_backend_missing_model_is_one_clear_error(tmp_path):
    from assay.errors import ResourceError

    hf = tr.translator("hf", str(tmp_path / "nowhere"), device="cpu", cache=False)
    with pytest.raises(ResourceError, match="could not be loaded"):
        hf.translate(["hello"], "eng", "spa")


@needs_ct2
def test_ctranslate2_backend_matches_the_hf_model_it_was_converted_from(tiny_marian, tmp_path):
    import ctranslate2

    converted = tmp_path / "ct2"
    ctranslate2.converters.TransformersConverter(
        str(tiny_marian), copy_files=TOKENIZER_FILES
    ).convert(str(converted))
    texts = SENTENCES[:8]
    ct2 = tr.translator("ctranslate2", str(converted), device="cpu", max_length=16)
    out = ct2.translate(texts, "eng", "spa")
    hf = tr.translator("hf", str(tiny_marian), device="cpu", max_length=16, cache=False)
    reference = hf.translate(texts, "eng", "spa")
    assert len(out) == 8
    # Same greedy decoding: the same tokens (CTranslate2 may decode one token further).
    for got, want in zip(out, reference, strict=True):
        assert got.startswith(want[: max(1, len(want) - 3)])
    again = tr.translator("ctranslate2", str(converted), device="cpu")
    assert again.translate(texts, "eng", "spa") == out and again.computed == 0


@needs_ct2
def test_ctranslate2_backend_rejects_a_directory_that_is_not_converted(tiny_marian):
    from assay.errors import ResourceError

    ct2 = tr.translator("ctranslate2", str(tiny_marian), device="cpu", cache=False)
    with pytest.raises(ResourceError, match="not a CTranslate2 model directory"):
        ct2.translate(["hello"], "eng", "spa")
