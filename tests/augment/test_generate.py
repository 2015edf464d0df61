from __future__ import annotations

import itertools
import re
from collections.abc import Callable

import polars as pl
import pytest
from pydantic import ValidationError

from assay import RunContext, from_records
from assay.augment import lm
from assay.augment.generate import GenerateAugmenter
from assay.errors import RecipeError, StepError
from assay.recipes.runner import run_steps
from assay.recipes.schema import parse_step

TEST_ROW = "the ending of this thriller lands with a quiet and devastating punch"


def corpus() -> pl.DataFrame:
    texts = [
        "a warm and funny film about a family",
        "an honest moving story told with care",
        "the plot is dull and the acting is flat",
        "i could not wait for this bore to end",
        "a small gem with a big heart",
        TEST_ROW,
        "a tedious mess from start to finish",
    ]
    return from_records(
        texts,
        ["pos", "pos", "neg", "neg", "pos", "pos", "neg"],
        ids=["w", "h", "d", "b", "g", "t", "v"],
        split=["train", "train", "train", "train", "train", "test", "dev"],
    )


class FakeLM:
    """Answers each prompt through `answer(prompt, k)` (k: which of its sequences)."""

    def __init__(self, answer: Callable[[str, int], str]) -> None:
        self.answer = answer
        self.stats = lm.GenerationStats()
        self.calls: list[dict] = []
        self.name = "fake"

    def generate(self, prompts, *, num_return_sequences=1, advance=None, **kw):
        self.calls.append({"prompts": list(prompts), "n": num_return_sequences, **kw})
        self.stats.prompts += len(prompts)
        self.stats.tokens += 5 * len(prompts) * num_return_sequences
        self.stats.seconds += 0.5
        if advance is not None:
            advance(len(prompts))
        return [[self.answer(p, k) for k in range(num_return_sequences)] for p in prompts]


def sentence_of(prompt: str) -> str:
    return prompt.rsplit("Sentence: ", 1)[-1]


def reversed_words(prompt: str) -> str:
    """A distinct output per row that shares no word bigram with its parent."""
    return " ".join(sentence_of(prompt).split()[::-1])


@pytest.fixture
def fake(monkeypatch):
    def install(answer: Callable[[str, int], str]) -> FakeLM:
        model = FakeLM(answer)
        monkeypatch.setattr(lm, "causal_lm", lambda name, device="auto": model)
        return model

    return install


def by_parent(frame: pl.DataFrame) -> dict[str, str]:
    return dict(zip(frame["parent_id"].to_list(), frame["text"].to_list(), strict=True))


def test_paraphrases_carry_label_lineage_and_origin(fake):
    fake(lambda p, k: f"Sure! Here is a paraphrase: {reversed_words(p)}")
    out = run_steps(corpus(), [GenerateAugmenter()], RunContext(seed=7))
    added = out.corpus.filter(pl.col("origin") != "source").sort("id")
    assert added["parent_id"].to_list() == ["b", "d", "g", "h", "w"]
    assert added["id"].to_list() == [f"{p}~0.para0" for p in ["b", "d", "g", "h", "w"]]
    assert added["label"].to_list() == ["neg", "neg", "pos", "pos", "pos"]
    assert added["split"].unique().to_list() == ["train"]
    assert added.filter(pl.col("parent_id") == "g")["text"].item() == (
        "heart big a with gem small a"
    )
    assert added["origin"].unique().to_list() == ["augment.generate:paraphrase:hf:smollm2"]
    assert added["generate__model"].unique().to_list() == ["smollm2"]
    assert added["generate__backend"].unique().to_list() == ["hf"]
    summary = out.reports[0].summary
    assert summary["prompts"] == 5 and summary["generated"] == 5 and summary["usable"] == 5
    assert summary["tokens"] == 25 and summary["tokens_per_s"] == 50.0


