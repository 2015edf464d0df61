"""Balance: report the class distribution of the train rows and rebalance it.

Strategies (only rows of `splits`, train by default, are reweighted or resampled):
- `report`: the distribution and the imbalance ratio (largest class / smallest) only;
- `reweight`: class weights written to `weight`. `inverse`: w_c = N / (K n_c), so every
  class has the same total weight; `effective`: the effective number of samples of Cui et
  al. 2019, w_c proportional to (1 - beta) / (1 - beta^n_c), scaled so the mean weight
  over the rows is 1; `given`: the weights of `weights`, as given. Multi-label: n_c counts
  the rows holding label c and a row's weight is the mean of its labels' weights (then
  scaled to mean 1 for `inverse` and `effective`);
- `undersample`: rows of the larger classes dropped at random (reason `undersampled`)
  until no class has more than `ratio` times the rows of the smallest;
- `oversample`: rows of the smaller classes drawn at random (with replacement) until every
  class has at least 1/`ratio` of the largest class's rows; each draw adds a copy of its
  row with an id derived from it (`{parent}~{index}.os{k}`) and `parent_id` set;
- `augment_to`: a registered augmenter (`augmenter`: `synonyms`, `eda`, ...) is asked,
  through its public `apply`, for new rows of each class below the `target` distribution
  (default uniform); as many of its rows as needed are drawn at random and added here, so
  the books adopt them with ids derived from their parents.

Multi-label corpora can be reweighted; resampling them is an error.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field, model_validator

from assay import corpus as corpus_mod
from assay import registry
from assay.context import RunContext
from assay.errors import StepError
from assay.registry import register
from assay.step import Changes, Edit, Keep, StepConfig

DROP_REASON = "undersampled"
STRATEGIES = ("report", "reweight", "undersample", "oversample", "augment_to")


def class_counts(rows: pl.DataFrame) -> dict[str, int]:
    """Rows per label (multi-label: rows holding the label), sorted by label."""
    labels = rows["label"]
    if isinstance(labels.dtype, pl.List):
        labels = labels.explode().drop_nulls()
    counts = labels.drop_nulls().value_counts()
    return dict(
        sorted(zip(counts[counts.columns[0]].to_list(), counts["count"].to_list(), strict=True))
    )


def imbalance_ratio(counts: dict[str, int | float]) -> float | None:
    values = [v for v in counts.values() if v > 0]
    return round(max(values) / min(values), 4) if values else None


def class_weights(
    counts: dict[str, int], method: str, beta: float = 0.999, given: dict[str, float] | None = None
) -> dict[str, float]:
    """Unnormalised weight per label: inverse frequency, effective number, or given."""
    if method == "given":
        return {c: float((given or {})[c]) for c in counts}
    if method == "inverse":
        return {c: 1.0 / n for c, n in counts.items()}
    return {c: (1.0 - beta) / (1.0 - beta**n) for c, n in counts.items()}


@register("balance")
class BalanceEdit(Edit):
    """Report the class distribution of train rows; reweight, undersample, oversample, or
    augment the smaller classes to a target distribution. Dev/test are never resampled."""

    touches_eval = False
    op = "os"

    class Config(StepConfig):
        strategy: Literal["report", "reweight", "undersample", "oversample", "augment_to"] = Field(
            "report", description=f"one of {list(STRATEGIES)}"
        )
        splits: list[str] = Field(
            default_factory=lambda: ["train"], description="splits balanced (dev/test never)"
        )
        weighting: Literal["inverse", "effective", "given"] = Field(
            "inverse",
            description="reweight: inverse frequency, effective number (Cui et al. 2019), "
            "or the given weights",
        )
        beta: float = Field(
            0.999, gt=0, lt=1, description="reweight, effective: beta of (1-beta)/(1-beta^n)"
        )
        weights: dict[str, float] | None = Field(
            None, description="reweight, given: weight per label"
        )
        ratio: float = Field(
            1.0,
            ge=1.0,
            description="undersample/oversample: largest class at most this many times the "
            "smallest",
        )
        augmenter: str = Field("synonyms", description="augment_to: a registered augmenter")
        augmenter_options: dict[str, Any] = Field(
            default_factory=dict, description="augment_to: options of the augmenter"
        )
        target: dict[str, float] | None = Field(
            None, description="augment_to: target share per label (default uniform)"
        )

        @model_validator(mode="after")
        def _consistent(self) -> BalanceEdit.Config:
            if self.weighting == "given" and self.strategy == "reweight" and not self.weights:
                raise ValueError("weighting 'given' needs weights: {label: weight, ...}")
            if self.weights and any(w <= 0 for w in self.weights.values()):
                raise ValueError(f"weights must be positive; got {self.weights}")
            if self.target is not None and (
                not self.target or any(v <= 0 for v in self.target.values())
            ):
                raise ValueError(f"target shares must be positive; got {self.target}")
            return self

    def edit(self, corpus: pl.DataFrame, ctx: RunContext) -> Changes:
        cfg = self.config
        multilabel = corpus_mod.is_multilabel(corpus)
        rows = corpus.filter(pl.col("split").is_in(cfg.splits) & pl.col("label").is_not_null())
        if rows.height == 0:
            raise StepError(f"balance found no labelled rows in splits {cfg.splits}")
        if multilabel and cfg.strategy in ("undersample", "oversample", "augment_to"):
            raise StepError(
                f"balance: strategy {cfg.strategy!r} does not resample multi-label rows (one "
                "row holds several labels); use strategy: reweight"
            )
        counts = class_counts(rows)
        summary: dict[str, Any] = {
            "strategy": cfg.strategy,
            "distribution_before": counts,
            "imbalance_before": imbalance_ratio(counts),
        }
        changes = Changes()
        if cfg.strategy == "reweight":
            changes = self._reweight(rows, counts, multilabel, summary)
        elif cfg.strategy == "undersample":
            changes = self._undersample(corpus, rows, counts, ctx, summary)
        elif cfg.strategy == "oversample":
            changes = self._oversample(rows, counts, ctx, summary)
        elif cfg.strategy == "augment_to":
            changes = self._augment_to(corpus, rows, counts, ctx, summary)
        else:
            summary["distribution_after"] = counts
        summary["imbalance_after"] = imbalance_ratio(summary["distribution_after"])
        changes.summary = summary
        return changes

    def _reweight(
        self, rows: pl.DataFrame, counts: dict[str, int], multilabel: bool, summary: dict
    ) -> Changes:
        cfg = self.config
        if cfg.weighting == "given":
            missing = sorted(set(counts) - set(cfg.weights or {}))
            if missing:
                raise StepError(
                    f"balance: weights lack labels {missing}; give a weight for every label "
                    f"of {sorted(counts)}"
                )
        per_label = class_weights(counts, cfg.weighting, cfg.beta, cfg.weights)
        if multilabel:
            w = np.array([np.mean([per_label[x] for x in lab]) for lab in rows["label"].to_list()])
        else:
            w = np.array([per_label[x] for x in rows["label"].to_list()])
        if cfg.weighting != "given":
            scale = len(w) / w.sum()  # mean weight over the rows is 1
            w = w * scale
            per_label = {c: v * scale for c, v in per_label.items()}
        weights = pl.DataFrame({"id": rows["id"], "weight": w.astype(np.float32)})
        total = pl.DataFrame({"label": rows["label"], "w": w})
        if multilabel:
            total = total.explode("label")
        sums = total.group_by("label").agg(pl.col("w").sum()).sort("label")
        summary["class_weights"] = {c: round(v, 6) for c, v in per_label.items()}
        summary["distribution_after"] = {
            c: round(v, 3)
            for c, v in zip(sums["label"].to_list(), sums["w"].to_list(), strict=True)
        }
        return Changes(columns=weights)

    def _undersample(
        self,
        corpus: pl.DataFrame,
        rows: pl.DataFrame,
        counts: dict[str, int],
        ctx: RunContext,
        summary: dict,
    ) -> Changes:
        cap = math.floor(self.config.ratio * min(counts.values()))
        rng = ctx.rng("undersample")
        drop: list[str] = []
        after = {}
        for label, n in counts.items():
            ids = rows.filter(pl.col("label") == label)["id"].to_list()
            if n > cap:
                out = rng.choice(n, size=n - cap, replace=False)
                drop.extend(ids[i] for i in np.sort(out))
            after[label] = min(n, cap)
        summary["distribution_after"] = after
        summary["n_undersampled"] = len(drop)
        return Changes(
            keep=Keep(~corpus["id"].is_in(pl.Series(drop, dtype=pl.String).implode()), DROP_REASON)
        )

    def _oversample(
        self, rows: pl.DataFrame, counts: dict[str, int], ctx: RunContext, summary: dict
    ) -> Changes:
        floor = math.ceil(max(counts.values()) / self.config.ratio)
        rng = ctx.rng("oversample")
        parents: list[str] = []
        texts: list[str] = []
        after = {}
        for label, n in counts.items():
            part = rows.filter(pl.col("label") == label)
            after[label] = max(n, floor)
            if n >= floor:
                continue
            drawn = np.sort(rng.integers(0, n, size=floor - n))
            parents.extend(part["id"].gather(drawn).to_list())
            texts.extend(part["text"].gather(drawn).to_list())
        summary["distribution_after"] = after
        summary["n_copies"] = len(parents)
        added = pl.DataFrame(
            {"parent_id": parents, "text": texts},
            schema={"parent_id": pl.String, "text": pl.String},
        )
        return Changes(added=added, parents=rows, copies=True)

    def _augment_to(
        self,
        corpus: pl.DataFrame,
        rows: pl.DataFrame,
        counts: dict[str, int],
        ctx: RunContext,
        summary: dict,
    ) -> Changes:
        cfg = self.config
        cls = registry.get(cfg.augmenter)
        from assay.step import Augmenter

        if not issubclass(cls, Augmenter):
            raise StepError(
                f"balance: augment_to needs an augmenter step; {cfg.augmenter!r} is a {cls.kind}"
            )
        target = cfg.target or {c: 1.0 for c in counts}
        unknown = sorted(set(target) - set(counts))
        if unknown or set(counts) - set(target):
            raise StepError(
                f"balance: target must give a share for every label of {sorted(counts)}; "
                f"got {sorted(target)}"
            )
        total = sum(target.values())
        share = {c: v / total for c, v in target.items()}
        size = max(n / share[c] for c, n in counts.items())
        want = {c: max(0, round(size * share[c]) - n) for c, n in counts.items()}
        rng = ctx.rng("augment_to")
        parts = []
        after = dict(counts)
        for label, need in want.items():
            if need == 0:
                continue
            n = counts[label]
            options = {
                **cfg.augmenter_options,
                "splits": cfg.splits,
                "labels": [label],
                "n_per_row": math.ceil(need / n) + 1,
            }
            if "per_label" in cls.Config.known_keys():
                # A model-backed augmenter makes a count per label: ask for what is missing
                # and a quarter more for its filters, not n_per_row for every row.
                del options["n_per_row"]
                options["per_label"] = {label: need + math.ceil(need / 4)}
            try:
                step = cls(**options)
            except ValueError as exc:
                raise StepError(f"balance: augmenter {cfg.augmenter!r} options: {exc}") from None
            sub = ctx.for_step(ctx.step_index, f"{self.name}.{cfg.augmenter}.{label}")
            result = step.apply(corpus, sub)
            new = result.corpus.filter(~pl.col("id").is_in(corpus["id"].implode()))
            op_col = f"{cfg.augmenter}__op"
            new = new.select(
                "parent_id",
                "text",
                (pl.col(op_col) if op_col in new.columns else pl.lit(self.op)).alias("op"),
            )
            if new.height > need:
                pick = np.sort(rng.choice(new.height, size=need, replace=False))
                new = new[pick]
            after[label] = n + new.height
            parts.append(new)
        summary["augmenter"] = cfg.augmenter
        summary["distribution_after"] = after
        summary["shortfall"] = {c: want[c] - (after[c] - counts[c]) for c in want if want[c]}
        if not parts:
            return Changes()
        return Changes(added=pl.concat(parts), parents=rows)
