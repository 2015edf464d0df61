"""Active-learning rounds with a Label Studio project.

A round: pull the annotations made since the last round (incremental), fold the resolved
labels into the corpus, retrain the model (the fast model by default), score it on the dev
split with a 95% bootstrap interval, choose the next batch from the unlabelled rows that
have no task yet (`assay.curate.active`), and push it. Each task carries why it was chosen
(`assay_strategy`, `assay_score`, `assay_rank`, `assay_round`) and the model's prediction
(with its model version). The rounds' history (time, labels, metric, interval, strategy)
is kept in the sync state and shown by `assay ls status`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from assay import corpus as corpus_mod
from assay.curate import active
from assay.curate.labelstudio import pull as pull_mod
from assay.curate.labelstudio import push as push_mod
from assay.curate.labelstudio.client import Client
from assay.curate.labelstudio.config import ID_KEY, Project
from assay.curate.labelstudio.state import SyncState, fresh_project, utc_now
from assay.embedding_cache import EmbeddingCache
from assay.errors import InputError
from assay.progress import Progress

log = logging.getLogger(__name__)

ROUNDS_KEY = "rounds"
REASON_KEYS = ("assay_strategy", "assay_score", "assay_rank", "assay_round", "assay_annotators")
LABELLED_SPLITS = ("train", "unlabeled")


@dataclasses.dataclass
class Batch:
    """The chosen rows, why (selection frame), the model's predictions, and its version."""

    selection: active.Selection
    reasons: pl.DataFrame  # id + task data fields
    predictions: pl.DataFrame | None  # id, label, score, model_version
    model_version: str
    model: Any = None
    classes: list[str] = dataclasses.field(default_factory=list)


def labelled(corpus: pl.DataFrame) -> pl.DataFrame:
    return corpus.filter((pl.col("split") == "train") & pl.col("label").is_not_null())


def pool(corpus: pl.DataFrame, exclude: set[str] | None = None) -> pl.DataFrame:
    """Unlabelled rows (split unlabeled, train or unset) that are not already tasks."""
    rows = corpus.filter(
        pl.col("label").is_null()
        & (pl.col("split").is_in(list(LABELLED_SPLITS)) | pl.col("split").is_null())
    )
    if exclude:
        rows = rows.filter(~pl.col("id").is_in(list(exclude)))
    return rows


def select_batch(
    corpus: pl.DataFrame,
    batch: int,
    strategy: str,
    rng: np.random.Generator,
    *,
    exclude: set[str] | None = None,
    model: str = "fast",
    seed: int = 0,
    measure: str = "entropy",
    overlap: int = 0,
    round_no: int | None = None,
    embeddings: EmbeddingCache | None = None,
) -> Batch:
    """Train on the labelled train rows, score the pool and choose `batch` rows of it."""
    train = labelled(corpus)
    candidates = pool(corpus, exclude)
    if candidates.height == 0:
        raise InputError(
            "no unlabelled rows left to choose from (rows need a null label and split "
            "'unlabeled' or 'train', and no task in the project yet)"
        )
    labels = train["label"].to_list()
    classes = corpus_mod.label_set(corpus)
    version = f"{model}-r{round_no}-n{train.height}" if round_no else f"{model}-n{train.height}"
    est = None
    proba = None
    model_classes: list[str] = []
    if len({str(x) for x in labels}) >= 2 and not corpus_mod.is_multilabel(train):
        proba, model_classes, est = active.pool_probabilities(
            train["text"].to_list(),
            labels,
            candidates["text"].to_list(),
            model=model,
            seed=seed,
        )
    cold = active.cold_start(labels, classes) or proba is None
    # A cold start falls back to random: only diversity and a warm hybrid need embeddings.
    needs_vectors = strategy == active.DIVERSITY or (strategy == active.HYBRID and not cold)
    pool_vectors = labelled_vectors = None
    if needs_vectors:
        embeddings = embeddings or EmbeddingCache()
        pool_vectors = embeddings.embed(candidates["text"].to_list())
        labelled_vectors = embeddings.embed(train["text"].to_list()) if train.height else None
    sel = active.select(
        candidates["id"].to_list(),
        batch,
        strategy,
        rng,
        labels=labels,
        classes=classes,
        proba=None if cold else proba,
        pool_vectors=pool_vectors,
        labelled_vectors=labelled_vectors,
        measure=measure,
        overlap=overlap,
    )
    frame = sel.to_frame()
    reasons = frame.select(
        "id",
        pl.col("strategy").alias("assay_strategy"),
        pl.col("score").round(6).alias("assay_score"),
        pl.col("rank").alias("assay_rank"),
        pl.lit(round_no).alias("assay_round"),
        pl.when(pl.col("overlap")).then(2).otherwise(1).alias("assay_annotators"),
    )
    predictions = None
    if proba is not None:
        index = {i: k for k, i in enumerate(candidates["id"].to_list())}
        rows = proba[[index[i] for i in sel.ids]]
        predictions = pl.DataFrame(
            {
                "id": sel.ids,
                "label": [model_classes[j] for j in rows.argmax(axis=1)],
                "score": rows.max(axis=1).astype(np.float64),
                "model_version": [version] * len(sel.ids),
            }
        )
    return Batch(sel, reasons, predictions, version, est, model_classes)


