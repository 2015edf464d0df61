"""The runner: load the input, run the steps with caching and checks, write the run directory.

After every step it checks the books (`n_out = n_in - dropped + added`, no row lost without a
record), the corpus schema, and that dev/test rows were not touched by steps that must not
touch them. Step outputs are cached by (input key, step code, config, seed, position).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import platform
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import ValidationError

from assay import __version__
from assay import corpus as corpus_mod
from assay.books import LINEAGE_SCHEMA
from assay.cache import StepCache, step_key
from assay.context import RunContext
from assay.curate import io
from assay.curate.streaming_read import dedup_while_reading
from assay.engine import engine_seconds
from assay.errors import RecipeError, StepError, redact_data, shorten
from assay.hashing import frame_hash
from assay.progress import Progress, SilentProgress
from assay.recipes.results import RunResult
from assay.recipes.schema import Recipe, StepSpec, dump_recipe, load_recipe
from assay.recipes.tracking import check_tracking, track_run
from assay.rundir import (
    CORPUS,
    DROPPED,
    LINEAGE,
    MANIFEST,
    REPORT,
    RunDirectory,
    default_run_dir,
)
from assay.step import (
    DROP_COLUMNS,
    Step,
    StepReport,
    StepResult,
    check_accounting,
    check_eval_protected,
)

log = logging.getLogger(__name__)

IN_MEMORY = "<corpus given from Python>"

VERSIONED_PACKAGES = (
    "polars", "pyarrow", "numpy", "pydantic", "torch", "transformers", "peft",
    "sentence-transformers", "scikit-learn", "cleanlab", "nlpaug", "nltk", "ray",
    "label-studio-sdk", "datasets", "numba",
)  # fmt: skip


@dataclasses.dataclass
class PipelineResult:
    corpus: pl.DataFrame
    dropped: pl.DataFrame
    lineage: pl.DataFrame
    reports: list[StepReport]
    findings: dict[str, pl.DataFrame]
    key: str


def build_steps(specs: list[StepSpec] | list[Any]) -> list[Step]:
    """Instantiate steps from specs (StepSpec objects or raw `{name: params}` items)."""
    from assay.recipes.schema import parse_step

    return [
        (s if isinstance(s, StepSpec) else parse_step(s, f"steps[{i}]")).build()
        for i, s in enumerate(specs)
    ]


def load_input(recipe: Recipe) -> io.Loaded:
    """Read the recipe's input: the corpus, rows dropped at load, input key, rows read and
    warnings."""
    return io.read(recipe.input)


def run_steps(
    corpus: pl.DataFrame,
    steps: list[Step],
    ctx: RunContext,
    *,
    cache: StepCache | None = None,
    input_key: str | None = None,
    protect_eval: bool = True,
    start: int = 0,
) -> PipelineResult:
    """Run steps in order with caching and the bookkeeping checks; `start` is the position
    of the first of them in the recipe."""
    key = input_key or frame_hash(corpus)
    dropped: list[pl.DataFrame] = []
    lineage: list[pl.DataFrame] = []
    findings: dict[str, pl.DataFrame] = {}
    reports: list[StepReport] = []
    for index, step in enumerate(steps, start):
        sctx = ctx.for_step(index, step.name)
        key = step_key(key, step, ctx.seed, index)
        use_cache = cache is not None and step.cacheable
        result = cache.get(key) if use_cache else None
        if result is None:
            started, waited = time.perf_counter(), engine_seconds()
            result = step.apply(corpus, sctx)
            check_accounting(corpus, result)
            check_eval_protected(corpus, result, step, protect_eval)
            try:
                corpus_mod.validate(result.corpus)
            except corpus_mod.SchemaError as exc:
                raise StepError(f"step {step.name!r} produced an invalid corpus: {exc}") from None
            result.report.seconds = round(time.perf_counter() - started, 4)
            result.report.engine_seconds = round(engine_seconds() - waited, 4)
            if use_cache:
                _cache_put(cache, key, result)
            elif not step.cacheable:
                # Output depends on more than the input (a remote service): later steps are
                # keyed by what it actually returned.
                key = step_key(frame_hash(result.corpus), step, ctx.seed, index)
        log.info(
            "%s: %d -> %d rows (%d dropped, %d added)%s",
            step.name,
            result.report.n_in,
            result.report.n_out,
            result.report.n_dropped,
            result.report.n_added,
            " [cached]" if result.report.cached else "",
        )
        corpus = result.corpus
        reports.append(result.report)
        if result.dropped is not None and result.dropped.height:
            dropped.append(result.dropped)
        if result.lineage is not None and result.lineage.height:
            lineage.append(result.lineage)
        if result.findings is not None:
            findings[f"{index:02d}_{step.name}"] = result.findings
    return PipelineResult(
        corpus=corpus,
        dropped=_concat(dropped, corpus_mod.empty(corpus_mod.is_multilabel(corpus))),
        lineage=_concat(
            lineage,
            pl.DataFrame(schema=LINEAGE_SCHEMA),
        ),
        reports=reports,
        findings=findings,
        key=key,
    )


def _after_first(first: StepResult, rest: PipelineResult) -> PipelineResult:
    """The pipeline's result with the result of a first step run apart put in front."""
    dropped = [f for f in (first.dropped, rest.dropped) if f is not None and f.height]
    lineage = [f for f in (first.lineage, rest.lineage) if f is not None and f.height]
    findings = {} if first.findings is None else {f"00_{first.report.step}": first.findings}
    return dataclasses.replace(
        rest,
        dropped=pl.concat(dropped, how="diagonal_relaxed") if dropped else rest.dropped,
        lineage=pl.concat(lineage, how="diagonal_relaxed") if lineage else rest.lineage,
        reports=[first.report, *rest.reports],
        findings={**findings, **rest.findings},
    )


