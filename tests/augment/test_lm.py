from __future__ import annotations

from pathlib import Path

import pytest

from assay.augment import lm
from assay.errors import InputError, ResourceError
from assay.testing import tiny_llama

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> lm.CausalLM:
    path = tiny_llama(tmp_path_factory.mktemp("tiny-lm"))
    return lm.causal_lm(str(path), device="cpu")


PROMPTS = [
    "a warm film",
    "the plot is dull and the acting is flat and i could not wait",
    "honest story",
    "sure",
    "rewrite it with other words about a family",
]


def test_batched_left_padding_gives_the_same_greedy_output_as_one_by_one(tiny):
    batched = tiny.generate(PROMPTS, max_new_tokens=8, temperature=0, batch_size=5)
    alone = [tiny.generate([p], max_new_tokens=8, temperature=0, batch_size=1)[0] for p in PROMPTS]
    assert batched == alone
    assert tiny.tokenizer.padding_side == "left"
    assert any(out[0] for out in batched)  # something was generated


def test_same_seed_same_samples_and_another_seed_differs(tiny):
    kw = {"max_new_tokens": 10, "temperature": 1.0, "top_p": 1.0, "batch_size": 2}
    a = tiny.generate(PROMPTS, seed=3, num_return_sequences=2, **kw)
    b = tiny.generate(PROMPTS, seed=3, num_return_sequences=2, **kw)
    c = tiny.generate(PROMPTS, seed=4, num_return_sequences=2, **kw)
    assert a == b
    assert a != c
    assert [len(x) for x in a] == [2] * len(PROMPTS)


def test_sampling_leaves_the_global_torch_random_state_alone(tiny):
    import torch

    before = torch.random.get_rng_state()
    tiny.generate(PROMPTS[:2], max_new_tokens=4, temperature=1.0, seed=1)
    assert torch.equal(before, torch.random.get_rng_state())


def test_tokens_and_time_are_counted(tiny):
    model = lm.CausalLM(tiny.name, tiny.tokenizer, tiny.model)
    model.generate(PROMPTS[:3], max_new_tokens=6, temperature=0, batch_size=2)
    stats = model.stats.to_dict()
    assert stats["prompts"] == 3 and stats["sequences"] == 3
    assert 0 < stats["tokens"] <= 3 * 6
    assert stats["tokens_per_s"] > 0


def test_progress_advances_per_batch(tiny):
    seen: list[int] = []
    tiny.generate(PROMPTS, max_new_tokens=2, temperature=0, batch_size=2, advance=seen.append)
    assert seen == [2, 2, 1]


def test_chat_template_is_applied_when_the_tokenizer_has_one(tmp_path):
    template = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }} {% endfor %}[bot]"
    model = lm.causal_lm(str(tiny_llama(tmp_path / "chat", chat_template=template)), device="cpu")
    assert model.format("a warm film", system="be brief") == (
        "[system] be brief [user] a warm film [bot]"
    )
    assert model.generate(["a warm film"], max_new_tokens=3, temperature=0)[0][0] is not None


def test_the_model_is_loaded_once_per_process(tiny):
    again = lm.causal_lm(tiny.name, device="cpu")
    assert again.model is tiny.model
    assert again.tag == Path(tiny.name).name


def test_a_missing_model_is_one_clear_error(tmp_path):
    with pytest.raises(ResourceError, match="could not be loaded"):
        lm.causal_lm(str(tmp_path / "no-such-model"), device="cpu")


def test_bad_lengths_are_rejected(tiny):
    with pytest.raises(InputError, match="max_new_tokens"):
        tiny.generate(["x"], max_new_tokens=0)


def test_on_an_engine_each_model_batch_is_a_task_with_the_same_samples(tiny, actors_engine):
    kw = {"max_new_tokens": 6, "temperature": 1.0, "top_p": 1.0, "seed": 9}
    here = tiny.generate(PROMPTS, batch_size=2, num_return_sequences=2, **kw)
    there, stats = lm.generate_on(
        actors_engine, tiny.name, "cpu", PROMPTS, batch_size=2, num_return_sequences=2, **kw
    )
    assert actors_engine.batches == [1, 1, 1]  # 3 model batches of at most 2 prompts
    assert there == here
    assert stats.prompts == len(PROMPTS) and stats.sequences == 2 * len(PROMPTS)
    assert stats.tokens > 0 and stats.seconds > 0
