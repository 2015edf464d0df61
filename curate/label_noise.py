"""Label noise: find train rows whose given label the out-of-fold probabilities disagree
with, then flag, drop, relabel or send them for review.

Probabilities come from cross-fitting (`assay.train.crossfit`: the fast model, an encoder,
or several averaged) on the rows of `splits` only, so the models never see dev or test;
or from a file the user supplies (`probabilities`: `id` + one column per label). The ranker
and its options are those of `assay.curate.label_errors` (default `oof_loss` with the
`cleanlab_count` rule). Every scored row gets `label_noise__is_issue`,
`label_noise__score` (label quality, lower = worse) and `label_noise__suggested`.

Actions: `flag` (columns only), `drop` (flagged rows to dropped.parquet, reason
`label_issue`, score kept), `relabel` (label set to the suggestion; the books keep the old
one in the lineage), `review` (`label_noise__review` marks the rows for
`labelstudio_push` with `flagged: label_noise__review`, `prediction_column:
label_noise__suggested`, `score_column: label_noise__score`).

Every run measures its evidence (`assay.curate.label_evidence`): the out-of-fold model's
accuracy and macro-F1, and the estimated count of label errors, each with a bootstrap 95%
interval. `drop` and `relabel` act only when the accuracy interval's lower bound reaches
`min_oof_accuracy`, and on no more rows than the estimate's upper bound (lowest label
quality first); a refused action flags the rows instead and says so in one warning line.
`force: true` acts on every flagged row; the summary's `gate` records the decision.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field, field_validator

from assay import corpus as corpus_mod
from assay.context import RunContext
from assay.engine_steps import run_engine
from assay.errors import AssayError, StepError
from assay.registry import register
from assay.step import Changes, Edit, Keep, StepConfig
from assay.train import crossfit
from assay.train.bootstrap import Interval, bootstrap_ci

from . import label_check, label_errors, label_evidence

log = logging.getLogger(__name__)

DROP_REASON = "label_issue"
AUTO = "auto"
PROBE = "probe"
_LE = label_errors.LabelErrorConfig.model_fields


@register("label_noise")
class LabelNoiseEdit(Edit):
    """Find likely label errors from out-of-fold probabilities; flag, drop, relabel or review.

    Only rows of `splits` (train by default) are scored and changed; the cross-fitted
    models are trained on those rows alone, so dev and test stay unseen. Rows of a label
    with fewer rows than `folds` are not scored (the summary's `unscored_labels`).
    """

    touches_eval = False

    class Config(StepConfig):
        action: Literal["flag", "drop", "relabel", "review"] = Field(
            "flag",
            description="flag: columns only; drop: remove flagged rows; relabel: set the "
            "suggested label; review: mark rows for labelstudio_push",
        )
        splits: list[str] = Field(
            default_factory=lambda: ["train"], description="splits scored (and changed)"
        )
        model: str | list[str] = Field(
            AUTO,
            description="cross-fitted model: auto (the fast model; where its out-of-fold "
            "accuracy is below min_oof_accuracy, also the probe and the two averaged, and the "
            "most accurate of them), fast, probe (MiniLM embeddings + logistic regression), an "
            "encoder name or path, or a list (ensemble)",
        )
        model_options: dict[str, dict[str, Any]] = Field(
            default_factory=dict, description="options per model name (e.g. {fast: {C: 1.0}})"
        )
        probabilities: str | None = Field(
            None,
            description="parquet/csv of probabilities keyed by id (id + one column per label); "
            "replaces cross-fitting",
        )
        folds: int = Field(crossfit.DEFAULT_FOLDS, ge=2, description="cross-fitting folds (K)")
        multilabel_split: Literal["iterative", "first"] = Field(
            "iterative", description="multi-label fold assignment"
        )
        ranker: str = Field(label_errors.DEFAULT_RANKER, description=_LE["ranker"].description)
        filter_by: label_errors.FilterBy = _LE["filter_by"]
        rank_by: label_errors.RankBy = _LE["rank_by"]
        frac_noise: float = _LE["frac_noise"]
        min_examples_per_class: int = _LE["min_examples_per_class"]
        flag: Literal["cleanlab_count", "threshold", "share"] = _LE["flag"]
        max_loss: float = _LE["max_loss"]
        share: float = _LE["share"]
        # 0.60, cleanlab's own floor ("below about 60% it just won't work"). Above it the
        # held-out check decides (label_evidence.held_out_effect): bench/label_noise_gate.py
        # measured the flags' precision by accuracy (SST-2, TREC and the published IMDB
        # probabilities, 10-20% flips: at a CI lower bound above 0.75 the flags were 60-71%
        # planted flips, between 0.70 and 0.75 43% of cells flagged more clean rows than
        # flips, at or below 0.60 88% did), and bench/label_noise_small_n.py measured what
        # acting on them did to a model. The accuracy is against the given labels, so noise
        # lowers it too: a perfect model on 20% flipped labels scores 0.80.
        min_oof_accuracy: float = Field(
            0.6,
            ge=0,
            le=1,
            description="drop/relabel act only when the lower bound of the out-of-fold "
            "model's accuracy (95% bootstrap CI, against the given labels) reaches this; "
            "otherwise the rows are flagged",
        )
        force: bool = Field(
            False,
            description="drop/relabel every flagged row whatever the evidence (recorded in "
            "the summary's gate)",
        )
        check_model: str | list[str] | None = Field(
            None,
            description="the model the held-out check trains with and without the change "
            "(default: the model that judged the labels); name the model that will be "
            "trained on the result, e.g. fast when the labels are judged by the probe",
        )

        @field_validator("ranker")
        @classmethod
        def _known_ranker(cls, value: str) -> str:
            if value not in label_errors.rankers():
                raise ValueError(
                    f"unknown ranker {value!r}; expected one of {label_errors.rankers()}"
                )
            return value

        def ranker_config(self) -> label_errors.LabelErrorConfig:
            keys = label_errors.LabelErrorConfig.model_fields
            return label_errors.LabelErrorConfig(**{k: getattr(self, k) for k in keys})

    @property
    def params(self) -> dict[str, Any]:
        """The config, plus the content hash of a probabilities file it names."""
        out = super().params
        path = self.config.probabilities
        if path and Path(path).is_file():
            out["probabilities_sha256"] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        return out

    def _probabilities(
        self, rows: pl.DataFrame, classes: list[str], ctx: RunContext, multilabel: bool
    ) -> tuple[pl.DataFrame, dict[str, Any]]:
        """Out-of-fold probabilities, and which model gave them (with what `auto` tried)."""
        cfg = self.config
        if cfg.probabilities:
            probs = label_errors.read_probabilities(cfg.probabilities, classes)
            return probs, {"model": "probabilities file"}
        if cfg.model != AUTO:
            names = [cfg.model] if isinstance(cfg.model, str) else list(cfg.model)
            return self._cross_fit(rows, ctx, names), {"model": "+".join(names)}
        fast = self._cross_fit(rows, ctx, [crossfit.FAST])
        rng = ctx.rng("auto-judge")
        tried = {crossfit.FAST: _accuracy(rows, fast, classes, multilabel, rng)}
        low = tried[crossfit.FAST]["low"]
        if multilabel or low >= cfg.min_oof_accuracy:
            return fast, {"model": crossfit.FAST, "auto": tried}
        # The fast model is too weak to act on: the probe reads text through a pretrained
        # encoder, and averaging it with the fast model often beats both.
        try:
            probe = self._cross_fit(rows, ctx, [PROBE])
        except AssayError as exc:
            log.warning("label_noise: model auto kept the fast model: the probe failed: %s", exc)
            return fast, {"model": crossfit.FAST, "auto": tried, "probe_error": str(exc)}
        label_cols = [c for c in fast.columns if c != "id"]
        both = fast.select("id", *[(pl.col(c) + probe[c]) / 2 for c in label_cols])
        frames = {crossfit.FAST: fast, PROBE: probe, f"{crossfit.FAST}+{PROBE}": both}
        for name in (PROBE, f"{crossfit.FAST}+{PROBE}"):
            tried[name] = _accuracy(rows, frames[name], classes, multilabel, rng)
        best = max(frames, key=lambda n: (tried[n]["estimate"], -list(frames).index(n)))
        return frames[best], {"model": best, "auto": tried}

    def _cross_fit(self, rows: pl.DataFrame, ctx: RunContext, names: list[str]) -> pl.DataFrame:
        cfg = self.config
        oof = crossfit.cross_fit(
            rows["text"].to_list(),
            rows["label"].to_list(),
            ids=rows["id"].to_list(),
            folds=cfg.folds,
            seed=ctx.step_seed("crossfit"),  # the same folds for every model
            model=names if len(names) > 1 else names[0],
            options={k: v for k, v in cfg.model_options.items() if k in names} or None,
            weights=rows["weight"].to_numpy(),
            multilabel_split=cfg.multilabel_split,
            progress=ctx.progress,
            engine=run_engine(ctx),
        )
        return oof.to_frame()

    def _scorable(
        self, rows: pl.DataFrame, multilabel: bool
    ) -> tuple[pl.DataFrame, dict[str, int]]:
        """The rows cross-fitting can score, and the labels set aside with their row counts.

        A label with fewer rows than folds cannot be stratified over them (at 100 TREC rows
        a label can have 2): its rows are not scored, so never flagged, and the summary
        says so. Computed probabilities from a file score every row."""
        if multilabel or self.config.probabilities:
            return rows, {}
        counts = rows.group_by("label").len()
        few = counts.filter(pl.col("len") < self.config.folds)
        if few.height == 0:
            return rows, {}
        unscored = dict(sorted(zip(few["label"].cast(pl.String), few["len"], strict=True)))
        if counts.height - few.height < 2:
            raise StepError(
                f"label_noise: cross-fitting with {self.config.folds} folds needs at least "
                f"{self.config.folds} rows in at least 2 labels; found {unscored}: pass a "
                "smaller folds or label more rows"
            )
        log.warning(
            "label_noise: labels with fewer than %d rows are not scored: %s",
            self.config.folds,
            unscored,
        )
        return rows.filter(~pl.col("label").is_in(few["label"].implode())), unscored

    def _checks(self, evidence: label_evidence.Evidence, n_flagged: int, multilabel: bool) -> bool:
        """Whether the held-out check runs: a gated drop or relabel that passed the accuracy
        floor, on single-label rows scored by models this step fits."""
        cfg = self.config
        return (
            cfg.action in ("drop", "relabel")
            and not cfg.force
            and not multilabel
            and not cfg.probabilities
            and label_evidence.allowed_rows(evidence, n_flagged, cfg.min_oof_accuracy) > 0
        )

    def _check_models(self, judge: str) -> list[str]:
        """The models the held-out check trains: `check_model`, or the labels' judge."""
        check = self.config.check_model
        if check is None:
            return judge.split("+")
        return [check] if isinstance(check, str) else list(check)

    def _held_out(
        self,
        rows: pl.DataFrame,
        proba: np.ndarray,
        classes: list[str],
        ctx: RunContext,
        judge: str,
    ) -> Interval:
        """The held-out effect of the change (`assay.curate.label_check`), the
        rows of each fold's other folds flagged and capped by this step's own rule."""
        cfg = self.config
        rng = ctx.rng("held-out")

        def select(inner: pl.DataFrame, probs: pl.DataFrame) -> pl.DataFrame:
            present = [c for c in classes if c in probs.columns]
            found = label_errors.find_label_errors(
                inner.select("id", "label"), probs, cfg.ranker_config(), classes=present
            )
            flagged = found.filter("is_issue").sort(["score", "id"])
            y, p, _ = label_errors.encoded(inner.select("id", "label"), probs, present)
            errors, _ = label_evidence.estimate_errors(y, p, False, rng=rng, n_resamples=200)
            acting = flagged.head(min(flagged.height, int(np.floor(errors.high + 1e-9))))
            new = pl.col("suggested") if cfg.action == "relabel" else pl.lit(None, pl.String)
            return acting.select("id", new.cast(pl.String).alias("label"))

        def options(names: list[str]) -> dict[str, dict[str, Any]] | None:
            return {k: v for k, v in cfg.model_options.items() if k in names} or None

        models = judge.split("+")
        names = self._check_models(judge)
        check = None
        if names != models:
            # The check model's own out-of-fold probabilities (the same folds) are
            # "without the change".
            oof = self._cross_fit(rows, ctx, names)
            _, proba, _ = label_errors.encoded(rows.select("id", "label"), oof, classes)
            check = (names, options(names))
        return label_check.held_out_effect(
            rows.select("id", "text", "label", "weight"),
            proba,
            classes,
            select,
            models=models,
            options=options(models),
            folds=cfg.folds,
            seed=ctx.step_seed("crossfit"),
            rng=rng,
            check=check,
        )

    def edit(self, corpus: pl.DataFrame, ctx: RunContext) -> Changes:
        cfg = self.config
        multilabel = corpus_mod.is_multilabel(corpus)
        cond = pl.col("split").is_in(cfg.splits) & pl.col("label").is_not_null()
        if multilabel:
            cond &= pl.col("label").list.len() > 0
        rows = corpus.filter(cond)
        if rows.height == 0:
            raise StepError(
                f"label_noise found no labelled rows in splits {cfg.splits}; add a split step "
                "before it or set splits"
            )
        classes = corpus_mod.label_set(corpus)
        rows, unscored = self._scorable(rows, multilabel)
        if unscored:
            classes = [c for c in classes if c not in unscored]
        try:
            probs, judged_by = self._probabilities(rows, classes, ctx, multilabel)
            found = label_errors.find_label_errors(
                rows.select("id", "label"), probs, cfg.ranker_config(), classes=classes
            )
        except AssayError as exc:
            raise StepError(f"label_noise: {exc}") from None
        p = f"{self.name}__"
        columns = found.select(
            "id",
            pl.col("is_issue").alias(f"{p}is_issue"),
            pl.col("score").alias(f"{p}score"),
            pl.col("suggested").alias(f"{p}suggested"),
        )
        flagged = found.filter("is_issue").sort(["score", "id"])
        given_y, proba, _ = label_errors.encoded(rows.select("id", "label"), probs, classes)
        evidence = label_evidence.measure(given_y, proba, multilabel, rng=ctx.rng("evidence"))
        held_out = held_out_model = None
        if self._checks(evidence, flagged.height, multilabel):
            held_out = self._held_out(rows, proba, classes, ctx, judged_by["model"])
            held_out_model = "+".join(self._check_models(judged_by["model"]))
        decision = label_evidence.gate(
            cfg.action,
            evidence,
            flagged.height,
            min_oof_accuracy=cfg.min_oof_accuracy,
            force=cfg.force,
            held_out=held_out,
            held_out_model=held_out_model,
        )
        given = rows.select("id", pl.col("label").alias("given"))
        top = (
            flagged.join(given, on="id", how="left")
            .sort(["rank", "id"])
            .head(20)
            .select("id", "given", "suggested", pl.col("score").round(4))
        )
        summary: dict[str, Any] = {
            "action": cfg.action,
            "n_scored": found.height,
            "n_flagged": flagged.height,
            "flag_rate": round(flagged.height / max(found.height, 1), 4),
            "ranker": cfg.ranker,
            "judged_by": judged_by,
            **evidence.to_summary(),
            "gate": decision.to_summary(),
            "headline": _headline(self.name, cfg.action, evidence, decision, judged_by["model"]),
            "score_histogram": label_evidence.score_histogram(
                found["score"].to_numpy(), found["is_issue"].to_numpy(), evidence.errors
            ),
            "top_flagged": top.to_dicts(),
        }
        if unscored:
            summary["unscored_labels"] = unscored
        if decision.refused:
            log.warning(label_evidence.refusal_message(self.name, cfg.action, evidence, decision))
        # Lowest label quality first, as many as the gate allows.
        acting = flagged.head(decision.n_allowed)
        keep = None
        if cfg.action == "drop":
            keep = Keep(~corpus["id"].is_in(acting["id"].implode()), DROP_REASON)
        elif cfg.action == "relabel":
            fix = acting.filter(pl.col("suggested").list.len() > 0) if multilabel else acting
            columns = columns.join(
                fix.select("id", pl.col("suggested").alias("label")), on="id", how="left"
            )
            # Rows not relabelled keep their label: the books only see changed values.
            columns = columns.join(
                rows.select("id", pl.col("label").alias("_given")), on="id", how="left"
            ).with_columns(pl.col("label").fill_null(pl.col("_given")))
            columns = columns.drop("_given")
            summary["n_relabelled"] = fix.height
        elif cfg.action == "review":
            columns = columns.with_columns(pl.col(f"{p}is_issue").alias(f"{p}review"))
        return Changes(columns=columns, keep=keep, summary=summary)


def _headline(
    step: str,
    action: str,
    evidence: label_evidence.Evidence,
    decision: label_evidence.GateDecision,
    model: str,
) -> str:
    """One line for the terminal summary: the evidence and what the action did with it."""
    acc, err = evidence.accuracy, evidence.errors
    line = (
        f"{step}: out-of-fold {model} accuracy {acc.estimate:.3f} (95% CI {acc.low:.3f}-{acc.high:.3f}), "
        f"estimated label errors {err.estimate:.0f} (95% CI {err.low:.0f}-{err.high:.0f}) of "
        f"{evidence.n_scored:,}, {decision.n_flagged:,} flagged"
    )
    verb = {"drop": "dropped", "relabel": "relabelled"}.get(action)
    if verb is None:
        return line
    outcome = {
        "refused": f"none {verb}: accuracy CI below min_oof_accuracy "
        f"{decision.min_oof_accuracy:.2f}",
        "capped": f"{decision.n_allowed:,} {verb} (capped at the estimate's upper bound)",
        "forced": f"{decision.n_allowed:,} {verb} (force: true)",
        "acted": f"{decision.n_allowed:,} {verb}",
    }[decision.decision]
    effect = decision.held_out
    if effect is not None:
        check = (
            f"held-out accuracy or macro-F1 (the worse) {100 * effect.estimate:+.2f} points "
            f"(95% CI {100 * effect.low:+.2f} to {100 * effect.high:+.2f})"
        )
        outcome = (
            f"none {verb}: {check} with the change" if decision.reason == "held_out"
            else f"{outcome}, {check}"
        )  # fmt: skip
    return f"{line}; {outcome}"


def _accuracy(
    rows: pl.DataFrame,
    probs: pl.DataFrame,
    classes: list[str],
    multilabel: bool,
    rng: np.random.Generator,
) -> dict[str, float]:
    """Out-of-fold accuracy against the given labels, with its bootstrap 95% interval."""
    y, p, _ = label_errors.encoded(rows.select("id", "label"), probs, classes)
    pred = (p >= 0.5).astype("int64") if multilabel else p.argmax(axis=1)
    ci = bootstrap_ci(y, pred, p.shape[1], "accuracy", rng=rng, n_resamples=500)
    return {"estimate": round(ci.estimate, 4), "low": round(ci.low, 4), "high": round(ci.high, 4)}
