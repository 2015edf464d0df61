"""Benchmark: do the balance strategies help a model trained on an imbalanced set?

SST-2 train subsampled to 1 positive : 9 negative (all 3,310 negatives, 368 positives,
seed 0); the test set (1,821 sentences, about half positive) is unchanged. Arms: none,
`reweight` (inverse frequency; effective number, beta 0.999), `oversample`, `undersample`,
`augment_to` with `synonyms` and with `eda` (uniform target). Fast model, 5 seeds (the
step and the model both take the seed). Test macro-F1 and the F1 of the minority class
(positive), mean over seeds, with a 95% bootstrap CI over test sentences (the same
resamples for every arm), and the difference to `none` with its CI.

    .venv/bin/python bench/balance.py [--data ../shared/data] [--seeds 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import polars as pl
from harness import target

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
MINORITY = "positive"
RATIO = 9
SEED = 0
RESAMPLES = 1000

ARMS: dict[str, dict | None] = {
    "none": None,
    "reweight inverse": {"strategy": "reweight"},
    "reweight effective": {"strategy": "reweight", "weighting": "effective", "beta": 0.999},
    "oversample": {"strategy": "oversample"},
    "undersample": {"strategy": "undersample"},
    "augment_to synonyms": {"strategy": "augment_to", "augmenter": "synonyms"},
    "augment_to eda": {"strategy": "augment_to", "augmenter": "eda"},
}


def load(data: Path) -> pl.DataFrame:
    from assay import from_records

    frames = [
        pl.read_csv(data / "sst2" / f"{s}.csv").with_columns(split=pl.lit(s))
        for s in ("train", "test")
    ]
    full = pl.concat(frames).with_row_index("n").with_columns(id=pl.format("s{}", pl.col("n")))
    train = full.filter(pl.col("split") == "train")
    neg = train.filter(pl.col("label") != MINORITY)
    pos = train.filter(pl.col("label") == MINORITY)
    rng = np.random.default_rng(SEED)
    keep = np.sort(rng.choice(pos.height, size=round(neg.height / RATIO), replace=False))
    rows = pl.concat([neg, pos[keep], full.filter(pl.col("split") == "test")])
    return from_records(
        rows["text"].to_list(),
        rows["label"].to_list(),
        ids=rows["id"].to_list(),
        split=rows["split"].to_list(),
    )


def f1s(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """(macro-F1, F1 of class 1) for 0/1 arrays."""
    out = []
    for c in (0, 1):
        tp = np.sum((p == c) & (y == c))
        pred, true = np.sum(p == c), np.sum(y == c)
        out.append(2 * tp / (pred + true) if pred + true else 0.0)
    return float(np.mean(out)), float(out[1])


def run(data: Path, seeds: int) -> dict:
    from assay.context import RunContext
    from assay.curate.balance import BalanceEdit
    from assay.recipes.catalog import load_steps
    from assay.recipes.runner import run_steps
    from assay.train.evaluate import train_and_evaluate

    load_steps()
    corpus = load(data)
    test = corpus.filter(pl.col("split") == "test").sort("id")
    y = (test["label"] == MINORITY).cast(pl.Int8).to_numpy()
    preds: dict[str, list[np.ndarray]] = {}
    info: dict[str, dict] = {}
    for name, params in ARMS.items():
        started = time.perf_counter()
        preds[name] = []
        for seed in range(seeds):
            frame = corpus
            if params is not None:
                res = run_steps(corpus, [BalanceEdit(**params)], RunContext(seed=seed))
                frame = res.corpus
                summary = res.reports[0].summary
            outcome = train_and_evaluate(frame, seed=seed)
            got = outcome.predictions.filter(pl.col("split") == "test").sort("id")
            preds[name].append((got["pred"] == MINORITY).cast(pl.Int8).to_numpy())
        train = frame.filter(pl.col("split") == "train")
        info[name] = {
            "train_rows": train.height,
            "minority_rows": int((train["label"] == MINORITY).sum()),
            "seconds": round(time.perf_counter() - started, 1),
        }
        if params is not None:
            info[name]["distribution_after"] = summary.get("distribution_after")
    rng = np.random.default_rng(SEED)
    boots = [rng.integers(0, len(y), len(y)) for _ in range(RESAMPLES)]

    def stats(name: str) -> np.ndarray:
        # (1 + RESAMPLES, 2): point estimate, then each resample; mean over seeds.
        rows = [np.mean([f1s(y, p) for p in preds[name]], axis=0)]
        for b in boots:
            rows.append(np.mean([f1s(y[b], p[b]) for p in preds[name]], axis=0))
        return np.array(rows)

    base = stats("none")
    results = {}
    for name in ARMS:
        s = base if name == "none" else stats(name)
        d = s - base
        row = dict(info[name])
        for j, metric in enumerate(("macro_f1", "minority_f1")):
            row[metric] = {
                "mean": round(float(s[0, j]), 4),
                "low": round(float(np.quantile(s[1:, j], 0.025)), 4),
                "high": round(float(np.quantile(s[1:, j], 0.975)), 4),
                "delta": round(float(d[0, j]), 4),
                "delta_low": round(float(np.quantile(d[1:, j], 0.025)), 4),
                "delta_high": round(float(np.quantile(d[1:, j], 0.975)), 4),
            }
        results[name] = row
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    res = run(args.data, args.seeds)
    best = max(res, key=lambda a: res[a]["macro_f1"]["mean"])
    targets = [
        target(
            "best_strategy_macro_f1_gain_over_none",
            res[best]["macro_f1"]["mean"] - res["none"]["macro_f1"]["mean"],
            0.0,
            ">=",
        )
    ]
    if args.json:
        out = {"bench": "balance", "params": {"seeds": args.seeds, "ratio": f"1:{RATIO}"}}
        print(json.dumps({**out, "results": res, "targets": targets}))
        return
    print(f"SST-2 train at 1 {MINORITY} : {RATIO} negative, fast model, {args.seeds} seeds")
    head = f"{'arm':22} {'macro-F1 [CI]':24} {'dF1 [CI]':26} {'minority F1 [CI]':24}"
    print(head, f"{'dF1 [CI]':26} rows(min)")
    for name, row in res.items():
        cells = []
        for metric in ("macro_f1", "minority_f1"):
            m = row[metric]
            cells.append(f"{m['mean']:.4f} [{m['low']:.4f}, {m['high']:.4f}]")
            cells.append(f"{m['delta']:+.4f} [{m['delta_low']:+.4f}, {m['delta_high']:+.4f}]")
        print(
            f"{name:22} {cells[0]:24} {cells[1]:26} {cells[2]:24} {cells[3]:26} "
            f"{row['train_rows']}({row['minority_rows']})"
        )
    print("best:", best, targets)


if __name__ == "__main__":
    main()
