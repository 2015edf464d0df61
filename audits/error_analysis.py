"""Error analysis of a trained classifier on its evaluation predictions.

- **confident mistakes**: the wrong predictions the model was surest of (top k by the
  probability of the wrong class; for multi-label, of the surest wrong class decision);
- **confusion pairs**: true -> predicted label counts, most frequent first, with the share
  of the true label's rows;
- **features** (the fast model): the word n-grams with the largest logistic-regression
  weight towards each class. The fast model hashes n-grams, so names come from the texts
  given (the training texts): every word n-gram in them is hashed the way the model does
  and looked up in its vocabulary;
- **occlusion** (any model, meant for the encoder): on a seeded sample of mistakes, each
  word is dropped in turn and the fall of the predicted class's probability measured, all
  variants predicted in batches; the words whose removal lowers it most are those the
  wrong decision rests on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from assay.errors import InputError

MISTAKE_SCHEMA = {
    "id": pl.String,
    "text": pl.String,
    "label": pl.String,
    "pred": pl.String,
    "confidence": pl.Float64,
    "true_proba": pl.Float64,
}
CONFUSION_SCHEMA = {"label": pl.String, "pred": pl.String, "n": pl.Int64, "share": pl.Float64}
FEATURE_SCHEMA = {"class": pl.String, "feature": pl.String, "weight": pl.Float64}
OCCLUSION_SCHEMA = {
    "id": pl.String,
    "label": pl.String,
    "pred": pl.String,
    "position": pl.Int64,
    "word": pl.String,
    "drop": pl.Float64,
}


@dataclasses.dataclass
class ErrorReport:
    mistakes: pl.DataFrame  # MISTAKE_SCHEMA, most confident first
    confusion: pl.DataFrame  # CONFUSION_SCHEMA, most frequent first
    features: pl.DataFrame | None = None  # FEATURE_SCHEMA (fast model only)
    occlusion: pl.DataFrame | None = None  # OCCLUSION_SCHEMA, per sampled mistake

    def to_dict(self, k: int = 10) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mistakes": self.mistakes.head(k).to_dicts(),
            "confusion": self.confusion.head(k).to_dicts(),
        }
        if self.features is not None:
            out["features"] = self.features.to_dicts()
        if self.occlusion is not None:
            top = self.occlusion.sort(["id", "drop"], descending=[False, True])
            out["occlusion"] = top.group_by("id", maintain_order=True).head(5).to_dicts()
        return out


def _as_text(value: Any) -> str:
    return "|".join(sorted(map(str, value))) if isinstance(value, (list, tuple)) else str(value)


def _check(predictions: pl.DataFrame) -> None:
    missing = [c for c in ("id", "label", "pred", "proba") if c not in predictions.columns]
    if missing:
        raise InputError(
            f"error analysis needs predictions with id, label, pred and proba; {missing} "
            f"missing from {predictions.columns}"
        )


def confident_mistakes(
    predictions: pl.DataFrame, classes: Sequence[str], k: int = 20
) -> pl.DataFrame:
    """The k wrong predictions made with the highest probability of the wrong decision.

    `classes` name the columns of `proba` (the model's classes); a true label the model
    never saw has probability 0."""
    _check(predictions)
    classes = [str(c) for c in classes]
    index = {c: i for i, c in enumerate(classes)}
    rows = []
    for row in predictions.filter(pl.col("label").is_not_null()).iter_rows(named=True):
        label, pred, proba = row["label"], row["pred"], np.asarray(row["proba"], dtype=float)
        if isinstance(label, (list, tuple)):
            truth, chosen = set(map(str, label)), set(map(str, pred or []))
            wrong = truth ^ chosen
            if not wrong:
                continue
            p = {c: float(proba[index[c]]) if c in index else 0.0 for c in truth | chosen}
            conf = max(p[c] if c in chosen else 1 - p[c] for c in wrong)
            true_p = float(np.mean([p[c] for c in truth])) if truth else float("nan")
        else:
            if str(label) == str(pred):
                continue
            conf = proba[index[str(pred)]]
            true_p = proba[index[str(label)]] if str(label) in index else 0.0
        rows.append(
            {
                "id": row["id"],
                "text": row.get("text"),
                "label": _as_text(label),
                "pred": _as_text(pred),
                "confidence": float(conf),
                "true_proba": float(true_p),
            }
        )
    frame = pl.DataFrame(rows, schema=MISTAKE_SCHEMA)
    return frame.sort(["confidence", "id"], descending=[True, False]).head(k)


def confusion_pairs(predictions: pl.DataFrame) -> pl.DataFrame:
    """true -> predicted counts of the wrong predictions, most frequent first."""
    labelled = predictions.filter(pl.col("label").is_not_null())
    frame = pl.DataFrame(
        {
            "label": [_as_text(x) for x in labelled["label"].to_list()],
            "pred": [_as_text(x) for x in labelled["pred"].to_list()],
        },
        schema={"label": pl.String, "pred": pl.String},
    )
    totals = frame.group_by("label").len("total")
    wrong = frame.filter(pl.col("label") != pl.col("pred")).group_by("label", "pred").len("n")
    out = wrong.join(totals, on="label").with_columns(
        n=pl.col("n").cast(pl.Int64), share=pl.col("n") / pl.col("total")
    )
    return (
        out.select(list(CONFUSION_SCHEMA))
        .cast(CONFUSION_SCHEMA)
        .sort(["n", "label", "pred"], descending=[True, False, False])
    )


# -- the fast model's weights ---------------------------------------------------------------


def _word_weights(model: Any) -> tuple[Any, np.ndarray]:
    """A fast model's word TF-IDF block and per-class weights (`FastModel.word_weights`)."""
    get = getattr(model, "word_weights", None)
    if get is None:
        raise InputError("feature weights need a fitted fast model (TF-IDF + logistic regression)")
    return get()


def fast_model_features(model: Any, texts: Sequence[str], k: int = 15) -> pl.DataFrame:
    """Per class, the k named word n-grams with the largest weight towards it."""
    from assay.train.features import WORD_TOKEN, word_ngrams

    block, weights = _word_weights(model)
    lo, hi = block.ngrams
    names: dict[int, str] = {}
    tokens = [WORD_TOKEN.findall(t.lower()) for t in texts]
    for n in range(lo, hi + 1):
        grams = sorted(
            {" ".join(toks[i : i + n]) for toks in tokens for i in range(len(toks) - n + 1)}
        )
        if not grams:
            continue
        docs, hashes = word_ngrams(grams, n, n)
        for d, h in zip(docs.tolist(), hashes.tolist(), strict=True):
            names.setdefault(h, grams[d])
    vocab = block.vocabulary_
    hashes = np.array(sorted(names), dtype=np.uint64)
    pos = np.searchsorted(vocab, hashes)
    pos = np.minimum(pos, len(vocab) - 1)
    known = vocab[pos] == hashes
    columns = pos[known]
    labels = [names[int(h)] for h in hashes[known]]
    rows = []
    for cls, w in zip(model.classes_, weights, strict=True):
        values = w[columns]
        order = np.lexsort((np.array(labels), -values))[:k]
        rows += [
            {"class": str(cls), "feature": labels[j], "weight": float(values[j])}
            for j in order
            if values[j] > 0
        ]
    return pl.DataFrame(rows, schema=FEATURE_SCHEMA)


# -- occlusion ------------------------------------------------------------------------------


def occlusion(
    model: Any,
    mistakes: pl.DataFrame,
    *,
    rng: np.random.Generator,
    sample: int = 20,
    max_words: int = 64,
    batch_size: int = 256,
) -> pl.DataFrame:
    """Drop each word of a seeded sample of mistakes in turn; the fall of the predicted
    class's probability per word (multi-label predictions: the first predicted class)."""
    if mistakes.height == 0:
        return pl.DataFrame(schema=OCCLUSION_SCHEMA)
    picks = np.sort(rng.choice(mistakes.height, size=min(sample, mistakes.height), replace=False))
    chosen = mistakes[picks]
    classes = [str(c) for c in model.classes_]
    originals, variants, owners = [], [], []
    for r, text in enumerate(chosen["text"].to_list()):
        words = (text or "").split()[:max_words]
        originals.append(" ".join(words))
        for i in range(len(words)):
            variants.append(" ".join(words[:i] + words[i + 1 :]))
            owners.append((r, i, words[i]))
    base = _predict(model, originals, batch_size)
    varied = _predict(model, variants, batch_size)
    rows = []
    preds = chosen["pred"].to_list()
    for (r, i, word), p in zip(owners, varied, strict=True):
        target = preds[r].split("|")[0]
        if target not in classes:
            continue
        c = classes.index(target)
        rows.append(
            {
                "id": chosen["id"][r],
                "label": chosen["label"][r],
                "pred": preds[r],
                "position": i,
                "word": word,
                "drop": float(base[r, c] - p[c]),
            }
        )
    return pl.DataFrame(rows, schema=OCCLUSION_SCHEMA).sort(
        ["id", "drop", "position"], descending=[False, True, False]
    )


def _predict(model: Any, texts: list[str], batch_size: int) -> np.ndarray:
    if not texts:
        return np.zeros((0, len(model.classes_)))
    return np.concatenate(
        [
            np.asarray(model.predict_proba(texts[s : s + batch_size]), dtype=np.float64)
            for s in range(0, len(texts), batch_size)
        ]
    )


def error_report(
    predictions: pl.DataFrame,
    classes: Sequence[str],
    *,
    model: Any = None,
    train_texts: Sequence[str] | None = None,
    rng: np.random.Generator | None = None,
    k: int = 20,
    occlusion_sample: int = 20,
    attribution: str = "auto",
) -> ErrorReport:
    """Confident mistakes and confusion pairs; with the model, its feature weights (fast
    model and `train_texts`) or occlusion on sampled mistakes (`attribution`: auto picks
    features for the fast model and occlusion otherwise; `both`, `features`, `occlusion`,
    `none`)."""
    if attribution not in ("auto", "both", "features", "occlusion", "none"):
        raise InputError(
            f"unknown attribution {attribution!r}; expected auto, both, features, occlusion or none"
        )
    _check(predictions)
    report = ErrorReport(
        mistakes=confident_mistakes(predictions, classes, k=k),
        confusion=confusion_pairs(predictions),
    )
    if model is None or attribution == "none":
        return report
    linear = hasattr(model, "word_weights")
    if attribution in ("features", "both") or (attribution == "auto" and linear):
        report.features = fast_model_features(model, train_texts or [], k=k)
    if attribution in ("occlusion", "both") or (attribution == "auto" and not linear):
        if rng is None:
            raise InputError("occlusion draws a sample of mistakes: pass rng (ctx.rng(...))")
        everything = confident_mistakes(predictions, classes, k=predictions.height)
        report.occlusion = occlusion(model, everything, rng=rng, sample=occlusion_sample)
    return report
