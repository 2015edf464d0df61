"""What a fine-tune's settings make of its data: the steps after which dev is evaluated, the
learning-rate schedule and each example's loss weight. The loop (`EncoderModel`) and the
stacked trainer both take them from here, so a cell follows the same plan in either."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from assay.errors import InputError
from assay.train.finetune_config import FineTuneConfig
from assay.train.metrics import encode


def eval_points(per_epoch: int, total: int, per_epoch_evals: int) -> set[int]:
    """The optimiser steps after which dev is evaluated: a function of the data and the
    configuration only, so the same on every device."""
    every = max(1, per_epoch // per_epoch_evals)
    return set(range(every, total + 1, every)) | {total}


def lr_factor(total: int, warmup_ratio: float):
    """The learning-rate multiplier at optimiser step `step` (0-based): linear warmup over
    `warmup_ratio` of the steps, then linear decay to zero."""
    warmup = int(total * warmup_ratio)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def loss_weights(
    labels: list[Any],
    weights,
    classes: Sequence[str],
    cfg: FineTuneConfig,
    multilabel: bool = False,
) -> np.ndarray:
    """Each example's loss weight: its sample weight times its class weight, mean 1."""
    n = len(labels)
    w = np.ones(n, dtype=np.float32)
    if weights is not None and cfg.sample_weights:
        w = np.asarray(weights, dtype=np.float32).copy()
        if w.shape != (n,):
            raise InputError(f"got {w.shape[0]} weights for {n} training examples")
    if cfg.class_weights is not None and not multilabel:
        w *= _class_weight_vector(labels, classes, cfg)[encode(labels, classes)]
    # Mean 1: weights change the balance between examples, not the learning rate.
    return w / w.mean() if w.mean() > 0 else w


def _class_weight_vector(labels: list[Any], classes: Sequence[str], cfg) -> np.ndarray:
    if cfg.class_weights == "balanced":
        counts = np.bincount(encode(labels, classes), minlength=len(classes))
        return (len(labels) / (len(classes) * np.maximum(counts, 1))).astype(np.float32)
    assert isinstance(cfg.class_weights, dict)
    unknown = sorted(set(cfg.class_weights) - set(classes))
    if unknown:
        raise InputError(
            f"class_weights names {unknown}, which are not training classes {list(classes)}"
        )
    return np.array([cfg.class_weights.get(c, 1.0) for c in classes], dtype=np.float32)
