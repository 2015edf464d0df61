"""The stacked trainer on a CUDA device: no host syncs in a training step, and each cell of
a stack as it trains alone (to bf16 rounding: CUDA kernels are not bit-reproducible)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch

from assay.train.finetune import FineTuneConfig
from assay.train.stacked import Cell, train_stack

from .test_finetune import separable

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _setup(tiny_encoder):
    config = FineTuneConfig(model=str(tiny_encoder), device="cuda", batch_size=8, max_steps=12,
                            learning_rate=3e-3, early_stopping_patience=2)  # fmt: skip
    cells = [Cell(seed, *separable(40 + 8 * seed, seed)) for seed in range(4)]
    return config, cells, separable(24, 50), separable(16, 51)[0]


def test_training_steps_make_no_host_sync(tiny_encoder):
    config, cells, dev, evals = _setup(tiny_encoder)
    results = train_stack(cells, config, evals, dev, check_syncs=True)
    assert all(r.steps > 0 for r in results)


def test_each_cell_of_a_stack_trains_as_alone_on_cuda(tiny_encoder):
    config, cells, dev, evals = _setup(tiny_encoder)
    together = train_stack(cells, config, evals, dev)
    for cell, result in zip(cells, together, strict=True):
        [alone] = train_stack([cell], config, evals, dev)
        np.testing.assert_allclose(result.proba, alone.proba, atol=2e-2)
