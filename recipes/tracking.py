"""Experiment tracking: a finished run and its ablation, logged to MLflow.

    tracking:
      mlflow: {uri: "sqlite:///mlruns.db", experiment: sentiment}

at the top of a recipe (the run, and its ablation), under `ablation:` (the ablation only), or
`--mlflow URI` on `assay run` / `assay ablate` (`mlflow=` in Python). Logging happens after
the work has finished and its files are written, and reads only what was written:

- a run: one MLflow run (`assay.kind` run) with the accounting and each step's rows and
  seconds as metrics, the resolved recipe (`recipe.yaml`), manifest.json and the report as
  artifacts, and the input and the train/dev/test splits as dataset inputs whose digests are
  content hashes;
- an ablation: one run (`assay.kind` ablation; a child of the run's when the same folder holds
  a logged run) with the report files, the forest plot, the recipe and the baseline's splits;
  under it one run per arm with the arm's settings as params and its score, delta, CIs and
  p-values as metrics; under each arm one run per seed with that seed's score.

A store that fails (unreachable, refusing, not writable) costs one warning; the results stay
in the folder and are returned. The tracking URI is never written to a report or a warning:
it may carry credentials.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from assay.errors import MissingDependencyError, redact, require
from assay.hashing import file_hash

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
MANIFEST_TAG = "assay.manifest"  # the hash of the run's manifest.json: how an ablation finds it
RUN_FILES = (MANIFEST, "report.html", "report.md")
ABLATION_FILES = ("ablation.json", "ablation.csv", "ablation.html", "forest.svg",
                  "ablation_lang.csv", "learning_curve.csv", "learning_curve.svg",
                  "report.html", "report.md")  # fmt: skip
# Report fields that are files or tables already, not params.
ABLATION_SKIP = ("arms", "warnings", "spec", "by_lang", "learning_curve")
ARM_SKIP = ("arm", "per_seed")
STEP_METRICS = ("n_in", "n_out", "n_dropped", "n_added", "n_modified", "n_rejected", "seconds")


class MlflowSettings(BaseModel):
    """Where to log: a tracking URI and an experiment name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    uri: str = Field(
        exclude=True,  # not in ablation.json or the manifest: a server URI may hold credentials
        description="tracking URI: sqlite:///mlruns.db, an http(s) server, or file:/dir "
        "(MLflow's file store, in maintenance mode)",
    )
    experiment: str | None = Field(None, description="experiment name (default: the recipe name)")
    artifacts: str | None = Field(
        None,
        description="where a new experiment stores artifacts (MLflow's default: ./mlruns)",
    )


