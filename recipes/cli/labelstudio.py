"""`assay ls`: sync a corpus with a Label Studio project (init, push, pull, status, round,
review).

The token is read from an environment variable (ASSAY_LS_TOKEN, or the one named with
--token-env); it is never printed or written. The URL comes from --url or ASSAY_LS_URL.
Sync state (the last pull, the annotations table, consensus and agreement) lives in a sync
directory, by default .assay/labelstudio/<project>.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from assay.curate.active import STRATEGIES
from assay.errors import InputError
from assay.recipes.cli.examples import examples
from assay.recipes.cli.group import AssayGroup
from assay.recipes.cli.options import (
    batch_option,
    corpus_argument,
    json_option,
    model_option,
    out_file_option,
    overlap_option,
    quiet_option,
    seed_option,
)

_CONNECTION_OPTIONS = (
    click.option(
        "--url",
        envvar=["ASSAY_LS_URL", "LABEL_STUDIO_URL"],
        help="Label Studio URL (or set ASSAY_LS_URL or LABEL_STUDIO_URL).",
        required=True,
    ),
    click.option(
        "--token-env",
        default="ASSAY_LS_TOKEN",
        show_default=True,
        help="Name of the environment variable holding the API token.",
    ),
    click.option("--project", "-p", required=True, help="Project id or title."),
    click.option(
        "--dir",
        "sync_dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Sync directory (default .assay/labelstudio/<project>).",
    ),
    quiet_option,
    click.option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        expose_value=False,
        callback=lambda ctx, _param, value: ctx.meta.__setitem__("ls_timeout", value),
        help="Seconds to wait for each answer from the server (or set ASSAY_LS_TIMEOUT; "
        "default 300).",
    ),
)


def _connection_options(fn):
    """The options every `ls` command shares: server, token variable, project, sync dir."""
    for option in reversed(_CONNECTION_OPTIONS):
        fn = option(fn)
    return fn


def _corpus_option(help: str, required: bool = True):
    """`--corpus`: a corpus file or run directory the command reads."""
    return click.option(
        "--corpus",
        "corpus",
        type=click.Path(exists=True, path_type=Path),
        required=required,
        help=help,
    )


def _client(url: str, token_env: str):
    from assay.curate.labelstudio.client import Connection

    timeout = click.get_current_context().meta.get("ls_timeout")
    return Connection.from_env(url, token_env, timeout).client()


def _sync_dir(sync_dir: Path | None, project: str) -> Path:
    if sync_dir is not None:
        return sync_dir
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", project).strip("-") or "project"
    return Path(".assay") / "labelstudio" / slug


def _progress(quiet: bool):
    from assay.progress import RichProgress, SilentProgress

    if quiet:
        return SilentProgress()
    from rich.console import Console

    return RichProgress(Console(stderr=True))


@click.group(
    "ls",
    cls=AssayGroup,
    epilog=examples(
        "assay ls init corpus.parquet -p reviews",
        "assay ls push corpus.parquet -p reviews --only-unlabeled",
        "assay ls pull -p reviews --corpus corpus.parquet --out labelled.parquet",
    ),
)
def ls() -> None:
    """Sync a corpus with a Label Studio project: init, push, pull, status, round, review."""


@ls.command(
    "init",
    epilog=examples(
        "assay ls init corpus.parquet -p reviews",
        "assay ls init -p reviews --labels negative,positive --url http://localhost:8080",
    ),
)
@corpus_argument(required=False)
@_connection_options
@click.option("--labels", help="Comma-separated label set (default: the corpus's labels).")
@click.option("--multilabel", is_flag=True, help="Annotators may choose several labels.")
def init_cmd(
    corpus: Path | None,
    url: str,
    token_env: str,
    project: str,
    sync_dir: Path | None,
    quiet: bool,
    labels: str | None,
    multilabel: bool,
) -> None:
    """Create a project with a label config from the corpus's labels, or check an existing one."""
    from assay import corpus as corpus_mod
    from assay.curate import io
    from assay.curate.labelstudio.config import init_project

    label_set: list[str] = []
    if corpus is not None:
        frame = io.read_corpus(corpus)
        label_set = corpus_mod.label_set(frame)
        multilabel = multilabel or corpus_mod.is_multilabel(frame)
    if labels:
        label_set = [x.strip() for x in labels.split(",") if x.strip()]
    if not label_set:
        raise InputError("no labels: give a labelled CORPUS or --labels a,b,c")
    client = _client(url, token_env)
    made = init_project(client, project, label_set, multilabel)
    verb = "created" if made.created else "attached to"
    click.echo(
        f"{verb} project {made.id} ({made.title}) with labels {', '.join(made.config.labels)}"
    )


@ls.command(
    "push",
    epilog=examples(
        "assay ls push corpus.parquet -p reviews --only-unlabeled",
        "assay ls push corpus.parquet -p reviews --strategy hybrid --batch 100",
    ),
)
@corpus_argument()
@_connection_options
@click.option("--only-unlabeled", is_flag=True, help="Push only rows without a label.")
@click.option("--flagged", help="Push only rows where this boolean column is true.")
@click.option("--split", "splits", multiple=True, help="Push only rows of this split (repeat).")
@click.option("--sample", type=int, help="Push a random sample of this many rows.")
@seed_option(default=13, of="--sample")
@click.option(
    "--predictions",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Parquet/CSV with id, label (+ score, model_version): pre-annotations for the tasks.",
)
@click.option("--model-version", help="Model version named on the predictions.")
@click.option(
    "--batch-size", type=int, default=10_000, show_default=True, help="Tasks per import request."
)
@click.option(
    "--strategy",
    type=click.Choice(STRATEGIES),
    help="Active learning: push --batch unlabelled rows chosen by this strategy (the fast "
    "model trains on the labelled train rows); each task records why it was chosen.",
)
@batch_option("Rows per active-learning batch.")
@overlap_option
def push_cmd(
    corpus: Path,
    url: str,
    token_env: str,
    project: str,
    sync_dir: Path | None,
    quiet: bool,
    only_unlabeled: bool,
    flagged: str | None,
    splits: tuple[str, ...],
    sample: int | None,
    seed: int,
    predictions: Path | None,
    model_version: str | None,
    batch_size: int,
    strategy: str | None,
    batch: int,
    overlap: int,
) -> None:
    """Push CORPUS rows as tasks: new rows add tasks, changed text updates them, repeats do nothing."""
    import numpy as np
    import polars as pl

    from assay.curate import io
    from assay.curate.labelstudio import sync as ls_sync

    frame = io.read_corpus(corpus)
    rows = ls_sync.select_rows(
        frame,
        only_unlabeled=only_unlabeled,
        flagged=flagged,
        splits=list(splits) or None,
        sample=sample,
        rng=np.random.default_rng(seed),
    )
    preds = None
    if predictions is not None:
        preds = (
            pl.read_parquet(predictions)
            if predictions.suffix == ".parquet"
            else pl.read_csv(predictions)
        )
    client = _client(url, token_env)
    task_data, overlap_ids = None, []
    if strategy:
        from assay.curate.labelstudio import round as round_mod
        from assay.curate.labelstudio.config import get_project

        found = get_project(client, project)
        tasks = {(t.get("data") or {}).get("assay_id") for t in client.tasks(found.id)}
        chosen = round_mod.select_batch(
            frame,
            batch,
            strategy,
            np.random.default_rng(seed),
            exclude=(set(frame["id"].to_list()) - set(rows["id"].to_list())) | tasks,
            seed=seed,
            overlap=overlap,
        )
        rows = rows.filter(pl.col("id").is_in(chosen.selection.ids))
        preds, task_data = chosen.predictions, chosen.reasons
        sel = chosen.selection
        overlap_ids = [i for i, o in zip(sel.ids, sel.overlap, strict=True) if o]
    report = ls_sync.push(
        client,
        project,
        rows,
        predictions=preds,
        model_version=model_version,
        batch_size=batch_size,
        state_dir=_sync_dir(sync_dir, project),
        progress=_progress(quiet),
        task_data=task_data,
        overlap_ids=overlap_ids,
    )
    click.echo(
        f"project {report.project}: {report.n_created} created, {report.n_updated} updated, "
        f"{report.n_unchanged} unchanged, {report.n_duplicates_removed} duplicates removed "
        f"({report.n_tasks} tasks for {report.n_selected} rows, {report.seconds:.1f} s)"
    )


@ls.command(
    "pull",
    epilog=examples(
        "assay ls pull -p reviews --corpus corpus.parquet --out labelled.parquet",
        "assay ls pull -p reviews --corpus corpus.parquet --out labelled.parquet --full",
    ),
)
@_connection_options
@_corpus_option(
    "Apply resolved labels to this corpus (default: a corpus of the project's tasks).",
    required=False,
)
@out_file_option("the labelled corpus")
@click.option("--full", is_flag=True, help="Pull every task, not only those updated since.")
@click.option(
    "--method",
    type=click.Choice(["majority", "crowdlab"]),
    default="majority",
    show_default=True,
    help="How to resolve one label from several annotators.",
)
@click.option(
    "--pred-probs",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Parquet with id and one probability column per label (for crowdlab).",
)
def pull_cmd(
    url: str,
    token_env: str,
    project: str,
    sync_dir: Path | None,
    quiet: bool,
    corpus: Path | None,
    out: Path | None,
    full: bool,
    method: str,
    pred_probs: Path | None,
) -> None:
    """Pull annotations updated since the last pull; resolve labels; report agreement."""
    import polars as pl

    from assay.curate import io
    from assay.curate.labelstudio import sync as ls_sync

    probs = pl.read_parquet(pred_probs) if pred_probs is not None else None
    client = _client(url, token_env)
    directory = _sync_dir(sync_dir, project)
    result = ls_sync.pull(
        client,
        project,
        directory,
        full=full,
        method=method,
        pred_probs=probs,
        progress=_progress(quiet),
    )
    s = result.summary()
    click.echo(
        f"project {s['project']}: {s['n_tasks_pulled']} tasks pulled "
        f"({s['n_annotations_pulled']} annotations); {s['n_annotations']} annotations, "
        f"{s['n_skipped']} skipped, {s['n_resolved']} examples resolved, "
        f"{s['n_disagreements']} disagreements"
    )
    overall = s["agreement"]
    if overall:
        click.echo(
            "agreement: "
            + ", ".join(
                f"{k} {overall.get(k)}"
                for k in ("cohen_kappa", "fleiss_kappa", "krippendorff_alpha")
            )
        )
    if result.unknown_labels.height:
        found = sorted(set(result.unknown_labels["unknown_labels"].explode().to_list()))
        click.secho(
            f"warning: {result.unknown_labels.height} annotations use labels outside the "
            f"label set: {found} (see {directory / ls_sync.ANNOTATIONS})",
            fg="yellow",
            err=True,
        )
    if out is not None:
        frame = (
            ls_sync.apply_labels(io.read_corpus(corpus), result.consensus)
            if corpus is not None
            else ls_sync.corpus_from_pull(result)
        )
        io.write(frame, out)
        click.echo(f"wrote {frame.height} rows to {out}")
    click.echo(f"sync directory: {directory}")


@ls.command(
    "status", epilog=examples("assay ls status -p reviews", "assay ls status -p reviews --json")
)
@_connection_options
@json_option
def status_cmd(
    url: str, token_env: str, project: str, sync_dir: Path | None, quiet: bool, as_json: bool
) -> None:
    """Counts of tasks, annotated tasks and disagreements, and the last sync times."""
    from assay.curate.labelstudio import sync as ls_sync

    client = _client(url, token_env)
    info = ls_sync.status(client, project, _sync_dir(sync_dir, project))
    if as_json:
        click.echo(json.dumps(info))
        return
    for key in (
        "project",
        "title",
        "n_tasks",
        "n_annotated",
        "n_disagreements",
        "last_push",
        "last_pull",
    ):
        value = info.get(key)
        click.echo(f"{key:<16} {value if value is not None else '-'}")
    if info.get("rounds"):
        click.echo("rounds")
        click.echo(_rounds_table(info["rounds"]))


def _rounds_table(rounds: list[dict]) -> str:
    lines = [f"  {'#':>3}  {'at':<20}  {'labels':>6}  {'pushed':>6}  {'strategy':<12}  dev metric"]
    for r in rounds:
        m = r.get("metric")
        metric = (
            f"{m['metric']} {m['estimate']:.3f} [{m['low']:.3f}, {m['high']:.3f}]" if m else "-"
        )
        lines.append(
            f"  {r['round']:>3}  {str(r['at'])[:19]:<20}  {r['n_labels']:>6}  "
            f"{r['push']['n_created']:>6}  {r['strategy']:<12}  {metric}"
        )
    return "\n".join(lines)


@ls.command(
    "round",
    epilog=examples(
        "assay ls round -p reviews --corpus corpus.parquet --strategy hybrid --batch 100"
    ),
)
@_connection_options
@_corpus_option(
    "The corpus: labelled train rows, unlabelled rows to choose from, dev rows to score."
)
@click.option(
    "--strategy",
    type=click.Choice(STRATEGIES),
    default="hybrid",
    show_default=True,
    help="How the next batch is chosen.",
)
@batch_option("Tasks to push this round.")
@model_option(default="fast")
@overlap_option
@seed_option(default=13, of="the round (model and selection)")
@out_file_option("the corpus with the labels pulled so far")
def round_cmd(
    url: str,
    token_env: str,
    project: str,
    sync_dir: Path | None,
    quiet: bool,
    corpus: Path,
    strategy: str,
    batch: int,
    model: str,
    overlap: int,
    seed: int,
    out: Path | None,
) -> None:
    """One active-learning round: pull new annotations, retrain, score on dev, push the next batch."""
    from assay.curate import io
    from assay.curate.labelstudio import round as round_mod

    client = _client(url, token_env)
    directory = _sync_dir(sync_dir, project)
    report = round_mod.run_round(
        client,
        project,
        io.read_corpus(corpus),
        directory,
        strategy=strategy,
        batch=batch,
        model=model,
        seed=seed,
        overlap=overlap,
        progress=_progress(quiet),
    )
    click.echo(
        f"round {report.round}: {report.n_new_annotations} new annotations, "
        f"{report.n_labels} labels; pushed {report.push['n_created']} tasks "
        f"({report.strategy}, model {report.model_version}, {report.seconds:.1f} s)"
    )
    m = report.metric
    if m:
        click.echo(
            f"dev {m['metric']} {m['estimate']:.3f} (95% CI {m['low']:.3f} to {m['high']:.3f}, "
            f"{m['n_dev']} rows)"
        )
    else:
        click.echo("no labelled dev rows to score the model on")
    if out is not None and report.corpus is not None:
        io.write(report.corpus, out)
        click.echo(f"wrote {report.corpus.height} rows to {out}")
    click.echo(f"sync directory: {directory}")


@ls.command(
    "review",
    epilog=examples(
        "assay ls review -p doubts --corpus runs/curate",
        "assay ls review -p doubts --corpus runs/curate --pull --out runs/reviewed",
    ),
)
@_connection_options
@_corpus_option("The corpus with the rows in doubt (a run directory or its corpus.parquet).")
@click.option(
    "--source",
    default="label_noise",
    show_default=True,
    help="Rows to review: label_noise (or label_noise:<step>), disagreement, or a boolean column.",
)
@click.option(
    "--disagreements-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="With --source disagreement: the annotation project's sync directory.",
)
@click.option(
    "--pull",
    "pull_decisions",
    is_flag=True,
    help="Pull the reviewers' decisions and apply them: relabels into the lineage, rejected "
    "rows dropped.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/ls-review"),
    show_default=True,
    help="The run directory written: corpus, dropped rows, lineage and what was pushed.",
)
def review_cmd(
    url: str,
    token_env: str,
    project: str,
    sync_dir: Path | None,
    quiet: bool,
    corpus: Path,
    source: str,
    disagreements_dir: Path | None,
    pull_decisions: bool,
    out: Path,
) -> None:
    """Push rows in doubt to a review project (the given label, the suggested one as a
    pre-annotation), or with --pull apply the reviewers' decisions."""
    from assay.curate import io
    from assay.recipes.api import run

    directory = _sync_dir(sync_dir, project)
    settings = {"url": url, "token_env": token_env, "project": project, "state_dir": str(directory)}
    if pull_decisions:
        step = {"labelstudio_review_pull": settings}
    else:
        step = {"labelstudio_review": {**settings, "source": source}}
        if disagreements_dir is not None:
            step["labelstudio_review"]["disagreements_dir"] = str(disagreements_dir)
    recipe = {"name": "ls-review", "cache": False, "steps": [step]}
    result = run(recipe, out, corpus=io.read_corpus(corpus), progress=_progress(quiet))
    s = result.manifest["steps"][0]["summary"]
    if pull_decisions:
        click.echo(
            f"project {project}: {s['n_reviewed']} rows reviewed: {s['n_kept']} kept, "
            f"{s['n_relabelled']} relabelled, {s['n_rejected']} rejected"
        )
    else:
        click.echo(
            f"project {project}: {s['n_created']} review tasks created, "
            f"{s['n_unchanged']} already there"
        )
    click.echo(f"run directory: {out}")
    click.echo(f"sync directory: {directory}")
