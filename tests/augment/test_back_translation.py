from __future__ import annotations

import shutil
from pathlib import Path
from typing import ClassVar

import polars as pl
import pytest

from assay import RunContext, from_records
from assay.augment import translate as tr
from assay.augment.back_translation import BackTranslationAugmenter, hops
from assay.errors import RecipeError, StepError
from assay.recipes.runner import run_steps
from assay.recipes.schema import parse_step

needs_apertium = pytest.mark.skipif(shutil.which("apertium") is None, reason="apertium absent")
REPO = Path(__file__).resolve().parents[2]


class ChainTranslator(tr.Translator):
    """Appends the target language, so a round trip names its chain: 'x spa cat eng'.
    Texts containing SAME come back unchanged; FLIP turns into a clearly negative text."""

    backend = "chain"
    calls: ClassVar[list[tuple[str, str, int]]] = []

    def _translate(self, texts, src, tgt):
        ChainTranslator.calls.append((src, tgt, len(texts)))
        out = []
        for t in texts:
            if "SAME" in t:
                out.append(t)
            elif "FLIP" in t:
                out.append("awful terrible boring awful mess")
            else:
                out.append(f"{t} {tgt}")
        return out


@pytest.fixture(autouse=True)
def _fake_backend(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_HOME", str(tmp_path / "home"))
    monkeypatch.setitem(tr.BACKENDS, "chain", ChainTranslator)
    ChainTranslator.calls = []


def corpus():
    texts = ["a fine film", "SAME text here", "a dull film", "kept in dev"]
    return from_records(
        texts,
        ["pos", "pos", "neg", "neg"],
        ids=["f", "s", "d", "v"],
        split=["train", "train", "train", "dev"],
    )


def test_round_trip_through_a_pivot_chain_in_one_batch_per_hop():
    step = BackTranslationAugmenter(backend="chain", model="m", pivots=["spa>cat"])
    out = run_steps(corpus(), [step], RunContext(seed=7))
    added = out.corpus.filter(pl.col("origin").str.starts_with("augment.back_translation")).sort(
        "id"
    )
    assert added["id"].to_list() == ["d~0.bt-spa-cat0", "f~0.bt-spa-cat0"]
    assert added["text"].to_list() == ["a dull film spa cat eng", "a fine film spa cat eng"]
    assert added["back_translation__pivot"].unique().to_list() == ["eng>spa>cat>eng"]
    assert added["back_translation__backend"].unique().to_list() == ["chain"]
    assert added["back_translation__model"].unique().to_list() == ["chain:m"]
    # three hops, each one call over the three selected train rows; dev untouched
    assert ChainTranslator.calls == [("eng", "spa", 3), ("spa", "cat", 3), ("cat", "eng", 3)]
    assert out.reports[0].drop_reasons == {"identical_to_parent": 1}
    assert out.corpus.filter(pl.col("split") == "dev")["id"].to_list() == ["v"]


def test_several_pivots_give_several_outputs_per_row_each_named():
    step = BackTranslationAugmenter(backend="chain", model="m", pivots=["spa", "cat"], n_per_row=2)
    out = run_steps(corpus(), [step], RunContext(seed=7))
    added = out.corpus.filter(pl.col("parent_id") == "f").sort("id")
    assert added["id"].to_list() == ["f~0.bt-cat0", "f~0.bt-spa0"]
    assert added["text"].to_list() == ["a fine film cat eng", "a fine film spa eng"]
    assert added["back_translation__op"].to_list() == ["bt-cat", "bt-spa"]


def test_pivot_choice_follows_the_seed():
    def pivots_of(seed):
        step = BackTranslationAugmenter(
            backend="chain", model="m", pivots=["spa", "cat", "por", "fra"], n_per_row=1
        )
        rows = from_records([f"text {i}" for i in range(40)], ["pos"] * 40, split=["train"] * 40)
        out = run_steps(rows, [step], RunContext(seed=seed))
        return out.corpus.sort("id")["back_translation__op"].to_list()

    assert pivots_of(7) == pivots_of(7)
    assert pivots_of(7) != pivots_of(8)
    assert len(set(pivots_of(7)) - {None}) == 4


def test_protected_terms_must_survive_the_round_trip():
    class Dropper(ChainTranslator):
        def _translate(self, texts, src, tgt):
            return [t.replace("fine", "good") for t in super()._translate(texts, src, tgt)]

    tr.BACKENDS["dropper"] = Dropper
    try:
        step = BackTranslationAugmenter(backend="dropper", model="m", protected=["fine", "film"])
        out = run_steps(corpus(), [step], RunContext(seed=7))
    finally:
        del tr.BACKENDS["dropper"]
    added = out.corpus.filter(pl.col("origin") != "source")
    # "a fine film" came back as "a good film spa eng": it lost "fine" and is not kept.
    # "a dull film" kept "film" (and never had "fine").
    assert added["id"].to_list() == ["d~0.bt-spa0"]
    assert added["text"].to_list() == ["a dull film spa eng"]
    # The lost term is not a rejection with a reason: the output is never proposed. The one
    # rejected row is the unchanged text, refused by the kernel as a copy of its parent.
    dropped = out.dropped.select("id", "parent_id", "step", "reason", "generated")
    assert dropped.rows() == [
        ("s~0.bt-spa-rejected0", "s", "back_translation", "identical_to_parent", True)
    ]
    report = out.reports[0]
    assert (report.n_added, report.n_rejected, report.n_dropped) == (1, 1, 0)
    assert report.summary["n_selected"] == 3 and report.summary["translations"] == 6


def test_guard_drops_outputs_whose_label_no_longer_holds():
    pos = [f"a wonderful great film number {i}" for i in range(12)]
    neg = [f"an awful terrible boring mess number {i}" for i in range(12)]
    texts = [*pos, "FLIP wonderful great film", *neg]
    labels = ["pos"] * 13 + ["neg"] * 12
    ids = [f"p{i}" for i in range(12)] + ["planted"] + [f"n{i}" for i in range(12)]
    rows = from_records(texts, labels, ids=ids, split=["train"] * 25)
    step = BackTranslationAugmenter(backend="chain", model="m", guard={"min_confidence": 0.5})
    out = run_steps(rows, [step], RunContext(seed=7))
    added = out.corpus.filter(pl.col("origin").str.starts_with("augment.back_translation"))
    assert "planted" not in added["parent_id"].to_list()
    assert added.height == 24
    assert out.reports[0].drop_reasons == {"guard_label": 1}


def test_bad_configuration_is_one_clear_error():
    with pytest.raises(RecipeError, match="unknown backend 'deepl'"):
        parse_step({"back_translation": {"backend": "deepl"}}, "steps[0]")
    with pytest.raises(RecipeError, match="needs a model"):
        parse_step({"back_translation": {"backend": "hf"}}, "steps[0]")
    with pytest.raises(RecipeError, match="must be a language"):
        parse_step({"back_translation": {"pivots": ["spa>"]}}, "steps[0]")
    spec = parse_step(
        {"back_translation": {"backend": "hf", "models": {"eng-spa": "a", "spa-eng": "b"}}},
        "steps[0]",
    )
    assert spec.config.models == {"eng-spa": "a", "spa-eng": "b"}


def test_hop_pairs_of_a_chain():
    assert hops("eng", "spa>cat") == [("eng", "spa"), ("spa", "cat"), ("cat", "eng")]


def test_step_is_in_the_catalog_and_the_readme():
    from assay.recipes.catalog import BUILTIN_STEP_MODULES

    assert "assay.augment.back_translation" in BUILTIN_STEP_MODULES
    assert "| `back_translation` | augmenter |" in (REPO / "README.md").read_text()


def test_eval_rows_cannot_be_augmented_into():
    step = BackTranslationAugmenter(backend="chain", model="m", splits=["dev"])
    with pytest.raises(StepError):
        run_steps(corpus(), [step], RunContext(seed=7))


@pytest.mark.slow
@needs_apertium
def test_apertium_back_translation_is_deterministic_and_differs_from_parents():
    texts = [
        "The film is good.",
        "It was a bad movie.",
        "I love this great story.",
        "The actors are wonderful but the plot is thin.",
    ]
    rows = from_records(texts, ["pos", "neg", "pos", "neg"], split=["train"] * 4)

    def run(seed):
        step = BackTranslationAugmenter(pivots=["spa", "cat"], n_per_row=2)
        return run_steps(rows, [step], RunContext(seed=seed)).corpus

    first, second = run(7), run(7)
    assert first.equals(second)
    added = first.filter(pl.col("origin").str.starts_with("augment.back_translation"))
    assert added.height >= 5  # of 8: outputs equal to the parent or each other go
    assert set(added["back_translation__pivot"]) == {"eng>spa>eng", "eng>cat>eng"}
    assert set(added["back_translation__model"]) == {"apertium"}
    parents = dict(zip(rows["id"], rows["text"], strict=True))
    assert all(parents[p] != t for p, t in zip(added["parent_id"], added["text"], strict=True))
    assert "The film is well." in added["text"].to_list()
