"""Benchmark: how precise label_noise's flags are, by the out-of-fold model's accuracy.

Draws SST-2 and TREC train subsets of 100, 500 and 2,000 rows, flips 10% or 20% of their
labels uniformly to another label (planted errors), cross-fits the fast model (K=5) and
flags with the default ranker (oof_loss, cleanlab_count). Per cell: the OOF accuracy
against the given labels with its bootstrap 95% interval, the estimated error count with
its interval, the flags' precision and recall against the planted flips (the datasets' own
label errors count against the flags), and whether the interval covers the planted count.
With `--imdb`, the same on the published out-of-fold probabilities of the IMDB test set
(cleanlab/label-errors: a strong model) for draws of the same sizes, and on the same
probabilities weakened (a share `blur` of the rows get Dirichlet noise instead), which
spans the accuracies from chance to about 0.95 on one real source. The table it prints
sets `min_oof_accuracy` (curate/label_noise.py, docs/label-noise.md).

    nice .venv/bin/python bench/label_noise_gate.py [--data ../shared/data] [--seeds 3]
        [--model fast] [--imdb] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
SIZES = (100, 500, 2000)
RATES = (0.10, 0.20)
DATASETS = ("sst2", "trec")


def _cell(frame: pl.DataFrame, n: int, rate: float, seed: int, model: str) -> dict:
    from assay.curate import label_errors, label_evidence
    from assay.train import crossfit

    rng = np.random.default_rng(seed)
    rows = frame.sample(n, seed=seed, shuffle=True)
    classes = sorted(frame["label"].unique().to_list())
    labels = rows["label"].to_list()
    flips = rng.choice(n, round(rate * n), replace=False)
    for i in flips:
        labels[i] = str(rng.choice([c for c in classes if c != labels[i]]))
    ids = [f"r{i}" for i in range(n)]
    kept = [c for c in classes if labels.count(c) >= 5]  # as label_noise: folds rows per label
    keep = [i for i in range(n) if labels[i] in kept]
    oof = crossfit.cross_fit(
        [rows["text"][i] for i in keep],
        [labels[i] for i in keep],
        ids=[ids[i] for i in keep],
        seed=seed,
        model=model,
    )
    given = pl.DataFrame({"id": [ids[i] for i in keep], "label": [labels[i] for i in keep]})
    found = label_errors.find_label_errors(given, oof.to_frame(), classes=oof.classes)
    y = np.array([oof.classes.index(labels[i]) for i in keep])
    ev = label_evidence.measure(y, oof.proba, False, rng=np.random.default_rng(seed))
    planted = {ids[i] for i in flips if i in set(keep)}
    flagged = set(found.filter("is_issue")["id"].to_list())
    hits = len(flagged & planted)
    return {
        "n": n,
        "rate": rate,
        "seed": seed,
        "oof_acc": ev.accuracy.estimate,
        "acc_low": ev.accuracy.low,
        "acc_high": ev.accuracy.high,
        "planted": len(planted),
        "est": ev.errors.estimate,
        "est_low": ev.errors.low,
        "est_high": ev.errors.high,
        "covers": ev.errors.low <= len(planted) <= ev.errors.high,
        "flagged": len(flagged),
        "precision": hits / len(flagged) if flagged else None,
        "recall": hits / max(len(planted), 1),
    }


def _score(y: np.ndarray, proba: np.ndarray, planted: set[int], seed: int) -> dict:
    from assay.curate import label_errors, label_evidence

    ids = [str(i) for i in range(len(y))]
    classes = [str(j) for j in range(proba.shape[1])]
    given = pl.DataFrame({"id": ids, "label": [str(v) for v in y]})
    probs = pl.DataFrame({"id": ids, **{c: proba[:, j] for j, c in enumerate(classes)}})
    found = label_errors.find_label_errors(given, probs, classes=classes)
    ev = label_evidence.measure(y, proba, False, rng=np.random.default_rng(seed))
    flagged = {int(i) for i in found.filter("is_issue")["id"].to_list()}
    hits = len(flagged & planted)
    return {
        "oof_acc": ev.accuracy.estimate,
        "acc_low": ev.accuracy.low,
        "acc_high": ev.accuracy.high,
        "planted": len(planted),
        "est": ev.errors.estimate,
        "est_low": ev.errors.low,
        "est_high": ev.errors.high,
        "covers": ev.errors.low <= len(planted) <= ev.errors.high,
        "flagged": len(flagged),
        "precision": hits / len(flagged) if flagged else None,
        "recall": hits / max(len(planted), 1),
    }


def _imdb_cell(root: Path, n: int, rate: float, seed: int, blur: float) -> dict:
    rng = np.random.default_rng(seed)
    proba = np.load(root / "imdb_test_set_pyx.npy").astype(np.float64)
    labels = np.load(root / "imdb_test_set_original_labels.npy").astype(np.int64)
    pick = rng.choice(len(labels), n, replace=False)
    p = proba[pick] / proba[pick].sum(axis=1, keepdims=True)
    blurred = rng.random(n) < blur
    p[blurred] = rng.dirichlet([1.0, 1.0], int(blurred.sum()))
    y = labels[pick].copy()
    flips = {int(i) for i in rng.choice(n, round(rate * n), replace=False)}
    for i in flips:
        y[i] = 1 - y[i]
    return {"n": n, "rate": rate, "seed": seed, "blur": blur, **_score(y, p, flips, seed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--model", default="fast")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--imdb", action="store_true")
    args = parser.parse_args()
    out = []
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.imdb:
        for blur in (0.0, 0.2, 0.4, 0.6):
            for n in sizes:
                for rate in RATES:
                    for seed in range(args.seeds):
                        row = {
                            "data": "imdb",
                            **_imdb_cell(args.data / "cleanlab-imdb", n, rate, seed, blur),
                        }
                        out.append(row)
        table = pl.DataFrame(out)
        with pl.Config(tbl_rows=100, tbl_cols=20, tbl_width_chars=200):
            print(
                table.group_by("blur", "n", "rate", maintain_order=True).agg(
                    pl.col("oof_acc", "acc_low", "precision", "recall").mean().round(3),
                    pl.col("flagged", "planted", "est_high").mean().round(1),
                    pl.col("covers").mean().round(2),
                )
            )
        if args.json:
            args.json.write_text(json.dumps(out, indent=1))
        return
    for name in DATASETS:
        frame = pl.read_csv(args.data / name / "train.csv").select("text", "label")
        for n in sizes:
            for rate in RATES:
                for seed in range(args.seeds):
                    row = {
                        "data": name,
                        "model": args.model,
                        **_cell(frame, n, rate, seed, args.model),
                    }
                    out.append(row)
                    print(
                        json.dumps(
                            {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}
                        ),
                        flush=True,
                    )
    table = pl.DataFrame(out)
    with pl.Config(tbl_rows=100, tbl_cols=20, tbl_width_chars=200):
        print(
            table.group_by("data", "n", "rate", maintain_order=True).agg(
                pl.col("oof_acc", "acc_low", "precision", "recall").mean().round(3),
                pl.col("flagged", "planted", "est_high").mean().round(1),
                pl.col("covers").mean().round(2),
            )
        )
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
