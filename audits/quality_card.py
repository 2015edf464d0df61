"""The data quality card of a labelled corpus: its statistics and flagged rows.

What the card holds, computed on every row of the corpus:

- **counts**: rows per split and label, and per split the imbalance ratio (largest over
  smallest class count among the labels the corpus has; a label missing from a split is
  listed, and the ratio is then undefined);
- **lengths** per label in characters and words (min, p5, median, p95, max);
- **duplicates**: exact copies and copies after the dedup step's normalisation, within a
  split (rows repeating an earlier row of the same split) and across splits (rows whose
  text also occurs in another split); the normalised counts include the exact ones;
- **flagged rows**: empty, short (fewer than `min_words` words), long (more than
  `max_words`), symbols only (digits, punctuation, no letter), other language (py3langid,
  when installed, sure at `lang_confidence` that the text is not in the row's `lang`);
- **vocabulary**: types, tokens and type/token ratio, overall and per label, and the words
  most typical of each label against the whole corpus by weighted log-odds with an
  informative Dirichlet prior (Monroe, Colaresi and Quinn 2008), as a z-score;
- **label noise**, when `label_noise__*` columns are present: flagged rows per split and
  label, and the most frequent given -> suggested label pairs.

The findings table has one row per flagged row and issue (`id`, `split`, `label`, `issue`,
`detail`). The `quality` step (`assay.audits.quality`) attaches it to a run; its
rendering is in `assay.audits.quality_render`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np
import polars as pl
from pydantic import Field

from assay import corpus as corpus_mod
from assay.curate.dedup_exact import Normalization, normalize_series
from assay.errors import InputError
from assay.step import StepConfig

ISSUES = (
    "empty",
    "short",
    "long",
    "symbols_only",
    "other_language",
    "exact_duplicate",
    "normalized_duplicate",
)
FINDINGS_SCHEMA = {
    "id": pl.String,
    "split": pl.String,
    "label": pl.String,
    "issue": pl.String,
    "detail": pl.String,
}
PERCENTILES = {"min": 0.0, "p5": 0.05, "median": 0.5, "p95": 0.95, "max": 1.0}
WORD = r"\w+"
UNLABELLED = "(unlabelled)"


class QualityConfig(StepConfig):
    """Thresholds of the quality card."""

    min_words: int = Field(3, ge=1, description="rows with fewer words than this are short")
    max_words: int = Field(512, ge=1, description="rows with more words than this are long")
    lang_confidence: float = Field(
        0.9, gt=0, le=1, description="py3langid confidence needed to call a row's language"
    )
    lang_min_chars: int = Field(
        20, ge=1, description="rows shorter than this (characters) are not language-checked"
    )
    check_language: bool = Field(
        True, description="detect each row's language with py3langid when it is installed"
    )
    top_words: int = Field(10, ge=1, le=100, description="typical words listed per label")
    min_count: int = Field(3, ge=1, description="words rarer than this are not listed as typical")
    normalization: Normalization = Field(
        default_factory=Normalization, description="text normalisation for normalised duplicates"
    )


@dataclasses.dataclass
class QualityCard:
    """The card: plain, JSON-ready sections and the per-row findings."""

    sections: dict[str, Any]
    findings: pl.DataFrame

    def to_dict(self) -> dict[str, Any]:
        return self.sections

    # The rendering imports the card's issue names, so it is imported when first used.
    def rich(self):
        """The card as rich tables (what `assay audit quality` prints)."""
        from assay.audits.quality_render import rich_tables

        return rich_tables(self.sections)

    def _repr_html_(self) -> str:
        from assay.audits.quality_render import render_html

        return render_html(self.findings, self.sections)


def quality_card(
    corpus: pl.DataFrame, cfg: QualityConfig | None = None, engine: Any = None
) -> QualityCard:
    """The quality card of a corpus (every split, labelled or not). With an `engine`, the
    per-row flags (language identification is most of the card's time) are computed in
    batches on it; the rest are group-bys on the driver. The card is the same."""
    cfg = cfg or QualityConfig()
    missing = [c for c in ("id", "text", "label", "split") if c not in corpus.columns]
    if missing:
        raise InputError(
            f"the quality card needs the corpus columns id, text, label and split; {missing} "
            f"missing from {corpus.columns}; read the data with assay's reader first"
        )
    if "lang" not in corpus.columns:
        corpus = corpus.with_columns(lang=pl.lit(corpus_mod.DEFAULTS["lang"], pl.String))
    frame = corpus.with_columns(
        pl.col("text").fill_null(""),
        pl.col("split").fill_null("(none)"),
        _label_text(corpus).alias("_label"),
    ).with_columns(
        _chars=pl.col("text").str.len_chars().cast(pl.Int64),
        _words=pl.col("text").str.extract_all(r"\S+").list.len().cast(pl.Int64),
    )
    per_label = _explode_labels(frame)
    flagged, flag_counts, lang_checked = _flags(frame, cfg, engine)
    dup_findings, duplicates = _duplicates(frame, cfg.normalization)
    findings = (
        pl.concat([flagged, dup_findings], how="vertical_relaxed")
        .select(list(FINDINGS_SCHEMA))
        .cast(FINDINGS_SCHEMA)
        .sort("issue", "id")
    )
    sections: dict[str, Any] = {
        "rows": frame.height,
        "splits": _counts(frame, per_label),
        "lengths": _lengths(per_label),
        "duplicates": duplicates,
        "flags": {**flag_counts, "language_checked": lang_checked},
        "vocabulary": _vocabulary(per_label, cfg),
        "label_noise": _label_noise(frame),
    }
    return QualityCard(sections=sections, findings=findings)


# -- counts and lengths ----------------------------------------------------------------------


def _label_text(corpus: pl.DataFrame) -> pl.Expr:
    """A display string of the label: list labels joined with '|'."""
    if corpus_mod.is_multilabel(corpus):
        return pl.col("label").list.sort().list.join("|")
    return pl.col("label").cast(pl.String)


def _explode_labels(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per (row, label): multi-label rows count once for each of their labels."""
    if corpus_mod.is_multilabel(frame):
        out = frame.with_columns(pl.col("label").alias("_label")).explode("_label")
    else:
        out = frame
    return out.with_columns(pl.col("_label").fill_null(UNLABELLED))


def _counts(frame: pl.DataFrame, per_label: pl.DataFrame) -> list[dict[str, Any]]:
    labels = sorted(x for x in per_label["_label"].unique().to_list() if x != UNLABELLED)
    out = []
    for split in _split_order(frame["split"]):
        part = per_label.filter(pl.col("split") == split)
        counts = dict(part.group_by("_label").len().sort("_label").iter_rows())
        labelled = {k: v for k, v in counts.items() if k != UNLABELLED}
        missing = [x for x in labels if x not in labelled]
        ratio = None
        if labelled and not missing:
            ratio = max(labelled.values()) / min(labelled.values())
        out.append(
            {
                "split": split,
                "rows": int(frame.filter(pl.col("split") == split).height),
                "labels": {k: int(v) for k, v in counts.items()},
                "imbalance_ratio": None if ratio is None else round(ratio, 4),
                "missing_labels": missing,
            }
        )
    return out


def _split_order(splits: pl.Series) -> list[str]:
    rank = {s: i for i, s in enumerate(corpus_mod.SPLITS)}
    return sorted(splits.unique().to_list(), key=lambda s: (rank.get(s, len(rank)), s))


def _lengths(per_label: pl.DataFrame) -> list[dict[str, Any]]:
    stats = [
        pl.col(col).quantile(q, "nearest").alias(f"{unit}_{name}")
        for unit, col in (("chars", "_chars"), ("words", "_words"))
        for name, q in PERCENTILES.items()
    ]
    table = per_label.group_by("_label").agg(pl.len().alias("rows"), *stats).sort("_label")
    out = []
    for row in table.iter_rows(named=True):
        for unit in ("chars", "words"):
            item = {"label": row["_label"], "unit": unit, "rows": row["rows"]}
            item.update({name: int(row[f"{unit}_{name}"]) for name in PERCENTILES})
            out.append(item)
    return out


# -- flagged rows ----------------------------------------------------------------------------


def _flags(
    frame: pl.DataFrame, cfg: QualityConfig, engine: Any = None
) -> tuple[pl.DataFrame, dict[str, int], bool]:
    # Decided once on the driver, so every batch checks languages or none does.
    checked = cfg.check_language and _has_langid()
    base = frame.select("id", "split", pl.col("_label").alias("label"), "text", "_words", "lang")
    if engine is None:
        flagged = flagged_rows(base, cfg, checked)
    else:
        # Row order differs between engines; the counts and the sorted findings do not.
        batch = functools.partial(_flagged_batch, cfg=cfg, checked=checked)
        got = pl.from_arrow(engine.map_batches(base.to_arrow(), batch))
        assert isinstance(got, pl.DataFrame)
        flagged = got
    counts = {issue: 0 for issue in ISSUES[:5]}
    counts.update(dict(flagged.group_by("issue").len().iter_rows()))
    return flagged, {k: int(v) for k, v in counts.items()}, checked


def flagged_rows(base: pl.DataFrame, cfg: QualityConfig, checked: bool) -> pl.DataFrame:
    """One row per flagged row and issue (id, split, label, issue, detail): each row's flags
    depend on that row alone, so any batch of rows can be flagged on its own."""
    empty = pl.col("text").str.strip_chars() == ""
    symbols = ~empty & ~pl.col("text").str.contains(r"\p{L}")
    parts = [
        base.filter(empty).with_columns(issue=pl.lit("empty"), detail=pl.lit("")),
        base.filter(~empty & (pl.col("_words") < cfg.min_words)).with_columns(
            issue=pl.lit("short"), detail=pl.format("{} words", "_words")
        ),
        base.filter(pl.col("_words") > cfg.max_words).with_columns(
            issue=pl.lit("long"), detail=pl.format("{} words", "_words")
        ),
        base.filter(symbols).with_columns(issue=pl.lit("symbols_only"), detail=pl.lit("")),
    ]
    if checked:
        candidates = base.filter(
            ~empty & ~symbols & (pl.col("text").str.len_chars() >= cfg.lang_min_chars)
        )
        parts.append(_other_language(candidates, cfg.lang_confidence))
    schema = {c: FINDINGS_SCHEMA[c] for c in ("id", "split", "label", "issue", "detail")}
    return pl.concat([p.select(list(schema)).cast(schema) for p in parts], how="vertical_relaxed")


def _flagged_batch(batch: Any, cfg: QualityConfig, checked: bool) -> Any:
    frame = pl.from_arrow(batch)
    assert isinstance(frame, pl.DataFrame)
    return flagged_rows(frame, cfg, checked).to_arrow()


def _has_langid() -> bool:
    import importlib.util

    return importlib.util.find_spec("py3langid") is not None


@functools.lru_cache(maxsize=1)
def _language_identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True).classify