class TrackingSpec(BaseModel):
    """Experiment trackers that receive the finished run or ablation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mlflow: MlflowSettings | None = Field(None, description="log the run, arms and seeds to MLflow")


def with_mlflow(recipe: Any, uri: str, experiment: str | None = None) -> Any:
    """A copy of `recipe` whose run and ablation log to MLflow at `uri` (`--mlflow`)."""
    update: dict[str, Any] = {"tracking": _with_uri(recipe.tracking, uri, experiment)}
    spec = recipe.ablation
    if spec is not None and spec.tracking is not None and spec.tracking.mlflow is not None:
        tracking = _with_uri(spec.tracking, uri, experiment)
        update["ablation"] = spec.model_copy(update={"tracking": tracking})
    return recipe.model_copy(update=update)


def _with_uri(tracking: TrackingSpec | None, uri: str, experiment: str | None) -> TrackingSpec:
    current = tracking.mlflow if tracking is not None else None
    settings = MlflowSettings(
        uri=uri,
        experiment=experiment or (current and current.experiment),
        artifacts=current and current.artifacts,
    )
    return (tracking or TrackingSpec()).model_copy(update={"mlflow": settings})


def ablation_tracking(recipe: Any, spec: Any) -> TrackingSpec | None:
    """The ablation's trackers: its own `tracking:`, else the recipe's."""
    own = spec.tracking if spec is not None else None
    return own if own is not None and own.mlflow is not None else recipe.tracking


def check_tracking(tracking: TrackingSpec | None) -> None:
    """Fail before the work, not after it, when tracking is asked for without MLflow."""
    if tracking is not None and tracking.mlflow is not None:
        require("mlflow", "track", "experiment tracking")


def track_run(
    tracking: TrackingSpec | None, run_dir: Path, manifest: dict[str, Any], corpus: pl.DataFrame
) -> str | None:
    """Log a finished run directory; returns the MLflow run id, None when not tracked or
    when the store failed (one warning)."""
    if tracking is None or tracking.mlflow is None:
        return None
    settings = tracking.mlflow

    def body(client: Any, runs: _Runs) -> str:
        from assay.recipes import tracking_mlflow as mf

        name = str(manifest["name"])
        experiment = mf.experiment_id(client, settings.experiment or name, settings.artifacts)
        tags = {"assay.kind": "run", "assay.run_dir": str(run_dir.resolve())}
        if (run_dir / MANIFEST).is_file():
            tags[MANIFEST_TAG] = file_hash(run_dir / MANIFEST)
        run_id = runs.start(experiment, name, tags)
        source = str((manifest.get("inputs") or [{}])[0].get("source") or "")
        params = {
            "seed": str(manifest["seed"]),
            "engine": str(manifest.get("engine")),
            "input": redact(source),
            "steps": ", ".join(r["step"] for r in manifest["steps"]) or "none",
            "assay_version": str(manifest.get("assay_version")),
        }
        mf.log_values(client, run_id, params, run_metrics(manifest))
        client.log_dict(run_id, manifest["recipe"], "recipe.yaml")
        mf.log_files(client, run_id, run_dir, RUN_FILES)
        input_hash = (manifest.get("inputs") or [{}])[0].get("hash")
        if input_hash:
            mf.log_source(client, run_id, source, input_hash, f"{name}/input")
        mf.log_splits(client, run_id, corpus, name, source=str(run_dir / "corpus.parquet"))
        runs.end(run_id)
        return run_id

    return _guarded(settings, run_dir, "run", body)


def run_metrics(manifest: dict[str, Any]) -> dict[str, float]:
    """The run's accounting, rows per split and seconds, and each step's counts and seconds
    (`steps/00_clean/seconds`)."""
    acc = manifest["accounting"]
    metrics = {k: float(v) for k, v in acc.items() if isinstance(v, int) and k != "balanced"}
    metrics["dropped"] = float(acc["dropped_at_load"] + acc["dropped_by_steps"])
    metrics["seconds"] = float(manifest.get("seconds") or 0.0)
    for split, rows in (manifest.get("splits") or {}).items():
        metrics[f"rows_{split}"] = float(rows)
    for index, report in enumerate(manifest["steps"]):
        prefix = f"steps/{index:02d}_{report['step']}"
        for key in STEP_METRICS:
            value = report.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                metrics[f"{prefix}/{key}"] = float(value)
        metrics[f"{prefix}/cached"] = float(bool(report.get("cached")))
    return metrics


def track_ablation(
    tracking: TrackingSpec | None,
    report: dict[str, Any],
    out_dir: Path,
    recipe: dict[str, Any] | None = None,
    corpus: pl.DataFrame | None = None,
) -> str | None:
    """Log a finished ablation (its report and the files beside it); `recipe` is the resolved
    recipe, `corpus` the baseline corpus whose splits become dataset inputs. Returns the
    ablation's MLflow run id, None when not tracked or when the store failed (one warning)."""
    if tracking is None or tracking.mlflow is None:
        return None
    settings = tracking.mlflow

    def body(client: Any, runs: _Runs) -> str:
        from assay.recipes import tracking_mlflow as mf

        name = str(report.get("name") or "ablation")
        experiment = mf.experiment_id(client, settings.experiment or name, settings.artifacts)
        parent = None
        if (out_dir / MANIFEST).is_file():  # `assay run` logged this folder's run first
            parent = mf.find_run(client, experiment, MANIFEST_TAG, file_hash(out_dir / MANIFEST))
        ablation_id = runs.start(experiment, name, {"assay.kind": "ablation"}, parent)
        mf.log_values(client, ablation_id, *mf.split_values(report, ABLATION_SKIP))
        mf.log_files(client, ablation_id, out_dir, ABLATION_FILES)
        if recipe is not None:
            client.log_dict(ablation_id, recipe, "recipe.yaml")
        if corpus is not None:
            mf.log_splits(client, ablation_id, corpus, f"{name}/baseline")
        seeds = list(report.get("seeds") or [])
        metric = str(report.get("metric") or "score")
        common = {"model": str(report.get("model")), "metric": metric}
        for row in report.get("arms") or []:
            arm = str(row.get("arm"))
            tags = {"assay.kind": str(row.get("kind")), "assay.arm": arm}
            arm_id = runs.start(experiment, arm, tags, ablation_id)
            params, metrics = mf.split_values(row, ARM_SKIP)
            mf.log_values(client, arm_id, {**params, **common, "arm": arm}, metrics)
            per_seed = row.get("per_seed") or []
            for seed, score in zip(seeds, per_seed, strict=False):
                seed_tags = {**tags, "assay.kind": "seed", "assay.seed": str(seed)}
                seed_id = runs.start(experiment, f"{arm} / seed {seed}", seed_tags, arm_id)
                _, seed_metrics = mf.split_values({metric: score})
                mf.log_values(client, seed_id, {**common, "arm": arm, "seed": str(seed)},
                              seed_metrics)  # fmt: skip
                runs.end(seed_id)
            runs.end(arm_id)
        runs.end(ablation_id)
        return ablation_id

    return _guarded(settings, out_dir, "ablation", body)


