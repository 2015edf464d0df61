"""Experiment tracking: a finished ablation's report, logged to MLflow.

    ablation:
      tracking:
        mlflow: {uri: "sqlite:///mlruns.db", experiment: sentiment}

or `assay ablate RECIPE --mlflow URI`. Logging happens after the ablation has finished and
reads only its report dict: one parent run for the ablation (the report files as
artifacts) and one nested run per arm and seed, with the arm's fields as params (strings)
and metrics (numbers: the seed's score, the arm's score and delta with their CIs, p-values).
The tracking URI is never written to the report or to errors: it may carry credentials.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from assay.errors import RemoteError, redact, require

log = logging.getLogger(__name__)

REPORT_FILES = ("ablation.json", "ablation.csv", "ablation.html")
MAX_PARAM = 500  # characters; MLflow rejects longer parameter values on some stores
BATCH = 100  # MLflow's limit of params per log_batch call


class MlflowSettings(BaseModel):
    """Where to log: a tracking URI and an experiment name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    uri: str = Field(
        exclude=True,  # not in ablation.json: a server URI may hold credentials
        description="tracking URI: file:/dir, sqlite:///file.db or an http(s) server",
    )
    experiment: str | None = Field(None, description="experiment name (default: the recipe name)")
    artifacts: str | None = Field(
        None,
        description="where a new experiment stores artifacts (MLflow's default: ./mlruns)",
    )


class TrackingSpec(BaseModel):
    """Experiment trackers that receive the finished ablation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mlflow: MlflowSettings | None = Field(None, description="log every arm and seed to MLflow")


def log_tracking(tracking: TrackingSpec | None, report: dict[str, Any], out_dir: Path) -> None:
    """Send a finished ablation to the trackers configured in its spec (if any)."""
    if tracking is not None and tracking.mlflow is not None:
        log_ablation(report, out_dir, tracking.mlflow)


def with_mlflow(recipe: Any, uri: str, experiment: str | None = None) -> Any:
    """A copy of `recipe` whose ablation logs to MLflow at `uri` (the `--mlflow` option)."""
    spec = recipe.ablation
    if spec is None:
        return recipe
    current = spec.tracking.mlflow if spec.tracking is not None else None
    settings = MlflowSettings(uri=uri, experiment=experiment or (current and current.experiment))
    tracking = (spec.tracking or TrackingSpec()).model_copy(update={"mlflow": settings})
    return recipe.model_copy(update={"ablation": spec.model_copy(update={"tracking": tracking})})


def log_ablation(report: dict[str, Any], out_dir: Path | str, settings: MlflowSettings) -> str:
    """Log the report to MLflow; returns the parent run id."""
    require("mlflow", "track", "experiment tracking")
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    out_dir = Path(out_dir)
    name = str(report.get("name") or "ablation")
    experiment = settings.experiment or name
    now = int(time.time() * 1000)
    try:
        client = MlflowClient(tracking_uri=settings.uri)
        found = client.get_experiment_by_name(experiment)
        experiment_id = (
            found.experiment_id
            if found is not None
            else client.create_experiment(experiment, artifact_location=settings.artifacts)
        )
        parent = client.create_run(experiment_id, run_name=name, tags={"assay.kind": "ablation"})
        parent_id = parent.info.run_id
        params, metrics = _split(
            {k: v for k, v in report.items() if k not in ("arms", "warnings", "spec")}
        )
        _log(client, parent_id, params, metrics, now)
        _artifacts(client, parent_id, out_dir, REPORT_FILES)
        seeds = list(report.get("seeds") or [0])
        metric = str(report.get("metric") or "score")
        for row in report.get("arms") or []:
            arm = str(row.get("arm"))
            for index, seed in enumerate(seeds):
                params, metrics = _split(row, seed_index=index, n_seeds=len(seeds), metric=metric)
                params.update(seed=str(seed), model=str(report.get("model")), metric=metric)
                tags = {
                    "mlflow.parentRunId": parent_id,
                    "assay.arm": arm,
                    "assay.seed": str(seed),
                    "assay.kind": str(row.get("kind")),
                }
                child = client.create_run(experiment_id, run_name=f"{arm} / seed {seed}", tags=tags)
                child_id = child.info.run_id
                _log(client, child_id, params, metrics, now)
                _artifacts(client, child_id, out_dir, REPORT_FILES[:1])
                client.set_terminated(child_id)
        client.set_terminated(parent_id)
    except (MlflowException, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RemoteError(
            f"MLflow did not take the ablation at {redact(settings.uri)}: {redact(first)}; "
            f"the results are in {out_dir}"
        ) from None
    log.info("logged ablation %r to MLflow experiment %r (run %s)", name, experiment, parent_id)
    return parent_id


def _split(
    row: dict[str, Any], *, seed_index: int | None = None, n_seeds: int = 0, metric: str = ""
) -> tuple[dict[str, str], dict[str, float]]:
    """Numbers become metrics, everything else a param; a per-seed list gives this seed's value."""
    params: dict[str, str] = {}
    metrics: dict[str, float] = {}
    for key, value in row.items():
        if isinstance(value, bool):
            metrics[key] = float(value)
        elif isinstance(value, (int, float)):
            if math.isfinite(value):
                metrics[key] = float(value)
        elif (
            seed_index is not None
            and isinstance(value, list)
            and len(value) == n_seeds
            and all(isinstance(v, (int, float)) or v is None for v in value)
        ):
            v = value[seed_index]
            if v is not None and math.isfinite(v):
                metrics[f"seed_{metric}" if key == "per_seed" else f"seed_{key}"] = float(v)
        elif value is not None:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            params[key] = text[:MAX_PARAM]
    return params, metrics


def _log(client, run_id: str, params: dict[str, str], metrics: dict[str, float], now: int) -> None:
    from mlflow.entities import Metric, Param

    items = list(params.items())
    for i in range(0, max(len(items), 1), BATCH):
        client.log_batch(
            run_id,
            params=[Param(k, v) for k, v in items[i : i + BATCH]],
            metrics=[Metric(k, v, now, 0) for k, v in metrics.items()] if i == 0 else [],
        )


def _artifacts(client, run_id: str, out_dir: Path, names: tuple[str, ...]) -> None:
    for name in names:
        path = out_dir / name
        if path.exists():
            client.log_artifact(run_id, str(path))