def _cache_put(cache: StepCache, key: str, result: Any) -> None:
    try:
        cache.put(key, result)
    except OSError as exc:
        log.warning("could not write the step cache (%s); running without it", exc.strerror or exc)
        cache.enabled = False


def _concat(frames: list[pl.DataFrame], empty: pl.DataFrame) -> pl.DataFrame:
    if frames:
        return pl.concat(frames, how="diagonal_relaxed")
    if "id" in empty.columns and "before" not in empty.columns:
        return empty.with_columns(
            step=pl.lit(None, dtype=pl.String),
            reason=pl.lit(None, dtype=pl.String),
            generated=pl.lit(None, dtype=pl.Boolean),
        )
    return empty


def run_recipe(
    recipe: Recipe | str | Path,
    out: str | Path | None = None,
    *,
    seed: int | None = None,
    progress: Progress | None = None,
    cache: StepCache | None = None,
    corpus: Any = None,
) -> RunResult:
    """Run a recipe end to end and write its run directory. `corpus` (a corpus, e.g. from
    `assay.from_frame`, as polars, pandas or Arrow) replaces reading the recipe's input.

    The run is staged beside `out` and swapped in only when complete (manifest last), so a
    failure leaves the previous run as it was; `out` is checked for writability first.
    """
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    if seed is not None:
        recipe = _with_seed(recipe, seed)
    check_tracking(recipe.tracking)
    run_dir = RunDirectory(out or default_run_dir(recipe.name)).prepare()
    try:
        result = _build_run(recipe, run_dir, progress, cache, corpus)
    except BaseException:
        run_dir.abort()
        raise
    run_dir.commit()
    # After the commit: a tracking failure is one warning and the run stays written.
    track_run(recipe.tracking, run_dir.path, result.manifest, result.pipeline.corpus)
    return result


def _with_seed(recipe: Recipe, seed: int) -> Recipe:
    try:
        data = recipe.model_dump(exclude={"steps"})
        # Sections whose dump leaves out a value (a tracking URI) are passed as they are.
        kept = {"steps": recipe.steps, "ablation": recipe.ablation, "tracking": recipe.tracking}
        return Recipe.model_validate({**data, **kept, "seed": seed})
    except ValidationError as exc:
        raise RecipeError(f"seed: {exc.errors()[0]['msg']} (got {shorten(seed)})") from None


def _usable_cache(cache: StepCache) -> StepCache:
    """The cache, or a disabled one (with a warning) when its folder cannot be written."""
    if not cache.enabled:
        return cache
    root = cache.root
    existing = next((p for p in [root, *root.parents] if p.exists()), None)
    if existing is None or (existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)):
        return cache
    log.warning(
        "the step cache %s is not writable; running without it (set ASSAY_CACHE_DIR to a "
        "writable folder, or run with --no-cache)",
        root,
    )
    return StepCache(root, enabled=False)


def given_input(given: Any, options: io.ReadOptions | None = None) -> io.Loaded:
    """A table handed in from Python (polars, pandas, Arrow, a Hugging Face dataset), shaped
    like what reading a source gives. A corpus is taken as it is; raw data is mapped with
    the recipe's input options (`text_column`, `labels`...), as a file would be, and its
    rows without text are dropped at load."""
    from assay.tables import to_polars

    options = options or io.ReadOptions(source=IN_MEMORY)
    table = to_polars(given, options.label_column)
    if corpus_mod.is_corpus_table(table):
        corpus = corpus_mod.as_corpus(table, "the corpus given to run_recipe")
        dropped = corpus_mod.empty(corpus_mod.is_multilabel(corpus))
    else:
        corpus, dropped = io.to_corpus(table, options)
    return io.Loaded(
        corpus=corpus,
        dropped=dropped,
        rows_read=table.height,
        input_hash=frame_hash(corpus),
        source=IN_MEMORY,
    )


