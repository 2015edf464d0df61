"""Train a model on a corpus's train split and evaluate it on dev and test.

One entry point for every model kind: `model="fast"` (TF-IDF + logistic regression),
`model="probe"` (frozen sentence embeddings + logistic regression) or an encoder name/path
for the fine-tune loop. Outputs are keyed by example id: predictions
(id, split, label, pred, proba) and a metrics report per split.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import polars as pl

from assay import atomic
from assay import corpus as corpus_mod
from assay.errors import InputError
from assay.progress import Progress
from assay.train.metrics import classification_report, slice_metrics

log = logging.getLogger(__name__)

FAST = "fast"
PROBE = "probe"  # frozen sentence embeddings + logistic regression (train/probe.py)
# Bump when a change to the models or the loop changes results: finished ablation cells
# keyed on an older version are retrained.
TRAIN_VERSION = "1"
EVAL_SPLITS = corpus_mod.EVAL_SPLITS
SLICE_COLUMNS = ("lang", "origin", "group", "length_bucket")
# Eval rows a leakage audit marked (`<step>__leaked`, action mark_eval): metrics are also
# reported on the clean rest, so the user sees what the leak was worth.
LEAKED_SUFFIX = "__leaked"
CLEAN = "clean"


@dataclasses.dataclass
class TrainOutcome:
    model: str
    seed: int
    classes: list[str]
    predictions: pl.DataFrame  # id, split, label, pred, proba (list, in `classes` order)
    metrics: dict[str, dict[str, Any]]  # split -> classification report
    train_rows: int
    seconds: float
    steps: int | None = None  # optimiser steps (None for the fast model)
    examples_per_s: float | None = None
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    # split -> metric -> {estimate, low, high}: 95% bootstrap intervals over eval examples
    intervals: dict[str, dict[str, dict[str, float]]] = dataclasses.field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "seed": self.seed,
            "classes": self.classes,
            "train_rows": self.train_rows,
            "seconds": round(self.seconds, 3),
            "steps": self.steps,
            "examples_per_s": self.examples_per_s,
            "history": self.history,
            "metrics": self.metrics,
            "intervals": self.intervals,
        }

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        for split in self.predictions["split"].unique().sort().to_list():
            atomic.write_parquet(
                directory / f"predictions_{split}.parquet",
                self.predictions.filter(pl.col("split") == split),
            )
        atomic.write_json(directory / "metrics.json", self.summary())
        return directory


def make_model(model: str, seed: int, options: dict[str, Any], progress: Progress | None):
    if model == FAST:
        from assay.train.fast import FastModel

        return FastModel(seed=seed, **options)
    if model == PROBE:
        from assay.train.probe import ProbeModel

        return ProbeModel(seed=seed, **options)
    from assay.train.finetune import EncoderModel, FineTuneConfig

    return EncoderModel(seed=seed, config=FineTuneConfig(model=model, **options), progress=progress)


def training_rows(corpus: pl.DataFrame) -> pl.DataFrame:
    return corpus.filter((pl.col("split") == "train") & pl.col("label").is_not_null())


def evaluation_rows(corpus: pl.DataFrame) -> pl.DataFrame:
    """The labelled dev and test rows, which every model of a comparison is scored on."""
    return corpus.filter(pl.col("split").is_in(EVAL_SPLITS) & pl.col("label").is_not_null())


def train_and_evaluate(
    corpus: pl.DataFrame,
    *,
    model: str = FAST,
    seed: int = 0,
    options: dict[str, Any] | None = None,
    eval_corpus: pl.DataFrame | None = None,
    progress: Progress | None = None,
    out_dir: str | Path | None = None,
    save_model: bool = False,
    slice_by: Sequence[str] = (),
    intervals: bool | None = None,
) -> TrainOutcome:
    """Fit on `corpus`'s labelled train rows; predict the dev and test rows of `eval_corpus`
    (default: the same corpus). Weights come from the corpus `weight` column.

    With `out_dir`, predictions and metrics.json are written there. `intervals` adds 95%
    bootstrap intervals of accuracy and macro-F1 per split (seeded by `seed`); by default
    they are computed when metrics.json is written (about a second per 2,000 examples, so
    callers that only compare runs, like the ablation, skip them).

    Metrics per split include slices by lang, origin, group and length bucket, and by any
    further corpus columns named in `slice_by` (kept in the predictions too). Where a
    leakage audit marked eval rows (`leakage__leaked`), each split's report also holds the
    metrics of its clean subset under `clean` (with `n_leaked`), and `intervals` gets a
    `<split>:clean` entry."""
    options = dict(options or {})
    train = training_rows(corpus)
    if train.height == 0:
        raise InputError(
            "the corpus has no labelled train rows; add a split step or set split_column"
        )
    evals = evaluation_rows(eval_corpus if eval_corpus is not None else corpus)
    weights = train["weight"].to_numpy()
    weights = None if np.allclose(weights, 1.0) else weights
    est = make_model(model, seed, options, progress)
    started = time.perf_counter()
    fit_kwargs: dict[str, Any] = {}
    dev = evals.filter(pl.col("split") == "dev")
    if model not in (FAST, PROBE) and dev.height:  # only the fine-tune loop reads dev
        fit_kwargs = {"dev_texts": dev["text"].to_list(), "dev_labels": dev["label"].to_list()}
    est.fit(train["text"].to_list(), train["label"].to_list(), weights, **fit_kwargs)
    proba = (
        est.predict_proba(evals["text"].to_list())
        if evals.height
        else np.zeros((0, len(est.classes_)))
    )
    outcome = outcome_from_proba(
        model,
        seed,
        train.height,
        evals,
        proba,
        list(est.classes_),
        est,
        slice_by,
        seconds=time.perf_counter() - started,
        steps=getattr(est, "steps", None),
        examples_per_s=getattr(est, "examples_per_s", None),
        history=list(getattr(est, "history", [])),
    )
    if intervals or (intervals is None and out_dir is not None):
        outcome.intervals = metric_intervals(outcome, seed)
    if out_dir is not None:
        outcome.save(out_dir)
        if save_model and hasattr(est, "save"):
            est.save(Path(out_dir) / "model")
    return outcome


def outcome_from_proba(
    model: str,
    seed: int,
    train_rows: int,
    evals: pl.DataFrame,
    proba: np.ndarray,
    classes: list[str],
    est: Any,
    slice_by: Sequence[str],
    **fields: Any,
) -> TrainOutcome:
    """Predictions and metrics per split from a fitted model's probabilities on `evals`."""
    missing = [c for c in slice_by if c not in evals.columns]
    if missing:
        raise InputError(f"cannot slice by {missing}: the corpus has columns {evals.columns}")
    predictions = with_leaked(_predictions(evals, proba, classes, est, list(slice_by)), evals)
    # A class the training rows lack (a variant dropped it) is scored, never predicted.
    scored = sorted(set(classes) | set(corpus_mod.label_set(evals)))
    metrics = {}
    for split in EVAL_SPLITS:
        part = predictions.filter(pl.col("split") == split)
        if part.height:
            metrics[split] = classification_report(
                part["label"].to_list(),
                part["pred"].to_list(),
                scored,
                np.array(part["proba"].to_list()),
            )
            metrics[split]["slices"] = slices(part, scored, slice_by)
            if LEAKED in part.columns:
                clean = part.filter(~pl.col(LEAKED))
                metrics[split][CLEAN] = classification_report(
                    clean["label"].to_list(),
                    clean["pred"].to_list(),
                    scored,
                    np.array(clean["proba"].to_list()) if clean.height else None,
                )
                metrics[split][CLEAN]["n_leaked"] = part.height - clean.height
    return TrainOutcome(
        model=model,
        seed=seed,
        classes=classes,
        predictions=predictions,
        metrics=metrics,
        train_rows=train_rows,
        **fields,
    )