def _other_language(rows: pl.DataFrame, confidence: float) -> pl.DataFrame:
    identify = _language_identifier()
    keep, details = [], []
    for text, lang in zip(rows["text"].to_list(), rows["lang"].to_list(), strict=True):
        code, prob = identify(text)
        other = prob >= confidence and lang is not None and code != lang.split("-")[0].lower()
        keep.append(other)
        details.append(f"{code} ({prob:.2f}), expected {lang}" if other else "")
    mask = pl.Series(keep, dtype=pl.Boolean)
    return rows.with_columns(issue=pl.lit("other_language"), detail=pl.Series(details)).filter(mask)


# -- duplicates ------------------------------------------------------------------------------


def _duplicates(
    frame: pl.DataFrame, norm: Normalization
) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
    keyed = frame.select(
        "id", "split", pl.col("_label").alias("label"), pl.col("text").alias("exact")
    ).with_columns(normalized=normalize_series(frame["text"], norm))
    keyed = keyed.with_row_index("_row")
    findings = []
    stats: dict[str, dict[str, int]] = {s: {} for s in _split_order(frame["split"])}
    for kind in ("exact", "normalized"):
        first = pl.col("_row").min().over(kind)
        first_in_split = pl.col("_row").min().over(kind, "split")
        splits_with = pl.col("split").n_unique().over(kind)
        marked = keyed.with_columns(
            _first=first, _first_split=first_in_split, _n_splits=splits_with
        )
        for split in stats:
            part = marked.filter(pl.col("split") == split)
            stats[split][f"{kind}_within"] = int((part["_row"] != part["_first_split"]).sum())
            stats[split][f"{kind}_across"] = int((part["_n_splits"] > 1).sum())
        copies = marked.filter(pl.col("_row") != pl.col("_first"))
        if kind == "normalized":
            exact_copies = set(findings[0]["id"].to_list()) if findings else set()
            copies = copies.filter(~pl.col("id").is_in(list(exact_copies)))
        originals = keyed.select(
            pl.col("_row").alias("_first"), pl.col("id").alias("_of"), pl.col("split").alias("_in")
        )
        copies = copies.join(originals, on="_first", how="left")
        findings.append(
            copies.select(
                "id",
                "split",
                "label",
                issue=pl.lit(f"{kind}_duplicate"),
                detail=pl.format("copy of {} ({})", "_of", "_in"),
            )
        )
    table = [{"split": split, **values} for split, values in stats.items()]
    return pl.concat(findings, how="vertical_relaxed"), table