def test_dev_and_test_rows_are_never_paraphrased(fake):
    model = fake(lambda p, k: f"new {sentence_of(p)} again")
    run_steps(corpus(), [GenerateAugmenter()], RunContext(seed=7))
    asked = {sentence_of(p) for p in model.calls[0]["prompts"]}
    assert TEST_ROW not in asked
    assert "a tedious mess from start to finish" not in asked


def test_a_near_copy_of_a_test_row_is_dropped_as_leaks_eval(fake):
    # The model answers the "warm" row with a near-copy of the test row.
    def answer(prompt, k):
        if "warm" in prompt:
            return "The ending of this thriller lands with a quiet, devastating punch!"
        return reversed_words(prompt)

    fake(answer)
    out = run_steps(corpus(), [GenerateAugmenter()], RunContext(seed=7))
    dropped = out.dropped.filter(pl.col("generated"))
    assert dropped["parent_id"].to_list() == ["w"]
    assert dropped["reason"].to_list() == ["leaks_eval"]
    assert dropped["id"].to_list() == ["w~0.para-filtered0"]
    assert out.reports[0].drop_reasons == {"leaks_eval": 1}
    assert out.reports[0].summary["filters"]["dropped"] == {"leaks_eval": 1}


def test_an_exact_normalised_copy_of_a_dev_row_leaks_too(fake):
    fake(lambda p, k: "A TEDIOUS mess, from start to finish." if "bore" in p else reversed_words(p))
    out = run_steps(corpus(), [GenerateAugmenter()], RunContext(seed=7))
    dropped = out.dropped.filter(pl.col("generated"))
    assert dict(zip(dropped["parent_id"], dropped["reason"], strict=True)) == {"b": "leaks_eval"}


def test_a_near_copy_of_a_train_row_is_a_near_duplicate(fake):
    # "dull" row answered with a near-copy of the "bore" train row (not its parent).
    fake(
        lambda p, k: (
            "i could not wait for this bore to end !!" if "dull" in p else reversed_words(p)
        )
    )
    out = run_steps(corpus(), [GenerateAugmenter()], RunContext(seed=7))
    dropped = out.dropped.filter(pl.col("generated"))
    assert dict(zip(dropped["parent_id"], dropped["reason"], strict=True)) == {
        "d": "near_duplicate"
    }


def test_near_duplicates_among_outputs_collapse_to_the_first(fake):
    # Every row gets the same idea with small variations: one survives.
    fake(lambda p, k: "this movie is a real delight for the whole family" + "!" * k)
    step = GenerateAugmenter(n_per_row=2)
    out = run_steps(corpus(), [step], RunContext(seed=7))
    added = out.corpus.filter(pl.col("origin") != "source")
    assert added["id"].to_list() == ["w~0.para0"]
    dropped = out.dropped.filter(pl.col("generated"))
    assert dropped.height == 9
    assert set(dropped["reason"]) == {"near_duplicate"}


def test_unusable_outputs_are_rejected_with_their_reason(fake):
    fake(lambda p, k: "Sure! Here is a paraphrase:" if "gem" in p else reversed_words(p))
    out = run_steps(corpus(), [GenerateAugmenter()], RunContext(seed=7))
    dropped = out.dropped.filter(pl.col("generated"))
    assert dict(zip(dropped["parent_id"], dropped["reason"], strict=True)) == {
        "g": "unusable_output"
    }
    assert out.reports[0].summary["usable"] == 4


def test_an_output_that_lost_a_protected_term_is_rejected(fake):
    fake(lambda p, k: "a lovely picture about kin" if "family" in p else reversed_words(p))
    out = run_steps(corpus(), [GenerateAugmenter(protected=["family"])], RunContext(seed=7))
    dropped = out.dropped.filter(pl.col("generated"))
    assert dict(zip(dropped["parent_id"], dropped["reason"], strict=True)) == {
        "w": "lost_protected_term"
    }