class _Runs:
    """The runs this log opened: ended as FINISHED one by one, or all FAILED on an error,
    so no run is left RUNNING in the store."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.open: list[str] = []

    def start(self, experiment: str, name: str, tags: dict[str, str], parent=None) -> str:
        from assay.recipes.tracking_mlflow import start_run

        run_id = start_run(self.client, experiment, name, tags, parent)
        self.open.append(run_id)
        return run_id

    def end(self, run_id: str) -> None:
        self.client.set_terminated(run_id)
        self.open.remove(run_id)

    def fail(self, errors: tuple[type[BaseException], ...]) -> None:
        for run_id in reversed(self.open):
            try:
                self.client.set_terminated(run_id, "FAILED")
            except errors:
                return  # the store is gone; nothing more to tidy


def _guarded(
    settings: MlflowSettings, folder: Path, what: str, body: Callable[[Any, _Runs], str]
) -> str | None:
    """Run `body` in an MLflow session; a store's failure becomes one warning."""
    where = f"the results are in {folder}"
    try:
        require("mlflow", "track", "experiment tracking")
    except MissingDependencyError as exc:
        log.warning("the %s was not logged to MLflow: %s; %s", what, exc, where)
        return None
    from assay.recipes.tracking_mlflow import FILE_STORE_SWITCH, failures, session

    errors = failures()
    runs = None
    try:
        with session(settings.uri) as client:
            runs = _Runs(client)
            try:
                run_id = body(client, runs)
            except errors:
                runs.fail(errors)
                raise
    except errors as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if "maintenance mode" in first:  # MLflow's refusal of its file store
            first = (
                f"MLflow refuses its file store while {FILE_STORE_SWITCH} is "
                f"{os.environ.get(FILE_STORE_SWITCH)!r}; use sqlite:///mlruns.db, or set "
                f"{FILE_STORE_SWITCH}=true"
            )
        log.warning(
            "MLflow did not take the %s at %s: %s; %s",
            what,
            redact(settings.uri),
            redact(first)[:300],
            where,
        )
        return None
    log.info("logged the %s to MLflow (run %s)", what, run_id)
    return run_id