@dataclasses.dataclass
class Job:
    """One model to train for `train_and_evaluate_many`: a corpus, a seed, options."""

    corpus: pl.DataFrame
    seed: int
    options: dict[str, Any]
    key: str | None = None  # the caller's name for it (an ablation's cell key)


class TrainMany(Protocol):
    """What trains an ablation's cells: `train_and_evaluate_many` or a stand-in for it
    (cells trained on another machine)."""

    def __call__(
        self,
        jobs: Sequence[Job],
        *,
        model: str,
        eval_corpus: pl.DataFrame,
        progress: Progress | None = None,
        on_outcome: Callable[[int, TrainOutcome], None] | None = None,
    ) -> list[TrainOutcome]: ...


def trainer_of(model: str, options: dict[str, Any], multilabel: bool = False) -> dict[str, Any]:
    """How cells with this model and these options are trained: the loop, the stack or the
    fast model, with the device, dtype and batch size they get. Part of an ablation cell's
    key: cells trained differently are never mixed."""
    if model in (FAST, PROBE):  # a logistic regression: no loop, stack or batch size
        return {"trainer": model}
    from assay.train.device import describe_device
    from assay.train.finetune import FineTuneConfig
    from assay.train.stacked import unstackable

    config = FineTuneConfig(model=model, **options)
    device, dtype = describe_device(config.device)
    return {
        "trainer": "loop" if unstackable(config, multilabel) else "stacked",
        "device": device,
        "dtype": dtype,
        "batch_size": config.batch_size * config.grad_accum,
    }