def test_the_label_guard_runs_on_generated_rows(fake):
    # The "funny" row comes back strongly negative: the guard must drop it.
    fake(lambda p, k: "dull flat tedious bore mess" if "funny" in p else reversed_words(p))
    step = GenerateAugmenter(guard={"min_confidence": 0.5})
    out = run_steps(corpus(), [step], RunContext(seed=7))
    dropped = out.dropped.filter(pl.col("generated"))
    assert dict(zip(dropped["parent_id"], dropped["reason"], strict=True)) == {"w": "guard_label"}
    assert "generate__guard_score" in out.corpus.columns


def test_max_added_caps_the_rows_kept(fake):
    fake(lambda p, k: " ".join(f"{w}{k}" for w in reversed_words(p).split()))
    out = run_steps(corpus(), [GenerateAugmenter(n_per_row=3, max_added=4)], RunContext(seed=7))
    assert out.reports[0].n_added == 4
    assert out.reports[0].drop_reasons == {"over_budget": 11}


def test_fewshot_sets_the_label_and_the_first_shot_is_the_parent(fake):
    first_shot = re.compile(r"^1\. (.*)$", re.MULTILINE)
    model = fake(lambda p, k: "1. " + " ".join(first_shot.search(p)[1].split()[::-1]))
    step = GenerateAugmenter(mode="fewshot", shots=2, labels=["neg"], n_per_row=1)
    out = run_steps(corpus(), [step], RunContext(seed=7))
    added = out.corpus.filter(pl.col("origin") != "source").sort("parent_id")
    assert added["parent_id"].to_list() == ["b", "d"]
    assert added["label"].to_list() == ["neg", "neg"]
    assert added["id"].to_list() == ["b~0.fewshot0", "d~0.fewshot0"]
    prompts = model.calls[0]["prompts"]
    assert "labelled neg" in prompts[0]
    assert "1. the plot is dull and the acting is flat\n2. i could not wait" in prompts[0]
    assert "1. i could not wait for this bore to end\n2. the plot is dull" in prompts[1]


def test_per_label_counts_prompts_per_label(fake):
    model = fake(lambda p, k: f"fresh sentence {len(model.calls[0]['prompts'])} {p[-9:]}")
    step = GenerateAugmenter(per_label={"neg": 5})
    out = run_steps(corpus(), [step], RunContext(seed=7))
    prompts = model.calls[0]["prompts"]
    assert len(prompts) == 5 and model.calls[0]["n"] == 1
    parents = [sentence_of(p) for p in prompts]
    assert set(parents) == {
        "the plot is dull and the acting is flat",
        "i could not wait for this bore to end",
    }
    assert out.reports[0].summary["prompts"] == 5


def test_per_label_for_an_absent_label_is_one_clear_error(fake):
    fake(lambda p, k: "x")
    with pytest.raises(StepError, match="no selected row has that label"):
        run_steps(corpus(), [GenerateAugmenter(per_label={"meh": 2})], RunContext(seed=7))


def test_same_seed_same_rows_and_the_sampling_seed_follows_the_recipe(fake):
    model = fake(lambda p, k: f"some words {len(p)} {k} here")
    step = GenerateAugmenter(mode="fewshot", n_per_row=2)
    a = run_steps(corpus(), [step], RunContext(seed=7)).corpus
    b = run_steps(corpus(), [step], RunContext(seed=7)).corpus
    run_steps(corpus(), [step], RunContext(seed=8))
    assert a.equals(b)
    seeds = [c["seed"] for c in model.calls]
    assert seeds[0] == seeds[1] != seeds[2]
    assert model.calls[0]["prompts"] == model.calls[1]["prompts"]
    assert model.calls[0]["prompts"] != model.calls[2]["prompts"]  # other shots drawn


