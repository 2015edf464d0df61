"""How `tracking` talks to MLflow: one `MlflowClient` with explicit run ids (no global active
run is started or changed), a store opened quietly, and values, files and datasets logged in
the shapes MLflow takes.

MLflow 3 refuses its filesystem store (`file:` URIs and bare paths) unless
`MLFLOW_ALLOW_FILE_STORE` is true: a user who names a `file:` URI asked for that store, so the
switch is turned on for the logging only, unless the user set it (then their word stands).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from assay import corpus as corpus_mod
from assay.errors import redact
from assay.hashing import frame_hash

log = logging.getLogger(__name__)

FILE_STORE_SWITCH = "MLFLOW_ALLOW_FILE_STORE"
MAX_PARAM = 500  # characters; MLflow rejects longer parameter values on some stores
PARAMS_PER_BATCH = 100  # MLflow's limits per log_batch call
METRICS_PER_BATCH = 1000
# MLflow's own loggers (alembic: the sqlite store's schema migrations): quiet unless assay
# itself logs at INFO (`-v`).
CHATTY_LOGGERS = ("mlflow", "alembic")
SPLITS = ("train", "dev", "test")
DATASET_CONTEXT = "mlflow.data.context"


def failures() -> tuple[type[BaseException], ...]:
    """What a store that is unreachable, refuses, or cannot be written raises."""
    from mlflow.exceptions import MlflowException

    kinds: list[type[BaseException]] = [MlflowException, OSError]
    try:
        from sqlalchemy.exc import SQLAlchemyError

        kinds.append(SQLAlchemyError)
    except ImportError:
        pass
    return tuple(kinds)


def is_file_store(uri: str) -> bool:
    """`file:` URIs and plain paths (a Windows drive letter is not a scheme)."""
    scheme, sep, _ = uri.partition(":")
    return not sep or scheme.lower() == "file" or len(scheme) == 1


@contextlib.contextmanager
def session(uri: str) -> Iterator[Any]:
    """An MlflowClient for `uri`, with MLflow's INFO lines and warnings silenced (unless
    assay logs at INFO) and the file store allowed when the URI names one."""
    from mlflow.tracking import MlflowClient

    with contextlib.ExitStack() as stack:
        if not logging.getLogger("assay").isEnabledFor(logging.INFO):
            stack.enter_context(_quiet())
        if is_file_store(uri):
            stack.enter_context(_file_store_allowed())
        yield MlflowClient(tracking_uri=uri)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in CHATTY_LOGGERS]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"mlflow(\.|$)")
        for logger in loggers:
            logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


@contextlib.contextmanager
def _file_store_allowed() -> Iterator[None]:
    if FILE_STORE_SWITCH in os.environ:
        yield  # the user decided; MLflow's own error says how to change it
        return
    log.info(
        "MLflow keeps its file store in maintenance mode; sqlite:///mlruns.db is the store "
        "it develops (allowing the file store for this log)"
    )
    os.environ[FILE_STORE_SWITCH] = "true"
    try:
        yield
    finally:
        os.environ.pop(FILE_STORE_SWITCH, None)


def experiment_id(client: Any, name: str, artifacts: str | None) -> str:
    """The id of the experiment `name`, created (artifacts at `artifacts`) if missing."""
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifacts)
    except MlflowException:
        found = client.get_experiment_by_name(name)  # another process created it meanwhile
        if found is None:
            raise
        return found.experiment_id


def start_run(
    client: Any, experiment: str, name: str, tags: dict[str, str], parent: str | None = None
) -> str:
    """A new run (a child of `parent` when given); returns its id."""
    if parent is not None:
        tags = {**tags, "mlflow.parentRunId": parent}
    return client.create_run(experiment, run_name=name, tags=tags).info.run_id


def find_run(client: Any, experiment: str, tag: str, value: str) -> str | None:
    """The newest run of the experiment whose tag `tag` is `value`."""
    runs = client.search_runs(
        [experiment],
        filter_string=f"tags.`{tag}` = '{value}'",
        max_results=1,
        order_by=["attributes.start_time DESC"],
    )
    return runs[0].info.run_id if runs else None


def split_values(
    row: dict[str, Any], skip: tuple[str, ...] = ()
) -> tuple[dict[str, str], dict[str, float]]:
    """Numbers (and booleans) become metrics, other values a param (JSON for structures)."""
    params: dict[str, str] = {}
    metrics: dict[str, float] = {}
    for key, value in row.items():
        if key in skip or value is None:
            continue
        if isinstance(value, (bool, int, float)):
            if math.isfinite(value):
                metrics[key] = float(value)
        else:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            params[key] = text[:MAX_PARAM]
    return params, metrics


def log_values(client: Any, run_id: str, params: dict[str, str], metrics: dict[str, float]) -> None:
    from mlflow.entities import Metric, Param

    now = int(time.time() * 1000)
    param_items = [Param(k, v) for k, v in params.items()]
    metric_items = [Metric(k, v, now, 0) for k, v in metrics.items()]
    while param_items or metric_items:
        client.log_batch(
            run_id,
            params=param_items[:PARAMS_PER_BATCH],
            metrics=metric_items[:METRICS_PER_BATCH],
        )
        param_items = param_items[PARAMS_PER_BATCH:]
        metric_items = metric_items[METRICS_PER_BATCH:]


def log_files(client: Any, run_id: str, folder: Path, names: tuple[str, ...]) -> None:
    """The named files of `folder` that exist, as artifacts."""
    for name in names:
        path = folder / name
        if path.is_file():
            client.log_artifact(run_id, str(path))


def log_splits(
    client: Any, run_id: str, corpus: pl.DataFrame, name: str, source: str | None = None
) -> dict[str, str]:
    """Each split of `corpus` (train, dev, test) as a dataset input of the run, its digest
    the content hash of the split's corpus columns; returns split -> digest."""
    from mlflow.data import from_polars
    from mlflow.entities import DatasetInput, InputTag

    inputs, digests = [], {}
    columns = [c for c in corpus_mod.REQUIRED if c in corpus.columns]
    for split in SPLITS:
        rows = corpus.filter(pl.col("split") == split).select(columns)
        if rows.height == 0:
            continue
        digest = frame_hash(rows)
        dataset = from_polars(
            rows, source=_source(source), targets="label", name=f"{name}/{split}", digest=digest
        )
        tags = [InputTag(DATASET_CONTEXT, split)]
        inputs.append(DatasetInput(dataset._to_mlflow_entity(), tags))
        digests[split] = digest
    if inputs:
        client.log_inputs(run_id, datasets=inputs)
    return digests


def log_source(client: Any, run_id: str, source: str, digest: str, name: str) -> None:
    """The recipe's input as a dataset input (context `source`), digest the input's hash."""
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import DatasetInput, InputTag

    dataset = MetaDataset(_source(source), name=name, digest=digest[:36])
    client.log_inputs(
        run_id,
        datasets=[DatasetInput(dataset._to_mlflow_entity(), [InputTag(DATASET_CONTEXT, "source")])],
    )


def _source(text: str | None) -> Any:
    """A local file or URL as MLflow's dataset source; anything else (a named dataset, a
    frame given from Python) as a code source carrying the name."""
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.exceptions import MlflowException

    text = redact(text) if text else text  # URL credentials stay out of the store
    if text and (Path(text).exists() or "://" in text):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "can be interpreted in multiple ways": both local
            try:
                local = "://" not in text
                return resolve_dataset_source(str(Path(text).resolve()) if local else text)
            except MlflowException:
                pass
    return CodeDatasetSource(tags={"assay.source": text or ""})
