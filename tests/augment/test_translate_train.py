from __future__ import annotations

from typing import ClassVar

import numpy as np
import polars as pl
import pytest

from assay import RunContext, from_records, resources
from assay.augment import translate as tr
from assay.augment.translate_train import TranslateTrainAugmenter, corpus_lang
from assay.errors import RecipeError, StepError
from assay.recipes.runner import run_steps
from assay.recipes.schema import parse_step

UNRELATED = "the central bank raised interest rates again this quarter"


class EchoTranslator(tr.Translator):
    """'Translates' by keeping the words and appending the target code (so the round trip
    stays close to the source under the encoder); a text with PLANT comes back as an
    unrelated sentence."""

    backend = "echo"
    calls: ClassVar[list[tuple[str, str, int]]] = []

    def _translate(self, texts, src, tgt):
        EchoTranslator.calls.append((src, tgt, len(texts)))
        out = []
        for t in texts:
            if "PLANT" in t:
                out.append(UNRELATED)
            elif tgt == "eng":
                out.append(t.rsplit(" ", 1)[0])  # drop the language tag: a faithful round trip
            else:
                out.append(f"{t} {tgt}")
        return out


class BagOfWordsEncoder:
    """A stand-in for the sentence encoder: hashed word counts (shared words, high cosine)."""

    def encode(self, texts):
        out = np.zeros((len(texts), 256), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i, sum(map(ord, word)) % 256] += 1.0
        return out


@pytest.fixture(autouse=True)
def _fake_backend(request, tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_HOME", str(tmp_path / "home"))
    if "slow" not in request.keywords:
        encoder = BagOfWordsEncoder()
        monkeypatch.setattr(resources, "multilingual_encoder", lambda: encoder)
    monkeypatch.setitem(tr.BACKENDS, "echo", EchoTranslator)
    EchoTranslator.calls = []


def corpus():
    texts = [
        "a warm and funny film about two brothers",
        "the acting is wooden and the plot is dull",
        "PLANT a moving story told with great care",
        "a clever thriller that keeps you guessing",
        "slow, muddled and far too long",
    ]
    return from_records(
        texts,
        ["pos", "neg", "pos", "pos", "neg"],
        ids=["w", "d", "p", "c", "s"],
        split=["train", "train", "train", "dev", "test"],
    )


def step(**kw):
    return TranslateTrainAugmenter(backend="echo", model="m", **kw)


def test_planted_bad_translation_is_dropped_as_round_trip():
    out = run_steps(corpus(), [step(languages=["spa"])], RunContext(seed=7))
    added = out.corpus.filter(pl.col("origin").str.starts_with("augment.translate_train")).sort(
        "id"
    )
    assert added["id"].to_list() == ["d~0.translate-es0", "w~0.translate-es0"]
    dropped = out.dropped.filter(pl.col("generated"))
    assert dropped["parent_id"].to_list() == ["p"]
    assert dropped["reason"].to_list() == ["round_trip"]
    assert dropped["id"].to_list() == ["p~0.translate-es-roundtrip0"]
    assert (
        dropped["translate_train__similarity"][0] < 0.5 < added["translate_train__similarity"].min()
    )
    assert out.reports[0].drop_reasons == {"round_trip": 1}
    # one call per direction over the three train rows; dev/test untouched
    assert EchoTranslator.calls == [("eng", "spa", 3), ("spa", "eng", 3)]
    assert out.corpus.filter(pl.col("split") != "train")["id"].sort().to_list() == ["c", "s"]


def test_new_rows_carry_lang_parent_label_and_translator():
    out = run_steps(corpus(), [step(languages=["spa", "cat"])], RunContext(seed=7))
    added = out.corpus.filter(pl.col("origin").str.starts_with("augment.translate_train")).sort(
        "id"
    )
    assert added["id"].to_list() == [
        "d~0.translate-ca0",
        "d~0.translate-es0",
        "w~0.translate-ca0",
        "w~0.translate-es0",
    ]
    assert added["lang"].to_list() == ["ca", "es", "ca", "es"]
    assert added["parent_id"].to_list() == ["d", "d", "w", "w"]
    assert added["label"].to_list() == ["neg", "neg", "pos", "pos"]
    assert added["split"].unique().to_list() == ["train"]
    assert added["text"][1] == "the acting is wooden and the plot is dull spa"
    assert added["translate_train__round_trip"][1] == "the acting is wooden and the plot is dull"
    assert added["translate_train__backend"].unique().to_list() == ["echo"]
    assert added["translate_train__model"].unique().to_list() == ["echo:m"]
    assert added["translate_train__role"].unique().to_list() == ["translate_train"]
    summary = out.reports[0].summary
    assert summary["translations"] == 12  # 3 rows x 2 languages x 2 directions
    assert summary["sentences_per_s"] > 0


def test_n_per_row_spreads_train_rows_over_languages_but_eval_copies_get_all():
    s = step(languages=["spa", "cat"], n_per_row=1, translate_test=True)
    out = run_steps(corpus(), [s], RunContext(seed=7))
    added = out.corpus.filter(pl.col("origin").str.starts_with("augment.translate_train"))
    trained = added.filter(pl.col("translate_train__role") == "translate_train")
    assert trained.group_by("parent_id").len()["len"].to_list() == [1, 1]
    copies = added.filter(pl.col("translate_train__role") == "translate_test")
    assert sorted(copies["lang"].to_list()) == ["ca", "ca", "es", "es"]
    again = run_steps(corpus(), [s], RunContext(seed=7)).corpus
    assert again.equals(out.corpus)


def test_same_seed_same_output():
    first = run_steps(corpus(), [step()], RunContext(seed=7)).corpus
    second = run_steps(corpus(), [step()], RunContext(seed=7)).corpus
    assert first.equals(second)


def test_translate_test_copies_are_new_eval_rows_only_in_dev_and_test():
    before = corpus()
    out = run_steps(before, [step(languages=["spa"], translate_test=True)], RunContext(seed=7))
    added = out.corpus.filter(pl.col("origin").str.starts_with("augment.translate_train"))
    copies = added.filter(pl.col("translate_train__role") == "translate_test").sort("id")
    assert copies["id"].to_list() == ["c~0.translate_test-es0", "s~0.translate_test-es0"]
    assert set(copies["origin"]) == {"augment.translate_train:translate_test"}
    assert copies["split"].to_list() == ["dev", "test"]
    assert copies["lang"].to_list() == ["es", "es"]
    assert copies["label"].to_list() == ["pos", "neg"]
    trained = added.filter(pl.col("translate_train__role") == "translate_train")
    assert trained["split"].unique().to_list() == ["train"]
    # existing dev/test rows are unchanged
    old_eval = before.filter(pl.col("split") != "train").select("id", "text", "label", "split")
    kept = out.corpus.join(old_eval.select("id"), on="id", how="semi")
    assert kept.select(old_eval.columns).sort("id").equals(old_eval.sort("id"))


def test_without_translate_test_the_runner_still_protects_dev_and_test():
    s = step(languages=["spa"], splits=["train", "test"])
    assert s.touches_eval is False
    with pytest.raises(StepError, match="added 1 rows to dev/test"):
        run_steps(corpus(), [s], RunContext(seed=7))


def test_translate_test_alone_adds_only_eval_rows():
    s = step(languages=["spa"], splits=[], translate_test=True)
    out = run_steps(corpus(), [s], RunContext(seed=7))
    added = out.corpus.filter(pl.col("origin").str.starts_with("augment.translate_train"))
    assert sorted(added["split"].to_list()) == ["dev", "test"]


def test_corpus_lang_maps_backend_codes_to_iso_639_1():
    assert corpus_lang("spa") == "es"
    assert corpus_lang("cat") == "ca"
    assert corpus_lang("spa_Latn") == "es"
    assert corpus_lang("cat", {"cat": "ca-valencia"}) == "ca-valencia"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"languages": ["spa", "spa"]}, "must not repeat"),
        ({"languages": ["eng"]}, "source language"),
        ({"threshold": 2}, "less than or equal to 1"),
        ({"backend": "hf"}, "needs a model"),
        ({"translate_test": True, "splits": ["train", "dev"]}, "overlap"),
        ({"n_per_row": 0}, "greater than or equal to 1"),
    ],
)
def test_bad_configuration_is_one_clear_error(params, message):
    with pytest.raises(RecipeError, match=message):
        parse_step({"translate_train": params}, "steps[0]")


