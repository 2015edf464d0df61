from __future__ import annotations

import json

import polars as pl
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from assay import RunContext, from_records, registry
from assay.augment.term_mining import chosen_terms
from assay.errors import RecipeError
from assay.recipes.catalog import load_steps
from assay.recipes.runner import run_recipe
from assay.recipes.schema import parse_step
from assay.step import Augmenter, check_accounting, check_eval_protected

AUGMENTERS = ["eda", "synonyms", "shuffle", "char_noise", "domain_vocab"]


def test_augment_steps_are_registered_with_summaries_and_documented_fields():
    load_steps()
    for name in AUGMENTERS:
        cls = registry.get(name)
        assert registry.summary(cls), name
        for field, info in cls.Config.model_fields.items():
            assert info.description, f"{name}.{field} has no description"


# A config under which each registered augmenter generates rows from the texts below; an
# augmenter missing here is tried with {n_per_row: 3} and fails if it generates nothing.
GENERATING: dict[str, dict] = {
    "eda": {"n_per_row": 3, "pos": False},
    "synonyms": {"n_per_row": 3, "pos": False, "p": 0.5},
    "domain_vocab": {"n_per_row": 3, "lexicon": "{lexicon}"},
}


# Augmenters that load a language model or a translator: seconds to a minute each.
MODEL_AUGMENTERS = {"generate", "translate_train"}


def registered_augmenters() -> list[str]:
    load_steps()
    return [n for n in registry.names() if issubclass(registry.get(n), Augmenter)]


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.slow) if n in MODEL_AUGMENTERS else n
        for n in registered_augmenters()
    ],
)
def test_every_augmenter_is_deterministic_and_leaves_originals_and_eval_alone(name, tmp_path):
    texts = [
        "the remarkable cast carries an otherwise ordinary thriller . Then it ends.",
        "a slow , muddled plot that never quite comes together . Sad.",
        "funny , warm and smart about its characters",
        "dev sentence that must stay exactly as it is .",
        "test sentence that must stay exactly as it is .",
    ]
    lexicon = tmp_path / "lexicon.yaml"
    lexicon.write_text("thriller: [suspense film]\nplot: [storyline]\ncharacters: [roles]\n")
    params = {
        k: (str(lexicon) if v == "{lexicon}" else v)
        for k, v in GENERATING.get(name, {"n_per_row": 3}).items()
    }
    corpus = from_records(texts, ["p", "n", "p", "n", "p"], split=["train"] * 3 + ["dev", "test"])
    step = registry.get(name)(**params)
    ctx = RunContext(seed=11).for_step(2, name)
    first, second = step.apply(corpus, ctx), step.apply(corpus, ctx)
    assert first.corpus.equals(second.corpus)
    check_accounting(corpus, first)
    check_eval_protected(corpus, first, step, protect=True)
    originals = first.corpus.filter(pl.col("origin") == "source").select(corpus.columns)
    assert originals.equals(corpus)
    new = first.corpus.filter(pl.col("origin") != "source")
    assert new.height > 0 and set(new["split"]) == {"train"}


def test_the_determinism_test_covers_every_registered_augmenter():
    assert set(registered_augmenters()) >= {"eda", "synonyms", "shuffle", "char_noise"}
    assert set(GENERATING) <= set(registered_augmenters())


def test_recipe_rejects_a_misspelled_guard_key_with_its_path():
    with pytest.raises(RecipeError, match=r"steps\[0\]\.eda\.guard"):
        parse_step({"eda": {"guard": {"min_confidance": 0.6}}}, "steps[0]")


def test_recipe_runs_augmenters_with_guard_and_hands_domain_terms_to_training(
    tmp_path, general_english, plant
):
    texts = plant(general_english(120, seed=4), ["troponin", "angioplasty"], 20)
    rows = ["text,label"]
    for i, text in enumerate(texts):
        rows.append(f"{text},{'positive' if i % 2 else 'negative'}")
    data = tmp_path / "data.csv"
    data.write_text("\n".join(rows) + "\n")
    recipe = {
        "name": "aug",
        "seed": 3,
        "input": {"source": str(data), "labels": ["negative", "positive"]},
        "steps": [
            {"split": {"dev": 0.2, "test": 0.2}},
            {"domain_terms": {"tokenizer": "none"}},
            {"eda": {"p": 0.2, "n_per_row": 2, "guard": {"min_confidence": 0.5}}},
        ],
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    result = run_recipe(path, tmp_path / "run")
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    reports = {s["step"]: s for s in manifest["steps"]}
    assert reports["eda"]["n_added"] > 0
    assert "guard" in reports["eda"]["summary"]
    assert set(chosen_terms(tmp_path / "run")) == {"troponin", "angioplasty"}
    written = (tmp_path / "run" / "work" / "domain_terms" / "domain_terms.txt").read_text()
    assert set(written.split()) == {"troponin", "angioplasty"}
    corpus = pl.read_parquet(tmp_path / "run" / "corpus.parquet")
    new = corpus.filter(pl.col("origin") == "augment.eda")
    assert set(new["split"]) == {"train"}
    # a cached rerun still hands over the terms (from the manifest)
    rerun = run_recipe(path, tmp_path / "rerun")
    assert "domain_terms" in rerun.manifest["cached_steps"]
    assert set(chosen_terms(tmp_path / "rerun")) == {"troponin", "angioplasty"}
    assert result.manifest["accounting"]["balanced"]


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.text(min_size=1, max_size=60).filter(lambda t: t.strip()), min_size=1, max_size=4),
    st.integers(0, 99),
)
def test_augmenters_take_any_text_and_keep_the_books(texts, seed):
    load_steps()
    steps = [registry.get(n)(n_per_row=2) for n in ("eda", "shuffle", "char_noise")]
    steps.append(registry.get("shuffle")(unit="sentence"))
    steps.append(registry.get("char_noise")(actions=["ocr", "swap", "delete", "insert"], p=1.0))
    corpus = from_records(texts, ["x"] * len(texts), split="train")
    for step in steps:
        result = step.apply(corpus, RunContext(seed=seed).for_step(0, step.name))
        check_accounting(corpus, result)
        assert result.corpus["id"].is_unique().all()


@pytest.mark.parametrize(
    "stack", [["synonyms", "eda"], ["eda", "eda"], ["shuffle", "shuffle", "char_noise"]]
)
def test_stacked_augmenters_name_their_rows_apart(tmp_path, stack):
    data = tmp_path / "data.csv"
    rows = ["text,label"] + [
        f"the quick film number {k} was a good and happy one,{'pos' if k % 2 else 'neg'}"
        for k in range(12)
    ]
    data.write_text("\n".join(rows) + "\n")
    params = {"eda": {"n_per_row": 2, "pos": False}, "synonyms": {"pos": False, "p": 0.3}}
    recipe = {
        "name": "stacked",
        "input": {"source": str(data)},
        "steps": [{"split": {"dev": 0.2, "test": 0.2}}]
        + [{name: params.get(name, {"n_per_row": 2})} for name in stack],
        "output": {"report": False},
    }
    result = run_recipe(recipe_file(tmp_path, recipe), tmp_path / "run")
    corpus = result.pipeline.corpus
    assert corpus["id"].is_unique().all()
    for index, name in enumerate(stack, start=1):
        report = result.manifest["steps"][index]
        assert report["n_added"] > 0, name
        added = corpus.filter(pl.col("origin") == f"augment.{name}")
        mine = added.filter(pl.col("id").str.contains(f"~{index}.", literal=True))
        assert mine.height == report["n_added"], name
    assert result.manifest["accounting"]["balanced"]


def recipe_file(tmp_path, recipe):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path