def test_bad_configuration_is_one_clear_error():
    with pytest.raises(RecipeError, match="temprature"):
        parse_step({"generate": {"temprature": 0.5}}, "steps[0]")
    with pytest.raises(ValidationError, match=r"must contain \{text\}"):
        GenerateAugmenter.Config(prompt="Rewrite this.")
    with pytest.raises(ValidationError, match=r"must contain \{examples\}"):
        GenerateAugmenter.Config(mode="fewshot", prompt="Rewrite {text}.")
    with pytest.raises(ValidationError, match="per_label"):
        GenerateAugmenter.Config(per_label={"pos": 0})
    with pytest.raises(ValidationError, match="greedily"):
        GenerateAugmenter.Config(temperature=0, n_per_row=2)


def test_balance_augment_to_asks_generate_for_the_rows_a_class_lacks(fake):
    from assay.curate.balance import BalanceEdit

    counter = itertools.count()

    def answer(prompt, k):
        n = next(counter)
        return f"novel{n} take{n} on{n} it{n}"

    model = fake(answer)
    texts = [f"good film number {i} with charm" for i in range(6)] + [
        "bad film with no charm",
        "a bad and boring film",
    ]
    frame = from_records(texts, ["pos"] * 6 + ["neg"] * 2, split=["train"] * 8)
    step = BalanceEdit(strategy="augment_to", augmenter="generate")
    out = run_steps(frame, [step], RunContext(seed=7))
    labels = out.corpus["label"].value_counts().sort("label")
    assert dict(zip(labels["label"], labels["count"], strict=True)) == {"neg": 6, "pos": 6}
    # Asked for the 4 missing rows plus a quarter, not n_per_row outputs for every row.
    assert [len(c["prompts"]) for c in model.calls] == [5]
    added = out.corpus.filter(pl.col("origin") != "source")
    assert added["parent_id"].is_in(out.corpus.filter(pl.col("label") == "neg")["id"]).all()


# -- with a real (tiny, randomly initialised) model -------------------------------------------


def test_a_real_model_adds_rows_with_lineage(tmp_path):
    from assay.testing import tiny_llama

    path = tiny_llama(tmp_path / "tiny")
    step = GenerateAugmenter(model=str(path), device="cpu", max_new_tokens=6, temperature=1.0)
    out = run_steps(corpus(), [step], RunContext(seed=7))
    report = out.reports[0]
    assert report.summary["prompts"] == 5 and report.summary["tokens"] > 0
    assert report.summary["model"] == "tiny"
    added = out.corpus.filter(pl.col("origin") != "source")
    assert report.n_added + report.n_rejected == 5
    assert added["parent_id"].is_in(["w", "h", "d", "b", "g"]).all()
    assert (added["origin"] == "augment.generate:paraphrase:hf:tiny").all()
    again = run_steps(corpus(), [step], RunContext(seed=7))
    assert again.corpus.equals(out.corpus)


@pytest.mark.slow
@pytest.mark.integration
def test_smollm2_paraphrases_four_rows():
    from assay.errors import ResourceError

    try:
        lm.causal_lm("smollm2", device="cpu")
    except ResourceError as exc:
        pytest.skip(str(exc))
    frame = corpus().filter(pl.col("id").is_in(["w", "h", "d", "b", "t"]))
    # Two samples per row: a 135M model often comments on the sentence instead of
    # rewriting it (the cleaner drops those), and which samples do depends on the machine's
    # float arithmetic, so the test asks for one usable paraphrase among eight.
    step = GenerateAugmenter(max_new_tokens=24, batch_size=4, n_per_row=2)
    out = run_steps(frame, [step], RunContext(seed=7))
    report = out.reports[0]
    assert report.summary["prompts"] == 4
    assert report.n_added + report.n_rejected == 8
    assert report.n_added >= 1
    assert report.summary["tokens_per_s"] > 0
    added = out.corpus.filter(pl.col("origin") != "source")
    assert all(len(t.split()) >= 3 for t in added["text"])