def train_and_evaluate_many(
    jobs: Sequence[Job],
    *,
    model: str,
    eval_corpus: pl.DataFrame,
    progress: Progress | None = None,
    on_outcome: Callable[[int, TrainOutcome], None] | None = None,
) -> list[TrainOutcome]:
    """`train_and_evaluate` for many jobs sharing one evaluation set: encoder jobs that can
    share a stack (same options and classes) train together (`assay.train.stacked`), the
    others one by one. Outcomes come back in the order of `jobs`; `on_outcome(i, outcome)`
    hears of each as soon as it is ready, so a caller can keep it before the rest finish
    (hours of CPU cells survive an interruption)."""
    outcomes: list[TrainOutcome | None] = [None] * len(jobs)

    def done(i: int, outcome: TrainOutcome) -> None:
        outcomes[i] = outcome
        if on_outcome is not None:
            on_outcome(i, outcome)

    groups: dict[str, list[int]] = {}
    for i, job in enumerate(jobs):
        multilabel = corpus_mod.is_multilabel(job.corpus)
        if (
            model in (FAST, PROBE)
            or trainer_of(model, job.options, multilabel)["trainer"] != "stacked"
        ):
            done(i, train_and_evaluate(
                job.corpus, model=model, seed=job.seed, options=job.options,
                eval_corpus=eval_corpus, progress=progress,
            ))  # fmt: skip
            continue
        classes = corpus_mod.label_set(training_rows(job.corpus))
        key = json.dumps([job.options, sorted(classes)], sort_keys=True, default=str)
        groups.setdefault(key, []).append(i)
    evals = evaluation_rows(eval_corpus)
    for members in groups.values():
        _train_group([jobs[i] for i in members], model, evals, progress,
                     lambda k, outcome, members=members: done(members[k], outcome))  # fmt: skip
    return [o for o in outcomes if o is not None]


def _train_group(jobs, model: str, evals: pl.DataFrame, progress, done) -> None:
    """Train a group's cells stack by stack; `done(k, outcome)` for each cell of a stack
    as soon as its stack has trained."""
    from assay.train.finetune import FineTuneConfig
    from assay.train.stacked import Cell, train_stack

    config = FineTuneConfig(model=model, **jobs[0].options)
    cells = []
    rows = []
    for job in jobs:
        train = training_rows(job.corpus)
        weights = train["weight"].to_numpy()
        cells.append(Cell(job.seed, train["text"].to_list(), train["label"].to_list(),
                          None if np.allclose(weights, 1.0) else weights))  # fmt: skip
        rows.append(train.height)
    dev = evals.filter(pl.col("split") == "dev")
    for members in _stacks(config, len(cells)):
        stack = train_stack(
            [cells[i] for i in members],
            config,
            evals["text"].to_list(),
            (dev["text"].to_list(), dev["label"].to_list()) if dev.height else None,
            progress=progress,
        )
        for k, result in zip(members, stack, strict=True):
            done(k, outcome_from_proba(
                model, jobs[k].seed, rows[k], evals, result.proba, result.classes, None, (),
                seconds=result.train_seconds / len(members), steps=result.steps,
                examples_per_s=result.examples_per_s, history=result.history,
            ))  # fmt: skip


