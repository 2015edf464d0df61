from __future__ import annotations

import shutil
import sqlite3
import subprocess

import pytest

from assay.augment import translate as tr
from assay.errors import InputError, ResourceError

needs_apertium = pytest.mark.skipif(shutil.which("apertium") is None, reason="apertium absent")


@pytest.fixture(autouse=True)
def _own_home(tmp_path, monkeypatch):
    """Each test starts with an empty translation cache."""
    monkeypatch.setenv("ASSAY_HOME", str(tmp_path / "home"))


class FakeTranslator(tr.Translator):
    """Upper-cases and tags the pair; records every batch it is asked to translate."""

    backend = "fake"

    def __init__(self, model: str = "m1", fail: bool = False, **kw) -> None:
        super().__init__(model, **kw)
        self.batches: list[list[str]] = []
        self.fail = fail

    def _translate(self, texts, src, tgt):
        self.batches.append(list(texts))
        if self.fail:
            raise RuntimeError("backend down")
        return [f"{tgt}:{t.upper()}" for t in texts]


def test_translate_returns_one_output_per_input_in_order():
    fake = FakeTranslator()
    assert fake.translate(["a", "b", "a"], "eng", "spa") == ["spa:A", "spa:B", "spa:A"]
    assert fake.batches == [["a", "b"]]  # duplicates translated once, in one batch


def test_cache_across_objects_skips_known_texts():
    first = FakeTranslator()
    first.translate(["one", "two"], "eng", "spa")
    second = FakeTranslator()  # a new run: same backend, model and pair
    assert second.translate(["two", "three", "one"], "eng", "spa") == [
        "spa:TWO",
        "spa:THREE",
        "spa:ONE",
    ]
    assert second.batches == [["three"]]
    assert second.computed == 1
    assert (tr.cache_dir()).is_dir()


def test_cache_is_per_model_and_per_pair():
    FakeTranslator("m1").translate(["one"], "eng", "spa")
    other_model = FakeTranslator("m2")
    other_model.translate(["one"], "eng", "spa")
    other_pair = FakeTranslator("m1")
    other_pair.translate(["one"], "eng", "cat")
    assert other_model.batches == [["one"]]
    assert other_pair.batches == [["one"]]
    assert len(list(tr.cache_dir().glob("*.sqlite"))) == 3


def test_cache_off_recomputes():
    FakeTranslator().translate(["one"], "eng", "spa")
    again = FakeTranslator(cache=False)
    again.translate(["one"], "eng", "spa")
    assert again.batches == [["one"]]


def test_failed_batch_leaves_the_cache_unchanged():
    FakeTranslator().translate(["one"], "eng", "spa")
    with pytest.raises(RuntimeError):
        FakeTranslator(fail=True).translate(["two", "three"], "eng", "spa")
    (path,) = tr.cache_dir().glob("*.sqlite")
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT v FROM t").fetchall() == [("spa:ONE",)]


def test_a_local_model_directory_is_keyed_by_its_files(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"1")
    before = FakeTranslator(str(model)).model_key()
    (model / "weights.bin").write_bytes(b"22")
    assert FakeTranslator(str(model)).model_key() != before


def test_unknown_backend_and_missing_model_are_one_clear_error():
    with pytest.raises(InputError, match="unknown translation backend 'x'"):
        tr.translator("x")
    with pytest.raises(InputError, match="needs a model"):
        tr.translator("hf")


@needs_apertium
def test_apertium_translates_a_whole_batch_in_one_process():
    apertium = tr.translator("apertium")
    texts = ["The film is good.", "It was a bad movie.", "A long\nstory, told   badly.", ""]
    out = apertium.translate(texts, "eng", "spa")
    assert len(out) == 4
    assert out[0] == "La película es bien."
    assert out[1].startswith("Era una película mala")
    assert "\n" not in out[2] and out[2]
    assert out[3] == ""
    assert apertium.processes == 1


@needs_apertium
def test_apertium_translates_a_sentence_alike_whatever_its_batch_neighbours():
    # Apertium carries context across a line without a full stop: in one stream the second
    # sentence came back with a lower-case verb and, back in English, without its "I".
    unterminated = "Katz uses archival footage, but most powerful of all is the song itself"
    sentence = "I enjoyed Time of Favor while I was watching it."
    together = tr.translator("apertium", cache=False).translate(
        [unterminated, sentence, "ok"], "eng", "spa"
    )
    alone = tr.translator("apertium", cache=False).translate([sentence], "eng", "spa")
    assert together[1] == alone[0] and alone[0][0].isupper()


@needs_apertium
def test_apertium_second_run_reads_the_cache():
    texts = ["The film is good.", "It was a bad movie."]
    first = tr.translator("apertium")
    expected = first.translate(texts, "eng", "cat")
    second = tr.translator("apertium")
    assert second.translate(texts, "eng", "cat") == expected
    assert second.processes == 0 and second.computed == 0


@needs_apertium
def test_apertium_tags_each_sentence_alone_so_earlier_sentences_change_nothing():
    # Two SST-2 sentences: after the first, Apertium's own stream tags "numbered" as a
    # past verb ("numeró"); alone, as a participle ("numerado").
    earlier = (
        "it sticks rigidly to the paradigm , rarely permitting its characters more than two "
        "obvious dimensions and repeatedly placing them in contrived , well-worn situations ."
    )
    sentence = "smaller numbered kidlets will enjoy ."
    stream = subprocess.run(
        ["apertium", "-u", "eng-spa"],
        input=f"{earlier}\n\n{sentence}\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")[2]
    assert "numeró" in stream  # the state this translator must not inherit
    together = tr.translator("apertium", cache=False).translate([earlier, sentence], "eng", "spa")
    alone = tr.translator("apertium", cache=False).translate([sentence], "eng", "spa")
    assert together[1] == alone[0] and "numerado" in alone[0]


@needs_apertium
def test_apertium_escapes_the_stream_format_s_reserved_characters():
    texts = ["a [b] ^c$ / <d> @e \\f {g} ~h", "it costs $5 ."]
    out = tr.translator("apertium", cache=False).translate(texts, "eng", "spa")
    assert len(out) == 2
    assert "[b]" in out[0] and "<d>" in out[0] and "{g}" in out[0] and "\\f" in out[0]
    assert "$5" in out[1]


@needs_apertium
def test_apertium_missing_pair_names_the_installed_ones():
    with pytest.raises(ResourceError, match=r"no eng-deu pair; installed: .*eng-spa"):
        tr.translator("apertium").translate(["Hello"], "eng", "deu")
