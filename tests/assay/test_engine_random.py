from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from assay import RunContext
from assay.corpus import from_records
from assay.engine_random import row_draws, row_keys, row_uniform, uniforms


def _ctx(seed: int = 13, index: int = 2, name: str = "shuffle") -> RunContext:
    return RunContext(seed=seed).for_step(index, name)


def test_row_draws_depend_on_the_row_id_not_its_position():
    ids = [f"r{i}" for i in range(50)]
    whole = row_uniform(_ctx(), "edits", ids)
    halves = np.concatenate(
        [row_uniform(_ctx(), "edits", ids[25:]), row_uniform(_ctx(), "edits", ids[:25])]
    )
    assert whole.tolist() == halves[25:].tolist() + halves[:25].tolist()
    assert whole.min() >= 0 and whole.max() < 1
    assert len(set(whole.tolist())) == 50


@pytest.mark.parametrize(
    "other", [_ctx(seed=14), _ctx(index=3), _ctx(name="eda")], ids=["seed", "index", "name"]
)
def test_seed_step_position_and_name_change_the_draws(other):
    ids = ["a", "b", "c"]
    assert row_uniform(_ctx(), "edits", ids).tolist() != row_uniform(other, "edits", ids).tolist()
    assert row_uniform(_ctx(), "edits", ids).tolist() != row_uniform(_ctx(), "pivots", ids).tolist()


def test_a_row_stream_continues_past_its_precomputed_block_and_is_uniform():
    (draw,) = row_draws(_ctx(), "edits", ["only"])
    values = [draw() for _ in range(5000)]
    key = row_keys(_ctx(), "edits", ["only"])
    assert values == uniforms(key, 0, 5000)[0].tolist()
    assert abs(float(np.mean(values)) - 0.5) < 0.02
    assert len(set(values)) == 5000


def test_augmenter_output_is_the_same_for_any_partition_of_its_rows():
    from assay.augment.shuffle import ShuffleAugmenter

    texts = [f"word{i} alpha beta gamma delta epsilon {i}" for i in range(40)]
    corpus = from_records(texts, ["a"] * 40, split=["train"] * 40, ids=[f"p{i}" for i in range(40)])
    step = ShuffleAugmenter(n_per_row=2)
    ctx = _ctx()
    whole = step.generate(corpus, ctx)
    parts = pl.concat([step.generate(corpus[30:], ctx), step.generate(corpus[:30], ctx)])
    key = ["parent_id", "text"]
    assert whole.height > 40
    assert whole.sort(key).equals(parts.sort(key))
