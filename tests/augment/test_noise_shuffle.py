from __future__ import annotations

from collections import Counter

import polars as pl

from assay import RunContext, from_records
from assay.augment.noise import CharNoiseAugmenter, keyboard
from assay.augment.shuffle import ShuffleAugmenter

TEXT = "the remarkable performances carry this otherwise ordinary thriller ."


def run(step, texts, name, seed=4):
    corpus = from_records(texts, ["a"] * len(texts), split="train")
    return step.apply(corpus, RunContext(seed=seed).for_step(0, name)).corpus.filter(
        pl.col("origin") != "source"
    )


def test_char_noise_makes_exactly_n_typos_from_keyboard_neighbours():
    keys = keyboard("en")
    out = run(CharNoiseAugmenter(p=0.25, n_per_row=5, rounding="floor"), [TEXT], "char_noise")
    assert out.height == 5
    words = TEXT.split()
    for text in out["text"]:
        new = text.split()
        diff = [(a, b) for a, b in zip(words, new, strict=True) if a != b]
        assert len(diff) == 2  # floor(0.25 * 9 words)
        for a, b in diff:
            assert a[0] == b[0] and len(a) == len(b)
            (i,) = [k for k in range(len(a)) if a[k] != b[k]]
            assert b[i] in keys[a[i]]


def test_every_character_action_changes_one_word_and_keeps_its_first_letter():
    for action in ("keyboard", "ocr", "swap", "delete", "insert"):
        out = run(
            CharNoiseAugmenter(p=0.1, actions=[action], n_per_row=4, rounding="floor"),
            [TEXT],
            "char_noise",
        )
        assert out.height >= 1, action
        for text in out["text"]:
            diff = [(a, b) for a, b in zip(TEXT.split(), text.split(), strict=True) if a != b]
            assert len(diff) == 1 and diff[0][0][0] == diff[0][1][0], (action, diff)


def test_char_noise_spares_protected_and_short_words():
    out = run(
        CharNoiseAugmenter(p=1.0, protected=["remarkable"], min_length=4, n_per_row=3),
        [TEXT],
        "char_noise",
    )
    assert out.height >= 1
    for text in out["text"]:
        words = text.split()
        assert words[0] == "the" and words[1] == "remarkable" and words[-1] == "."
        assert text != TEXT


def test_word_shuffle_keeps_words_and_punctuation_in_place():
    out = run(ShuffleAugmenter(n_per_row=3), [TEXT], "shuffle")
    assert out.height >= 2
    for text in out["text"]:
        assert Counter(text.split()) == Counter(TEXT.split())
        assert text.endswith(" .")


def test_sentence_shuffle_reorders_whole_sentences():
    text = "It starts well. Then it drags! Does it end? Yes."
    out = run(
        ShuffleAugmenter(unit="sentence", n_per_row=4), [text, "One sentence only."], "shuffle"
    )
    assert set(out["parent_id"]) == {out["parent_id"][0]}
    for new in out["text"]:
        assert sorted(new.split(" ")) == sorted(text.split(" "))
        assert new != text


def test_character_maps_ship_with_assay_without_nlpaug(monkeypatch):
    import importlib.util
    from pathlib import Path

    import tomllib

    from assay.augment import noise

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name.split(".")[0] == "nlpaug" else real(name, *a),
    )
    noise.keyboard.cache_clear()
    noise.ocr.cache_clear()
    try:
        assert "s" in noise.keyboard("en")["a"] and noise.keyboard("de") != noise.keyboard("en")
        assert noise.ocr()["0"]
    finally:
        noise.keyboard.cache_clear()
        noise.ocr.cache_clear()
    root = Path(__file__).resolve().parents[2]
    declared = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["assay.augment"]
    shipped = {
        p.relative_to(root / "augment").as_posix()
        for p in (root / "augment" / "data").rglob("*")
        if p.is_file()
    }
    assert shipped == {
        str(p)
        for pattern in declared
        for p in (
            q.relative_to(root / "augment").as_posix() for q in (root / "augment").glob(pattern)
        )
    }
    assert "LICENSE-nlpaug" in {Path(p).name for p in shipped}


def test_shuffle_rejects_edit_rate_keys_it_would_ignore():
    import pytest
    from pydantic import ValidationError

    for key, value in (("p", 0.3), ("min_edits", 2), ("max_edits", 3), ("rounding", "floor")):
        with pytest.raises(ValidationError, match=key):
            ShuffleAugmenter(**{key: value})
    assert "p" in CharNoiseAugmenter.Config.model_fields