def _stacks(config: Any, n: int) -> list[range]:
    """The cells of a group in stacks: one on a GPU, as many as memory needs on a CPU."""
    from assay.train import stack_memory
    from assay.train.device import describe_device
    from assay.train.finetune import base_encoder

    if describe_device(config.device)[0] != "cpu":
        return [range(n)]
    _, hf_config, state = base_encoder(config.model)
    parameters = sum(int(t.numel()) for t in state.values())
    per_cell = stack_memory.cell_bytes(hf_config, parameters, config.batch_size, config.max_length)
    size = stack_memory.cells_per_stack(per_cell)
    if size < n:
        log.info("%d cells in stacks of at most %d (CPU memory)", n, size)
    return stack_memory.chunks(n, size)


LEAKED = "leaked"


def with_leaked(predictions: pl.DataFrame, evals: pl.DataFrame) -> pl.DataFrame:
    """Add a `leaked` column (any `<step>__leaked` mark) when the eval rows carry one."""
    marks = [c for c in evals.columns if c.endswith(LEAKED_SUFFIX)]
    if not marks:
        return predictions
    leaked = evals.select(
        pl.any_horizontal([pl.col(c).fill_null(False).cast(pl.Boolean) for c in marks])
    ).to_series()
    return predictions.with_columns(leaked.alias(LEAKED))


def slices(
    predictions: pl.DataFrame, classes: list[str], extra: Sequence[str] = ()
) -> dict[str, list[dict[str, Any]]]:
    """Accuracy and macro-F1 per value of each slice column that has more than one value."""
    out = {}
    for column in dict.fromkeys([*SLICE_COLUMNS, *extra]):
        if column in predictions.columns and predictions[column].n_unique() < 2:
            continue
        out[column] = slice_metrics(predictions, column, classes).to_dicts()
    return out


def _predictions(
    evals: pl.DataFrame, proba: np.ndarray, classes: list[str], est, extra: list[str]
) -> pl.DataFrame:
    multilabel = corpus_mod.is_multilabel(evals)
    if multilabel:
        threshold = getattr(getattr(est, "config", None), "threshold", None) or est.options.get(
            "threshold", 0.5
        )
        pred: list[Any] = [[c for c, p in zip(classes, row, strict=True) if p >= threshold]
                           for row in proba]  # fmt: skip
        pred_series = pl.Series("pred", pred, dtype=pl.List(pl.String))
    else:
        pred_series = pl.Series(
            "pred", [classes[i] for i in proba.argmax(axis=1)] if len(proba) else [], pl.String
        )
    keep = ["id", "split", "text", "label", "lang", "origin", "group"]
    keep += [c for c in extra if c not in keep]
    return evals.select(keep).with_columns(
        pred_series,
        pl.Series("proba", proba.astype(np.float32).tolist(), dtype=pl.List(pl.Float32)),
    )


def metric_intervals(
    outcome: TrainOutcome, seed: int = 0, metrics: Sequence[str] = ("accuracy", "macro_f1")
) -> dict[str, dict[str, dict[str, float]]]:
    """95% bootstrap intervals (over evaluation examples) of each metric, per split."""
    from assay.train.bootstrap import bootstrap_ci
    from assay.train.metrics import encode

    scored = sorted(set(outcome.classes) | set(corpus_mod.label_set(outcome.predictions)))
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for split in EVAL_SPLITS:
        part = outcome.predictions.filter(pl.col("split") == split)
        if part.height == 0:
            continue
        y_true = encode(part["label"].to_list(), scored)
        y_pred = encode(part["pred"].to_list(), scored)
        out[split] = {
            m: bootstrap_ci(y_true, y_pred, len(scored), m, rng=rng).to_dict() for m in metrics
        }
        if LEAKED in part.columns:
            clean = ~part[LEAKED].to_numpy()
            if clean.any():
                out[f"{split}:{CLEAN}"] = {
                    m: bootstrap_ci(y_true[clean], y_pred[clean], len(scored), m, rng=rng).to_dict()
                    for m in metrics
                }
    return out