@pytest.mark.slow
def test_real_apertium_translates_to_spanish_and_catalan():
    texts = [
        "the film is a delight from start to finish",
        "a tedious and joyless movie",
        "the actors are wonderful",
    ]
    frame = from_records(texts, ["pos", "neg", "pos"], ids=["a", "b", "c"], split=["train"] * 3)
    out = run_steps(frame, [TranslateTrainAugmenter(threshold=0.5)], RunContext(seed=1))
    added = out.corpus.filter(pl.col("origin").str.starts_with("augment.translate_train")).sort(
        "id"
    )
    assert set(added["lang"].to_list()) == {"es", "ca"}
    by_id = dict(zip(added["id"].to_list(), added["text"].to_list(), strict=True))
    assert "película" in by_id["a~0.translate-es0"]
    assert "pel·lícula" in by_id["b~0.translate-ca0"]
    assert added["translate_train__model"].unique().to_list() == ["apertium"]
    assert added["translate_train__similarity"].min() >= 0.5
    assert out.reports[0].summary["translations"] == 12


@pytest.mark.slow
def test_real_encoder_drops_the_planted_translation_at_the_default_threshold():
    out = run_steps(corpus(), [step(languages=["spa"])], RunContext(seed=7))
    dropped = out.dropped.filter(pl.col("generated"))
    assert dropped["parent_id"].to_list() == ["p"]
    assert dropped["reason"].to_list() == ["round_trip"]
    added = out.corpus.filter(pl.col("origin").str.starts_with("augment.translate_train"))
    assert sorted(added["parent_id"].to_list()) == ["d", "w"]