# -- vocabulary ------------------------------------------------------------------------------


def _vocabulary(per_label: pl.DataFrame, cfg: QualityConfig) -> dict[str, Any]:
    tokens = per_label.select(
        "id", "_label", _word=pl.col("text").str.to_lowercase().str.extract_all(WORD)
    ).explode("_word")
    tokens = tokens.filter(pl.col("_word").is_not_null())
    # Overall figures count every row once, whatever its number of labels.
    overall = tokens.unique(["id"], keep="first").select("id", "_label")
    overall_tokens = tokens.join(overall, on=["id", "_label"], how="semi")
    result: dict[str, Any] = {
        **_type_token(overall_tokens["_word"]),
        "per_label": [
            {"label": label, **_type_token(part["_word"])}
            for (label,), part in tokens.group_by("_label", maintain_order=True)
        ],
    }
    result["per_label"].sort(key=lambda d: d["label"])
    result["typical_words"] = _typical_words(tokens, cfg.top_words, cfg.min_count)
    return result


def _type_token(words: pl.Series) -> dict[str, Any]:
    n, types = words.len(), words.n_unique() if words.len() else 0
    return {"tokens": int(n), "types": int(types), "ttr": round(types / n, 4) if n else 0.0}


def _typical_words(tokens: pl.DataFrame, top: int, min_count: int) -> list[dict[str, Any]]:
    """Per label, the words with the highest weighted log-odds z-score against the other
    labels' rows, with the whole corpus's counts as the Dirichlet prior."""
    labelled = tokens.filter(pl.col("_label") != UNLABELLED)
    counts = labelled.group_by("_label", "_word").len()
    totals = dict(counts.group_by("_label").agg(pl.col("len").sum()).iter_rows())
    # A word rarer than min_count overall is never listed: leave it out of the matrix
    # (the token totals above still count it).
    counts = counts.filter(pl.col("len").sum().over("_word") >= min_count)
    if counts.height == 0:
        return []
    words = sorted(counts["_word"].unique().to_list())
    labels = sorted(counts["_label"].unique().to_list())
    w_index = {w: i for i, w in enumerate(words)}
    l_index = {x: i for i, x in enumerate(labels)}
    matrix = np.zeros((len(labels), len(words)))
    for label, word, n in counts.iter_rows():
        matrix[l_index[label], w_index[word]] = n
    prior = matrix.sum(axis=0)  # the corpus's own counts as the informative prior
    a0 = float(sum(totals.values()))
    out = []
    for i, label in enumerate(labels):
        y_in = matrix[i]
        y_out = prior - y_in
        n_in = float(totals[label])
        n_out = a0 - n_in
        if n_in == 0 or n_out == 0:
            continue
        delta = np.log((y_in + prior) / (n_in + a0 - y_in - prior)) - np.log(
            (y_out + prior) / (n_out + a0 - y_out - prior)
        )
        z = delta / np.sqrt(1.0 / (y_in + prior) + 1.0 / (y_out + prior))
        z[y_in < min_count] = -np.inf
        order = np.lexsort((np.array(words), -z))[:top]
        for j in order:
            if not np.isfinite(z[j]) or z[j] <= 0:
                continue
            out.append(
                {
                    "label": label,
                    "word": words[j],
                    "count": int(y_in[j]),
                    "z": round(float(z[j]), 3),
                }
            )
    return out