def fold_in(corpus: pl.DataFrame, consensus: pl.DataFrame, prefix: str) -> pl.DataFrame:
    """The corpus with the resolved labels on train/unlabelled rows; labelled rows -> train."""
    eligible = corpus.filter(
        pl.col("split").is_in(list(LABELLED_SPLITS)) | pl.col("split").is_null()
    )["id"]
    cons = consensus.filter(pl.col("id").is_in(eligible.implode()))
    out = pull_mod.apply_labels(corpus, cons, prefix=prefix)
    got = pl.col(f"{prefix}__status").is_not_null() & pl.col("label").is_not_null()
    return out.with_columns(
        split=pl.when((pl.col("split").is_null() | (pl.col("split") == "unlabeled")) & got)
        .then(pl.lit("train"))
        .otherwise(pl.col("split"))
    )


def dev_metric(
    est: Any, corpus: pl.DataFrame, seed: int, metric: str = "macro_f1"
) -> dict[str, Any] | None:
    """The model's `metric` on the labelled dev rows with a 95% bootstrap interval."""
    if est is None:
        return None
    dev = corpus.filter((pl.col("split") == "dev") & pl.col("label").is_not_null())
    if dev.height == 0:
        return None
    from assay.train.bootstrap import bootstrap_ci
    from assay.train.metrics import encode

    classes = sorted(set(est.classes_) | set(corpus_mod.label_set(dev)))
    pred = est.predict(dev["text"].to_list())
    ci = bootstrap_ci(
        encode(dev["label"].to_list(), classes),
        encode(pred, classes),
        len(classes),
        metric,
        rng=np.random.default_rng(seed),
    )
    return {
        "metric": metric,
        "n_dev": dev.height,
        **{k: round(v, 4) for k, v in ci.to_dict().items()},
    }


@dataclasses.dataclass
class RoundReport:
    round: int
    at: str
    strategy: str
    requested: str
    n_labels: int
    n_new_annotations: int
    n_tasks_pulled: int
    metric: dict[str, Any] | None
    push: dict[str, Any]
    model_version: str
    seconds: float
    corpus: pl.DataFrame | None = None

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.pop("corpus")
        return out


def run_round(
    client: Client,
    project: int | str | Project,
    corpus: pl.DataFrame,
    state_dir: str | Path,
    *,
    strategy: str = active.HYBRID,
    batch: int = 100,
    model: str = "fast",
    seed: int = 0,
    measure: str = "entropy",
    overlap: int = 0,
    embeddings: EmbeddingCache | None = None,
    progress: Progress | None = None,
) -> RoundReport:
    """Pull, fold in, retrain, score on dev, push the next batch; record the round."""
    started = time.perf_counter()
    project = fresh_project(client, project)
    sync = SyncState(state_dir)
    history = list(sync.read().get(ROUNDS_KEY) or [])
    round_no = len(history) + 1
    pulled = pull_mod.pull(client, project, state_dir, progress=progress)
    current = fold_in(corpus, pulled.consensus, prefix="labelstudio_round")
    tasks = {(t.get("data") or {}).get(ID_KEY) for t in client.tasks(project.id, include="id,data")}
    tasks.discard(None)
    rng = np.random.default_rng([seed, round_no])
    chosen = select_batch(
        current,
        batch,
        strategy,
        rng,
        exclude=tasks,
        model=model,
        seed=seed,
        measure=measure,
        overlap=overlap,
        round_no=round_no,
        embeddings=embeddings or EmbeddingCache(Path(state_dir) / "embeddings"),
    )
    metric = dev_metric(chosen.model, current, seed)
    rows = current.filter(pl.col("id").is_in(chosen.selection.ids))
    overlap_ids = [
        i for i, o in zip(chosen.selection.ids, chosen.selection.overlap, strict=True) if o
    ]
    report = push_mod.push(
        client,
        project,
        rows,
        predictions=chosen.predictions,
        model_version=chosen.model_version,
        state_dir=state_dir,
        progress=progress,
        task_data=chosen.reasons,
        overlap_ids=overlap_ids,
    )
    out = RoundReport(
        round=round_no,
        at=utc_now(),
        strategy=chosen.selection.strategy,
        requested=strategy,
        n_labels=labelled(current).height,
        n_new_annotations=pulled.n_annotations_pulled,
        n_tasks_pulled=pulled.n_tasks_pulled,
        metric=metric,
        push={k: report.to_dict()[k] for k in ("n_created", "n_updated", "n_overlap", "n_tasks")},
        model_version=chosen.model_version,
        seconds=round(time.perf_counter() - started, 3),
        corpus=current,
    )
    state = sync.read()
    state[ROUNDS_KEY] = [*history, out.to_dict()]
    sync.write(state)
    log.info(
        "round %d: %d labels, %s, pushed %d tasks (%s)",
        round_no,
        out.n_labels,
        metric,
        report.n_created,
        chosen.selection.strategy,
    )
    return out


def history(state_dir: str | Path) -> list[dict[str, Any]]:
    """The recorded rounds of a sync directory, oldest first."""
    return list(SyncState(state_dir).read().get(ROUNDS_KEY) or [])
