"""CPU stacks fit in memory: a group of cells trains in as many stacks as the free memory
needs, and each cell's result is what one stack gives it."""

from __future__ import annotations

import numpy as np
import pytest

from assay.train import stack_memory


def test_chunks_cover_every_cell_once_in_stacks_no_larger_than_asked():
    for n, size in ((50, 8), (7, 7), (3, 10), (10, 3), (1, 1)):
        parts = stack_memory.chunks(n, size)
        assert [i for part in parts for i in part] == list(range(n))
        assert max(len(p) for p in parts) <= size
        assert len(parts) == -(-n // size)  # no more stacks than needed
        assert max(len(p) for p in parts) - min(len(p) for p in parts) <= 1  # even
    assert stack_memory.chunks(0, 4) == []


def test_cells_per_stack_is_half_the_free_memory_and_at_least_one():
    assert stack_memory.cells_per_stack(per_cell=10, available=200) == 10
    assert stack_memory.cells_per_stack(per_cell=10, available=219) == 10
    assert stack_memory.cells_per_stack(per_cell=10**12, available=10**9) == 1
    assert stack_memory.free_memory() > 0


def test_a_minilm_cell_is_estimated_above_what_fifty_in_one_stack_used():
    # 50 MiniLM cells in one CPU stack took 24 GB (about 0.48 GB a cell) before the kernel
    # killed the process: the estimate must not be below what was used.
    from types import SimpleNamespace

    minilm = SimpleNamespace(hidden_size=384, num_hidden_layers=6, num_attention_heads=12)
    per_cell = stack_memory.cell_bytes(minilm, 22_713_216, batch_size=16, max_length=128)
    assert per_cell > 24e9 / 50
    assert stack_memory.cells_per_stack(per_cell, available=24 * 2**30) < 50


@pytest.mark.slow
def test_cells_split_over_stacks_give_what_one_stack_gives(tiny_encoder, monkeypatch):
    pytest.importorskip("torch")
    from assay.corpus import from_records
    from assay.train import evaluate

    from .test_finetune import separable

    options = dict(device="cpu", learning_rate=3e-3, batch_size=8, threads=1,
                   max_length=24, max_steps=6, early_stopping_patience=None)  # fmt: skip
    jobs = []
    for seed in range(5):
        texts, labels = separable(30 + seed, 10 + seed)
        jobs.append(evaluate.Job(from_records(texts, labels, split="train"), seed, options))
    texts, labels = separable(20, 97)
    evals = from_records(texts, labels, split="test")

    def run() -> list:
        return evaluate.train_and_evaluate_many(jobs, model=str(tiny_encoder), eval_corpus=evals)

    together = run()
    sizes = []
    real = stack_memory.chunks
    monkeypatch.setattr(stack_memory, "cells_per_stack", lambda per_cell: 2)
    monkeypatch.setattr(stack_memory, "chunks", lambda n, size: sizes.append(size) or real(n, size))
    apart = run()
    assert sizes == [2]  # five cells in stacks of two, two and one
    for a, b in zip(together, apart, strict=True):
        assert a.predictions["id"].to_list() == b.predictions["id"].to_list()
        np.testing.assert_allclose(
            np.array(a.predictions["proba"].to_list()),
            np.array(b.predictions["proba"].to_list()),
            atol=2e-5,
        )
        assert a.steps == b.steps == 6
    # Not every cell learned the same thing: the seeds and rows still matter.
    assert len({tuple(np.round(o.predictions["proba"].to_list()[0], 4)) for o in apart}) > 1
