"""Many fine-tunes at once: K copies of a BERT-family encoder trained as one stacked model.

A MiniLM step at batch 16 is a few hundred small kernels; on a GPU their launch cost, not
their arithmetic, sets the pace. Here the weights of K cells (an ablation's arms x seeds)
carry a leading K dimension, so each kernel of a step does the work of K steps: batched
matrix products, one attention call, one optimiser pass.

Each cell keeps everything that is its own: head initialisation, train rows and their
order, dropout masks (drawn from its own generator at its own batch shape), learning-rate
schedule, gradient clipping, dev evaluations, best checkpoint and early stop. So a cell
trained in a stack of 80 predicts what it predicts trained alone, to float rounding.

The training step makes no host synchronisation: the rows of every step, the learning
rates and the token ids are on the device before the first step, dev scores and the
choice of the best checkpoint are computed there, and host values are read once, at the
end. Models outside the BERT family (or with LoRA, several micro-batches per step or
several labels per row) are trained one cell at a time by `EncoderModel` instead;
`unstackable` says why.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from assay.errors import InputError
from assay.progress import Progress, SilentProgress
from assay.train.base_encoder import base_encoder, token_cache
from assay.train.finetune_config import FineTuneConfig
from assay.train.finetune_schedule import eval_points, loss_weights, lr_factor
from assay.train.stacked_model import StackedModel
from assay.train.stacked_trainer import StackTrainer


@dataclasses.dataclass
class Cell:
    """One model to train: its seed and its training rows (labels as strings)."""

    seed: int
    texts: Sequence[str]
    labels: Sequence[str]
    weights: np.ndarray | None = None


@dataclasses.dataclass
class CellResult:
    classes: list[str]
    proba: np.ndarray  # (n_eval, n_classes) in `classes` order
    steps: int
    train_examples: int
    history: list[dict[str, Any]]
    train_seconds: float  # the stack's training time, shared by its cells

    @property
    def examples_per_s(self) -> float:
        return self.train_examples / self.train_seconds if self.train_seconds else 0.0


def unstackable(config: FineTuneConfig, multilabel: bool = False) -> str | None:
    """Why cells with this configuration cannot share a stack (None when they can)."""
    if config.lora is not None:
        return "LoRA adapters"
    if config.grad_accum != 1:
        return "several micro-batches per optimiser step"
    if config.domain_terms:
        return "domain terms added to the tokenizer"
    if multilabel:
        return "multi-label targets"
    _, hf_config, _ = base_encoder(config.model)
    if (
        hf_config.model_type != "bert"
        or getattr(hf_config, "position_embedding_type", "absolute") != "absolute"
    ):
        return f"a {hf_config.model_type!r} encoder (stacking supports BERT-family models)"
    if hf_config.hidden_act not in ("gelu", "relu", "gelu_new"):
        return f"the {hf_config.hidden_act!r} activation"
    return None


def train_stack(
    cells: Sequence[Cell],
    config: FineTuneConfig,
    eval_texts: Sequence[str],
    dev: tuple[Sequence[str], Sequence[str]] | None = None,
    *,
    progress: Progress | None = None,
    check_syncs: bool = False,
) -> list[CellResult]:
    """Train every cell (same configuration, same class set) in one stack; return each
    cell's class probabilities on `eval_texts`, in the order of `cells`.

    `check_syncs` makes any host synchronisation inside the training steps an error
    (CUDA only: `torch.cuda.set_sync_debug_mode`)."""
    import torch

    from assay.train.device import select_device

    if not cells:
        return []
    reason = unstackable(config)
    if reason is not None:
        raise InputError(f"these cells cannot be trained as a stack: {reason}")
    classes = sorted({str(y) for y in cells[0].labels})
    for cell in cells:
        if sorted({str(y) for y in cell.labels}) != classes:
            raise InputError("every cell of a stack must have the same classes; group them first")
        if len(cell.texts) != len(cell.labels) or not len(cell.texts):
            raise InputError("each cell needs as many labels as texts, and at least one")
    if len(classes) < 2:
        raise InputError(f"fine-tuning needs at least two classes; found {classes}")
    setup = select_device(config.device, config.threads)
    device = torch.device(setup.device)
    tokenizer, hf_config, state = base_encoder(config.model)
    tokens = token_cache(tokenizer, config.max_length)

    # Token ids: every distinct text tokenised once, remapped to the rows the stack uses.
    dev_texts = list(dev[0]) if dev is not None else []
    all_texts = [t for c in cells for t in c.texts] + dev_texts + list(eval_texts)
    used = np.unique(np.concatenate([np.asarray(tokens(t), dtype=np.int64) for t in all_texts]
                                    + [np.array([tokenizer.pad_token_id or 0])]))  # fmt: skip
    remap = np.full(hf_config.vocab_size, -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    pad = int(remap[tokenizer.pad_token_id or 0])

    def table(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        ids = [remap[np.asarray(tokens(t), dtype=np.int64)] for t in texts]
        lengths = np.array([len(x) for x in ids], dtype=np.int64)
        out = np.full((len(ids), max(1, lengths.max(initial=1))), pad, dtype=np.int64)
        for i, row in enumerate(ids):
            out[i, : len(row)] = row
        return out, lengths

    plans = [_plan(cell, config, classes, tokens) for cell in cells]
    rows, row_lengths = table([t for c in cells for t in c.texts])
    offsets = np.cumsum([0] + [len(c.texts) for c in cells])
    model = StackedModel(state, hf_config, used, len(classes), [c.seed for c in cells], config,
                   device)  # fmt: skip
    trainer = StackTrainer(model, plans, offsets, rows, row_lengths, config, setup, device, pad)
    dev_tables = None
    if dev is not None and len(dev_texts):
        dev_labels = [str(y) for y in dev[1]]
        scored = sorted(set(classes) | set(dev_labels))
        dev_tables = (*table(dev_texts), np.array([scored.index(y) for y in dev_labels]),
                      len(scored))  # fmt: skip
    progress = progress or SilentProgress()
    started = time.perf_counter()
    history = trainer.run(dev_tables, progress, check_syncs)
    seconds = time.perf_counter() - started
    eval_ids, eval_lengths = table(list(eval_texts)) if len(eval_texts) else (None, None)
    proba = (
        model.predict(eval_ids, eval_lengths, config.eval_batch_size, pad, setup)
        if eval_ids is not None
        else np.zeros((len(cells), 0, len(classes)), dtype=np.float32)
    )
    out = []
    for k, plan in enumerate(plans):
        steps = int(trainer.stopped[k])
        out.append(
            CellResult(
                classes=list(classes),
                proba=proba[k],
                steps=steps,
                train_examples=int(plan.sizes[:steps].sum()),
                history=history[k],
                train_seconds=seconds,
            )
        )
    return out


# -- the plan of one cell: its batches, schedule and dev evaluations ------------------------


@dataclasses.dataclass
class _Plan:
    batches: list[np.ndarray]  # row indices per optimiser step (into the cell's rows)
    sizes: np.ndarray  # examples per step
    lr: np.ndarray  # learning rate per step
    evals: set[int]  # steps (1-based) after which dev is evaluated
    total: int
    targets: np.ndarray
    weights: np.ndarray


def _plan(cell: Cell, config: FineTuneConfig, classes: list[str], tokens) -> _Plan:
    """The cell's batches in the order `EncoderModel.fit` takes them (same seed, same rng)."""
    from assay.train import batching
    from assay.train.metrics import encode

    labels = [str(y) for y in cell.labels]
    lengths = np.array([len(tokens(t)) for t in cell.texts], dtype=np.int64)
    batch = config.batch_size
    per_epoch = math.ceil(len(labels) / batch)
    total = config.max_steps or max(1, math.ceil(per_epoch * config.epochs))
    rng = np.random.default_rng(cell.seed)
    batches: list[np.ndarray] = []
    while len(batches) < total:
        batches.extend(batching.batch_order(lengths, batch, rng, config.bucket_by_length))
    batches = batches[:total]
    factor = lr_factor(total, config.warmup_ratio)
    return _Plan(
        batches=batches,
        sizes=np.array([len(b) for b in batches], dtype=np.int64),
        lr=np.array([config.learning_rate * factor(s) for s in range(total)], dtype=np.float64),
        evals=eval_points(per_epoch, total, config.evals_per_epoch),
        total=total,
        targets=encode(labels, classes),
        weights=loss_weights(labels, cell.weights, classes, config),
    )
