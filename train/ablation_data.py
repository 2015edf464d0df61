"""Training sets for ablation arms: a stratified train subsample and size-matched controls.

A `duplicate` control replaces each generated train row by a copy of its parent: the same
rows per parent, per label and in total as the variant, but no new content. The variant
vs control delta is what the new text did; control vs baseline is what more (re-weighted)
rows did.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from assay import corpus as corpus_mod
from assay.errors import InputError
from assay.ids import derived_id_expr

DUPLICATE_OP = "dup"


def subsample_train(corpus: pl.DataFrame, n: int, seed: int) -> pl.DataFrame:
    """Keep `n` train rows, stratified by label (seeded); other splits are untouched."""
    train = corpus.filter(pl.col("split") == "train")
    if train.height <= n:
        return corpus
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x7A1]))
    key = (
        train["label"].list.first()
        if corpus_mod.is_multilabel(train)
        else train["label"].fill_null("")
    )
    keep: list[int] = []
    labels = key.to_list()
    groups: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        groups.setdefault(str(lab), []).append(i)
    quotas = {k: len(v) * n / train.height for k, v in groups.items()}
    counts = {k: int(q) for k, q in quotas.items()}
    # Largest remainders get the rows that rounding down left over.
    for k in sorted(quotas, key=lambda k: (quotas[k] - counts[k], k), reverse=True)[
        : n - sum(counts.values())
    ]:
        counts[k] += 1
    for k in sorted(groups):
        rows = np.array(groups[k])
        keep.extend(rng.choice(rows, size=counts[k], replace=False).tolist())
    kept_ids = train[sorted(keep)]["id"]
    return corpus.filter((pl.col("split") != "train") | pl.col("id").is_in(kept_ids.implode()))


def duplicate_control(corpus: pl.DataFrame, fallback: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Replace every generated train row by a copy of its parent (text and label).

    Returns the control corpus and the number of rows replaced. Parents are looked up in the
    corpus, then in `fallback` (the input of the variant's steps) if a step dropped them.
    """
    generated = (
        (pl.col("split") == "train")
        & pl.col("parent_id").is_not_null()
        & (pl.col("origin") != corpus_mod.SOURCE_ORIGIN)
    )
    gen = corpus.filter(generated)
    if gen.height == 0:
        return corpus, 0
    parents = pl.concat(
        [corpus.select("id", "text", "label"), fallback.select("id", "text", "label")],
        how="vertical_relaxed",
    ).unique("id", keep="first", maintain_order=True)
    parents = parents.rename({"id": "parent_id", "text": "_p_text", "label": "_p_label"})
    twin = gen.join(parents, on="parent_id", how="left", maintain_order="left")
    missing = twin.filter(pl.col("_p_text").is_null())
    if missing.height:
        raise InputError(
            f"duplicate control: {missing.height} generated rows have no parent in the corpus, "
            f"e.g. {missing['id'].head(3).to_list()}"
        )
    twin = twin.with_columns(
        text=pl.col("_p_text"),
        label=pl.col("_p_label"),
        id=derived_id_expr(
            pl.col("parent_id"), DUPLICATE_OP, pl.int_range(pl.len()).over("parent_id")
        ),
        origin=pl.lit(f"ablation.{DUPLICATE_OP}"),
    ).drop("_p_text", "_p_label")
    kept = corpus.filter(~generated)
    return pl.concat([kept, twin.select(kept.columns)], how="vertical_relaxed"), gen.height