# -- label noise -----------------------------------------------------------------------------


def _label_noise(frame: pl.DataFrame) -> dict[str, Any] | None:
    flag = "label_noise__is_issue"
    if flag not in frame.columns:
        return None
    scored = frame.filter(pl.col(flag).is_not_null())
    flagged = scored.filter(pl.col(flag))
    per = (
        scored.group_by("split", "_label")
        .agg(scored=pl.len(), flagged=pl.col(flag).sum().cast(pl.Int64))
        .sort("split", "_label")
        .rename({"_label": "label"})
    )
    out: dict[str, Any] = {
        "scored": scored.height,
        "flagged": flagged.height,
        "share": round(flagged.height / scored.height, 4) if scored.height else 0.0,
        "per_label": per.to_dicts(),
    }
    if "label_noise__suggested" in frame.columns and flagged.height:
        pairs = (
            flagged.group_by(
                pl.col("_label").alias("given"),
                pl.col("label_noise__suggested").cast(pl.String).alias("suggested"),
            )
            .len("rows")
            .sort(["rows", "given", "suggested"], descending=[True, False, False])
            .head(10)
        )
        out["suggested_pairs"] = pairs.to_dicts()
    if "label_noise__score" in frame.columns and scored.height:
        mean = scored["label_noise__score"].cast(pl.Float64).mean()
        out["mean_score"] = None if mean is None else round(float(mean), 4)
    return out