def _build_run(
    recipe: Recipe,
    run_dir: RunDirectory,
    progress: Progress | None,
    cache: StepCache | None,
    given: Any = None,
) -> RunResult:
    ctx = RunContext(
        seed=recipe.seed,
        run_dir=run_dir.path,
        engine=recipe.engine_name,
        options=recipe.engine_options,
        progress=progress or SilentProgress(),
    )
    started = time.perf_counter()
    steps = build_steps(recipe.steps)
    if cache is None:
        cache = StepCache(enabled=recipe.cache)
    cache = _usable_cache(cache)
    # A Parquet directory whose first step is exact dedup is deduplicated while it is read.
    streamed = None if given is not None else dedup_while_reading(recipe.input, steps, ctx, cache)
    if streamed is not None:
        loaded = streamed.loaded
    else:
        loaded = load_input(recipe) if given is None else given_input(given, recipe.input)
    corpus, load_dropped, input_key, rows_read = (
        loaded.corpus,
        loaded.dropped,
        loaded.input_hash,
        loaded.rows_read,
    )
    corpus_mod.check_corpus(corpus, f"recipe {recipe.name!r} input", recipe.input.labels)
    done = 0 if streamed is None else 1
    result = run_steps(
        corpus,
        steps[done:],
        ctx,
        cache=cache,
        input_key=input_key if streamed is None else streamed.key,
        protect_eval=recipe.protect_eval,
        start=done,
    )
    if streamed is not None:
        result = _after_first(streamed.result, result)
    dropped = (
        pl.concat([load_dropped, result.dropped], how="diagonal_relaxed")
        if load_dropped.height
        else result.dropped
    )
    dropped = dropped.select(
        [
            *corpus_mod.REQUIRED,
            *DROP_COLUMNS,
            *[c for c in dropped.columns if c not in corpus_mod.REQUIRED and c not in DROP_COLUMNS],
        ]
    )
    result.dropped = dropped
    run_dir.write_table(CORPUS, result.corpus)
    run_dir.write_table(DROPPED, dropped)
    run_dir.write_table(LINEAGE, result.lineage)
    for name, frame in result.findings.items():
        run_dir.write_table(f"findings/{name}.parquet", frame)
    outputs = [CORPUS, DROPPED, LINEAGE]
    for fmt in recipe.output.formats:
        name = f"corpus.{fmt}" if fmt != "hf" else "corpus_hf"
        io.write(result.corpus, run_dir / name, fmt, hf_all_columns=recipe.output.hf_all_columns)
        outputs.append(name)
    manifest = _manifest(
        recipe, input_key, rows_read, load_dropped, result, time.perf_counter() - started
    )
    manifest["outputs"] = run_dir.hashes(outputs)
    manifest["warnings"] = list(loaded.warnings)
    if recipe.output.report:
        from assay.audits.report import render_run_report

        render_run_report(run_dir, manifest, result.corpus, dropped)
        manifest["outputs"][REPORT] = "report.html"
        manifest["outputs"]["report.md"] = "report.md"
    run_dir.write_manifest(manifest)
    return RunResult(run_dir, manifest, result)


def _manifest(
    recipe: Recipe,
    input_key: str,
    rows_read: int,
    load_dropped: pl.DataFrame,
    result: PipelineResult,
    seconds: float,
) -> dict[str, Any]:
    inputs_dropped = result.dropped.filter(~pl.col("generated").fill_null(False))
    n_dropped = inputs_dropped.height
    n_added = sum(r.n_added for r in result.reports)
    accounting = {
        "rows_read": rows_read,
        "dropped_at_load": load_dropped.height,
        "dropped_by_steps": n_dropped - load_dropped.height,
        "added": n_added,
        "rows_out": result.corpus.height,
        "generated_rejected": result.dropped.height - n_dropped,
        "balanced": rows_read - n_dropped + n_added == result.corpus.height,
    }
    if not accounting["balanced"]:
        raise StepError(f"the run lost rows: {accounting}")
    # URL credentials in a step's params (a server URL) never reach the manifest.
    return redact_data(
        {
            "assay_version": __version__,
            "name": recipe.name,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "seed": recipe.seed,
            "engine": recipe.engine_name,
            "recipe": dump_recipe(recipe),
            "inputs": [{"source": recipe.input.source, "hash": input_key, "rows_read": rows_read}],
            "accounting": accounting,
            "steps": [r.to_dict() for r in result.reports],
            "cached_steps": [r.step for r in result.reports if r.cached],
            "drop_reasons": _drop_reasons(result.dropped),
            "splits": dict(result.corpus.group_by("split").len().sort("split").iter_rows()),
            "labels": _label_counts(result.corpus),
            "versions": _versions(),
            "seconds": round(seconds, 3),
            "files": [MANIFEST],
        }
    )


def _drop_reasons(dropped: pl.DataFrame) -> list[dict[str, Any]]:
    if dropped.height == 0:
        return []
    counts = (
        dropped.group_by("step", "reason", "generated")
        .len()
        .sort(["step", "len"], descending=[False, True])
    )
    return counts.rename({"len": "rows"}).to_dicts()


def _label_counts(corpus: pl.DataFrame) -> dict[str, int]:
    col = corpus["label"].explode() if corpus_mod.is_multilabel(corpus) else corpus["label"]
    counts = col.fill_null("<unlabelled>").value_counts().sort(col.name)
    return dict(counts.iter_rows())


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "assay": __version__}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions
