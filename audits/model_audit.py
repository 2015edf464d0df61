"""The `model_audit` step: train a model on the train split and audit its predictions.

The fast model (TF-IDF + logistic regression) by default, or the probe (`model: probe`) or
the encoder `model` names, is trained on the labelled train rows (seeded by the run) and
predicts the rows of `split` (test by default). On those predictions it reports:

- **slices** (`assay.audits.slices`): accuracy and macro-F1 with 95% bootstrap intervals
  per slice (length bucket, origin, lang, group and any other column with a few values),
  the worst slices with at least `min_size` rows, and those entirely below overall;
- **counterfactual bias** (`assay.audits.counterfactual`): flip rates when gendered words
  and first names (or the user's `terms`) are swapped in the texts;
- **errors** (`assay.audits.error_analysis`): confident mistakes, confusion pairs, the fast
  model's heaviest word n-grams per class, occlusion attribution for the probe or an encoder.

The findings table holds the rows behind the summary (`section`: `mistake`,
`counterfactual_flip`, `occlusion`); the summary holds the tables. Rows of `split` get
`model_audit__pred` and `model_audit__correct`.

The model is fitted once on the driver. On an engine other than the local one, the rows of
`split` and the counterfactual texts are scored in batches in an actor pool (the fitted
model ships once per actor, `assay.audits.model_scoring`); the slices, flip rates and
error tables are then computed on the driver from those scores, as in-process.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field

from assay import corpus as corpus_mod
from assay.context import RunContext
from assay.engine_steps import run_engine
from assay.errors import InputError
from assay.registry import register
from assay.step import Audit, Findings, StepConfig

FINDINGS_SCHEMA = {
    "section": pl.String,
    "id": pl.String,
    "label": pl.String,
    "pred": pl.String,
    "score": pl.Float64,
    "detail": pl.String,
}
NOT_COPIED = {"weight", "parent_id"}
MAX_PAIRS_SHOWN = 20  # term pairs in the tables, highest flip rate first


class ModelAuditConfig(StepConfig):
    """Which model is audited, on which split, and what the audit computes."""

    model: str = Field(
        "fast",
        description="fast (TF-IDF + logistic regression), probe (MiniLM embeddings + "
        "logistic regression), an encoder name or path",
    )
    model_options: dict[str, Any] = Field(
        default_factory=dict, description="options of the model (fast: C, word_ngrams...)"
    )
    split: Literal["dev", "test"] = Field("test", description="the split predicted and audited")
    slice_by: list[str] | None = Field(
        None,
        description="columns to slice by (default: length bucket, origin, lang, group and "
        "every other column with 2 to 50 values)",
    )
    metric: Literal["accuracy", "macro_f1"] = Field(
        "macro_f1", description="metric that ranks the worst slices"
    )
    min_size: int = Field(20, ge=1, description="slices with fewer rows are not ranked")
    n_resamples: int = Field(1000, ge=100, description="bootstrap resamples per slice")
    counterfactual: bool = Field(
        True, description="swap gendered words and names and measure flips"
    )
    terms: str | dict[str, str] | None = Field(
        None,
        description="term pairs to swap: a .json or .txt file, or a mapping (default: the "
        "shipped gendered words and first names)",
    )
    top_k: int = Field(20, ge=1, le=1000, description="confident mistakes and features listed")
    attribution: Literal["auto", "both", "features", "occlusion", "none"] = Field(
        "auto",
        description="auto: feature weights for the fast model, occlusion for the probe or an "
        "encoder",
    )
    occlusion_sample: int = Field(20, ge=1, description="mistakes explained by occlusion")


@register("model_audit")
class ModelAudit(Audit):
    """Train the fast model (or the probe or the encoder `model` names) on train, predict
    `split`, and audit the predictions: metrics per slice with bootstrap intervals and the
    worst slices, counterfactual flip rates for gendered words and names, confident
    mistakes, confusion pairs, and feature weights or occlusion attributions."""

    Config = ModelAuditConfig

    @property
    def params(self) -> dict[str, Any]:
        """The config, plus the content hash of a term file (the cache must not serve a
        result computed from an earlier version of it)."""
        from assay.hashing import file_hash

        out = super().params
        terms = self.config.terms
        if isinstance(terms, str) and Path(terms).expanduser().is_file():
            out["terms_sha"] = file_hash(Path(terms).expanduser())
        return out

    def score(self, corpus: pl.DataFrame, ctx: RunContext) -> Findings:
        findings, summary, predictions = audit_model(corpus, self.config, ctx)
        correct = [
            _text(p) == _text(t)
            for p, t in zip(
                predictions["pred"].to_list(), predictions["label"].to_list(), strict=True
            )
        ]
        columns = predictions.select(
            "id",
            pl.Series(
                f"{self.name}__pred",
                [_text(p) for p in predictions["pred"].to_list()],
                dtype=pl.String,
            ),
            pl.Series(f"{self.name}__correct", correct, dtype=pl.Boolean),
        )
        return Findings(columns=columns, findings=findings, summary=summary)


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "|".join(sorted(map(str, value)))
    return "" if value is None else str(value)


def fit_and_predict(
    corpus: pl.DataFrame,
    cfg: ModelAuditConfig,
    seed: int,
    progress: Any = None,
    engine: Any = None,
) -> tuple[Any, pl.DataFrame, list[str]]:
    """The fitted model, its predictions of `cfg.split` (id, split, text, label, pred,
    proba and the corpus's other columns), and the classes. With an `engine`, the model is
    fitted here, the rows are scored in its actor pool, and the model comes back as an
    `EngineScorer` (it scores there and remembers these rows)."""
    from assay.audits.model_scoring import EngineScorer
    from assay.train.evaluate import FAST, PROBE, make_model, training_rows

    train = training_rows(corpus)
    if train.height == 0:
        raise InputError(
            "the corpus has no labelled train rows; add a split step or set split_column"
        )
    evals = corpus.filter((pl.col("split") == cfg.split) & pl.col("label").is_not_null())
    if evals.height == 0:
        raise InputError(
            f"the corpus has no labelled {cfg.split} rows to audit; add a split step or set "
            f"split: {'dev' if cfg.split == 'test' else 'test'}"
        )
    weights = train["weight"].to_numpy()
    weights = None if np.allclose(weights, 1.0) else weights
    model = make_model(cfg.model, seed, dict(cfg.model_options), progress)
    kwargs: dict[str, Any] = {}
    dev = corpus.filter((pl.col("split") == "dev") & pl.col("label").is_not_null())
    if cfg.model not in (FAST, PROBE) and dev.height:  # only the fine-tune loop reads dev
        kwargs = {"dev_texts": dev["text"].to_list(), "dev_labels": dev["label"].to_list()}
    model.fit(train["text"].to_list(), train["label"].to_list(), weights, **kwargs)
    if engine is not None:
        model = EngineScorer(model, engine, _gpus(cfg, engine))
    proba = np.asarray(model.predict_proba(evals["text"].to_list()))
    classes = [str(c) for c in model.classes_]
    if corpus_mod.is_multilabel(evals):
        threshold = getattr(getattr(model, "config", None), "threshold", None) or getattr(
            model, "options", {}
        ).get("threshold", 0.5)
        pred = pl.Series(
            "pred",
            [[c for c, p in zip(classes, row, strict=True) if p >= threshold] for row in proba],
            dtype=pl.List(pl.String),
        )
    else:
        pred = pl.Series("pred", [classes[i] for i in proba.argmax(axis=1)], dtype=pl.String)
    keep = [c for c in evals.columns if c not in NOT_COPIED]
    predictions = evals.select(keep).with_columns(
        pred, pl.Series("proba", proba.astype(np.float32).tolist(), dtype=pl.List(pl.Float32))
    )
    return model, predictions, classes


def _gpus(cfg: ModelAuditConfig, engine: Any) -> float | None:
    """The engine's GPUs per actor for a model that can use them (not the fast model)."""
    from assay.train.evaluate import FAST

    return None if cfg.model == FAST else getattr(engine, "gpus_per_actor", None)


def audit_model(
    corpus: pl.DataFrame, cfg: ModelAuditConfig | None = None, ctx: RunContext | None = None
) -> tuple[pl.DataFrame, dict[str, Any], pl.DataFrame]:
    """Findings, summary and predictions of the model audit (what the step and the CLI use)."""
    from assay.audits.error_analysis import error_report
    from assay.audits.model_scoring import EngineScorer
    from assay.audits.slices import slice_report

    cfg = cfg or ModelAuditConfig()
    ctx = ctx or RunContext().for_step(0, "model_audit")
    engine = run_engine(ctx)
    scored_labels = sorted(set(corpus_mod.label_set(corpus.filter(pl.col("split") == cfg.split))))
    with ctx.task(f"model_audit: training {cfg.model}", total=3) as task:
        model, predictions, classes = fit_and_predict(
            corpus, cfg, ctx.step_seed("model"), ctx.progress, engine
        )
        task.advance(1)
        everything = sorted(set(classes) | set(scored_labels))
        slices = slice_report(
            predictions,
            cfg.slice_by,
            rng=ctx.rng("slices"),
            split=cfg.split,
            classes=everything,
            metric=cfg.metric,
            min_size=cfg.min_size,
            n_resamples=cfg.n_resamples,
        )
        cf = None
        if cfg.counterfactual:
            cf = _counterfactuals(model, predictions, cfg)
        task.advance(1)
        train_texts = corpus.filter(pl.col("split") == "train")["text"].to_list()
        errors = error_report(
            predictions,
            classes,
            model=model.model if isinstance(model, EngineScorer) else model,
            train_texts=train_texts,
            rng=ctx.rng("occlusion"),
            k=cfg.top_k,
            occlusion_sample=cfg.occlusion_sample,
            attribution=cfg.attribution,
        )
        task.advance(1)
    summary: dict[str, Any] = {
        "model": cfg.model,
        "split": cfg.split,
        "classes": everything,
        "train_rows": int(
            corpus.filter((pl.col("split") == "train") & pl.col("label").is_not_null()).height
        ),
        "eval_rows": predictions.height,
        "metrics": slices.overall,
        "slices": slices.to_dict(),
        "slice_table": slices.table.to_dicts(),
        "counterfactual": cf.to_dict() if cf is not None else None,
        "errors": errors.to_dict(k=cfg.top_k),
    }
    return _findings(errors, cf), _json_ready(summary), predictions


def _counterfactuals(model: Any, predictions: pl.DataFrame, cfg: ModelAuditConfig) -> Any:
    from assay.audits.counterfactual import counterfactual_report
    from assay.audits.model_scoring import EngineScorer

    texts, ids = predictions["text"].to_list(), predictions["id"].to_list()
    if not isinstance(model, EngineScorer):
        return counterfactual_report(model, texts, ids, cfg.terms)
    # Every swapped text in one call, which the engine splits in batches.
    return counterfactual_report(model, texts, ids, cfg.terms, batch_size=sys.maxsize)


def _findings(errors: Any, cf: Any) -> pl.DataFrame:
    parts = [
        errors.mistakes.select(
            section=pl.lit("mistake"),
            id="id",
            label="label",
            pred="pred",
            score="confidence",
            detail="text",
        )
    ]
    if cf is not None and cf.examples.height:
        parts.append(
            cf.examples.select(
                section=pl.lit("counterfactual_flip"),
                id="id",
                label=pl.col("pair"),
                pred=pl.format("{} -> {}", "pred", "counterfactual_pred"),
                score="abs_delta",
                detail="counterfactual",
            )
        )
    if errors.occlusion is not None and errors.occlusion.height:
        parts.append(
            errors.occlusion.select(
                section=pl.lit("occlusion"),
                id="id",
                label="label",
                pred="pred",
                score="drop",
                detail="word",
            )
        )
    return pl.concat([p.cast(FINDINGS_SCHEMA) for p in parts])


def _json_ready(value: Any) -> Any:
    """NaN and infinities become None, so the summary is valid JSON."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


# -- rendering -------------------------------------------------------------------------------


def _pct(value: Any) -> str:
    return "" if value is None else f"{100 * value:.1f}%"


def _sections(
    findings: pl.DataFrame, summary: dict[str, Any]
) -> list[tuple[str, list[dict[str, Any]]]]:
    """The tables of the report, as (title, rows) pairs shared by HTML, Markdown and rich."""
    slices = summary.get("slices", {})
    metric = slices.get("metric", "macro_f1")
    worst = [
        {
            "slice": r["slice"],
            "value": r["value"],
            "n": r["n"],
            metric: r[metric],
            "95% CI": f"{r[metric + '_low']:.3f}-{r[metric + '_high']:.3f}"
            if r.get(metric + "_low") is not None
            else "",
            "gap": r[f"{metric}_gap"],
            "below overall": "yes" if r[f"{metric}_below"] else "",
        }
        for r in slices.get("worst", [])
    ]
    metrics = [
        {"metric": m, "estimate": v["estimate"], "low": v["low"], "high": v["high"]}
        for m, v in summary.get("metrics", {}).items()
    ]
    out: list[tuple[str, list[dict[str, Any]]]] = [
        (f"Metrics on {summary.get('split', 'test')} (95% bootstrap CI)", metrics),
        (f"Worst slices by {metric} (at least {slices.get('min_size', '')} rows)", worst),
    ]
    cf = summary.get("counterfactual")
    if cf:
        rows = [
            {
                "pair": r["pair"],
                "texts": r["texts"],
                "flips": r["flips"],
                "flip rate": _pct(r["flip_rate"]),
                "95% CI": f"{_pct(r['low'])}-{_pct(r['high'])}",
                "mean abs Δp": r["mean_abs_delta"],
            }
            for r in [cf["overall"], *cf["pairs"][:MAX_PAIRS_SHOWN]]
            if r["texts"]
        ]
        out.append(("Counterfactual flips (term pairs swapped)", rows))
    errors = summary.get("errors", {})
    out.append(("Confusion pairs (true -> predicted)", errors.get("confusion", [])))
    mistakes = [
        {
            **{k: r[k] for k in ("id", "label", "pred", "confidence")},
            "text": (r["text"] or "")[:160],
        }
        for r in errors.get("mistakes", [])
    ]
    out.append(("Most confident mistakes", mistakes))
    if errors.get("features"):
        grouped: dict[str, list[str]] = {}
        for f in errors["features"]:
            grouped.setdefault(f["class"], []).append(f["feature"])
        rows = [{"class": c, "heaviest word n-grams": ", ".join(v)} for c, v in grouped.items()]
        out.append(("Fast model: heaviest features per class", rows))
    if errors.get("occlusion"):
        grouped = {}
        for o in errors["occlusion"]:
            grouped.setdefault(o["id"], []).append(f"{o['word']} ({o['drop']:+.2f})")
        rows = [
            {"id": i, "words whose removal lowers the prediction": ", ".join(v)}
            for i, v in grouped.items()
        ]
        out.append(("Occlusion: words the mistakes rest on", rows))
    return out


def render_html(findings: pl.DataFrame, summary: dict[str, Any]) -> str:
    """The model audit as an HTML fragment (tables and inline SVG, no external assets)."""
    import html

    from assay.audits.report import bar_chart, table

    head = (
        f"<p>{html.escape(str(summary.get('model')))} trained on {summary.get('train_rows', 0):,} "
        f"rows, audited on {summary.get('eval_rows', 0):,} {html.escape(str(summary.get('split')))} rows.</p>"
    )
    parts = [head]
    for title, rows in _sections(findings, summary):
        parts += [f"<h3>{html.escape(title)}</h3>", table(rows)]
        if title.startswith("Worst slices") and rows:
            metric = summary.get("slices", {}).get("metric", "macro_f1")
            chart = {f"{r['slice']}={r['value']}": r[metric] for r in rows}
            parts.append(bar_chart(chart, title=metric))
    return "".join(parts)


def render_markdown(findings: pl.DataFrame, summary: dict[str, Any]) -> str:
    """The model audit as Markdown."""
    from assay.audits.quality_render import markdown_table

    parts = [
        "### Model audit\n",
        f"{summary.get('model')} trained on {summary.get('train_rows', 0):,} rows, audited on "
        f"{summary.get('eval_rows', 0):,} {summary.get('split')} rows.\n",
    ]
    for title, rows in _sections(findings, summary):
        parts += [f"#### {title}\n", markdown_table(rows)]
    return "\n".join(parts)


def rich_tables(findings: pl.DataFrame, summary: dict[str, Any]):
    """The model audit as rich tables (what `assay audit model` prints)."""
    from rich.console import Group
    from rich.table import Table

    from assay.audits.quality_render import cell_text

    tables = []
    for title, rows in _sections(findings, summary):
        t = Table(title=title, title_justify="left")
        cols = list(rows[0]) if rows else ["none"]
        for c in cols:
            t.add_column(str(c), overflow="fold")
        for row in rows:
            t.add_row(*[cell_text(row.get(c)).replace("\\|", "|") for c in cols])
        tables.append(t)
    return Group(*tables)
