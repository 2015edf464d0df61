"""The stacked trainer: many cells at once give each cell what it gets alone."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from assay.errors import InputError
from assay.testing import tiny_bert
from assay.train.finetune import EncoderModel, FineTuneConfig
from assay.train.stacked import Cell, train_stack, unstackable

from .conftest import WORDS
from .test_finetune import separable

# Float rounding only: a cell's numbers differ between stack sizes in summation order.
TOLERANCE = 2e-5


def _config(path, **overrides) -> FineTuneConfig:
    options = dict(
        model=str(path), learning_rate=3e-3, warmup_ratio=0.1, batch_size=8, threads=1,
        max_length=24, early_stopping_patience=None, evals_per_epoch=2,
    )  # fmt: skip
    options.update(overrides)
    return FineTuneConfig(**options)


def _cells() -> list[Cell]:
    out = []
    for seed, n in ((0, 40), (1, 56), (7, 33)):
        texts, labels = separable(n, 10 + seed)
        weights = np.linspace(0.5, 1.5, n)
        out.append(Cell(seed, texts, labels, weights if seed == 1 else None))
    return out


@pytest.mark.parametrize(
    "budget",
    [{"max_steps": 9}, {"epochs": 2.0, "early_stopping_patience": 1}],
    ids=["steps", "epochs-early-stop"],
)
def test_each_cell_in_a_stack_equals_the_cell_trained_alone(tiny_encoder, budget):
    config = _config(tiny_encoder, **budget)
    cells = _cells()
    dev = separable(30, 99)
    evals, _ = separable(25, 98)
    stacked = train_stack(cells, config, evals, dev)
    for cell, together in zip(cells, stacked, strict=True):
        [alone] = train_stack([cell], config, evals, dev)
        np.testing.assert_allclose(together.proba, alone.proba, atol=TOLERANCE)
        assert together.steps == alone.steps
        assert together.train_examples == alone.train_examples
        assert [h["step"] for h in together.history] == [h["step"] for h in alone.history]
        np.testing.assert_allclose(
            [h["dev_macro_f1"] for h in together.history],
            [h["dev_macro_f1"] for h in alone.history],
        )
    # Seeds and rows matter: different cells, different training.
    first_losses = [r.history[0]["loss"] for r in stacked]
    assert len(set(first_losses)) == len(cells)
    if "epochs" in budget:
        # Each cell's own schedule (5, 7 and 5 steps per epoch) and its own early stop.
        totals = [10, 14, 10]
        assert all(r.steps < t for r, t in zip(stacked, totals, strict=True))
        assert stacked[1].steps != stacked[0].steps


def test_stacked_cell_matches_the_encoder_model_loop(tmp_path):
    """Without dropout (whose masks the two draw differently), a cell of the stack and
    `EncoderModel` take the same steps from the same weights: same predictions."""
    path = tiny_bert(tmp_path / "no-dropout", WORDS)
    config = json.loads((path / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (path / "config.json").write_text(json.dumps(config))
    texts, labels = separable(48, 5)
    dev = separable(20, 6)
    evals, _ = separable(16, 7)
    options = dict(max_steps=10, evals_per_epoch=3, class_weights="balanced")
    cfg = _config(path, **options)
    [stacked] = train_stack([Cell(3, texts, labels)], cfg, evals, dev)
    loop = EncoderModel(seed=3, config=cfg).fit(texts, labels, dev_texts=dev[0],
                                                dev_labels=dev[1])  # fmt: skip
    np.testing.assert_allclose(stacked.proba, loop.predict_proba(evals), atol=1e-4)
    assert stacked.steps == loop.steps
    assert [h["step"] for h in stacked.history] == [h["step"] for h in loop.history]
    # The same weights with dropout on train to another model: the masks are applied.
    with_dropout = shutil.copytree(path, tmp_path / "dropout")
    config.update(hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    (with_dropout / "config.json").write_text(json.dumps(config))
    [dropped] = train_stack([Cell(3, texts, labels)], _config(with_dropout, **options), evals, dev)
    assert np.abs(dropped.proba - stacked.proba).max() > 1e-3


def test_unstackable_configurations_say_why(tiny_encoder):
    from assay.train.model_adaptation import LoraSettings

    assert unstackable(_config(tiny_encoder)) is None
    assert "LoRA" in unstackable(_config(tiny_encoder, lora=LoraSettings()))
    assert "micro-batches" in unstackable(_config(tiny_encoder, grad_accum=2))
    assert "multi-label" in unstackable(_config(tiny_encoder), multilabel=True)
    with pytest.raises(InputError, match="LoRA"):
        train_stack(_cells(), _config(tiny_encoder, lora=LoraSettings()), ["x"])


def test_cells_of_a_stack_share_their_classes(tiny_encoder):
    cells = _cells()
    cells[1] = Cell(1, ["good film", "bad film", "a plot"], ["pos", "neg", "other"])
    with pytest.raises(InputError, match="same classes"):
        train_stack(cells, _config(tiny_encoder, max_steps=2), ["good"])
