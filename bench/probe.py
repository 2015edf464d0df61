"""Benchmark: the probe judge (`model: probe`) beside the fast model.

On SST-2 and TREC (../shared/data: train and test CSVs), `--rows` training rows are drawn
per seed (stratified: each label keeps its share of the train file), each model is fitted
on the draw and scored on the whole test file (accuracy and macro-F1, mean and range over
the seeds). With `--encoder`, MiniLM fine-tuned by the fine-tune loop (its defaults,
seeded like the draw) is scored too, with each judge's agreement with its test
predictions. Timing, each in a fresh process on the first seed's draw:

- the probe cold: encoder load, then a fit whose texts are all new (embedding + head), then
  the test predictions (embedding the test texts);
- the probe warm: more fits and predictions on the same texts in that process (the head
  only: every vector comes from the in-process cache; the median of 5);
- the probe from disk: a new process whose `cache_dir` already holds the vectors (no
  encoder load, no embedding);
- the fast model: fit and predict.

`--tune-c` instead scores the probe on dev rows for each C of `C_GRID` (SST-2's dev file,
500 held-out TREC train rows; 500 and 2,000 training rows): how its default C was chosen.

    nice -n 10 .venv/bin/python bench/probe.py [--data ../shared/data] [--rows 500]
        [--seeds 3] [--encoder] [--tune-c] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import isolated

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
DATASETS = ("sst2", "trec")
ENCODER = "minilm"  # the fine-tuned reference judge, with `--encoder`
WARM_REPEATS = 5


def load(data: Path, name: str) -> tuple[list[str], list[str], list[str], list[str]]:
    import polars as pl

    train = pl.read_csv(data / name / "train.csv")
    test = pl.read_csv(data / name / "test.csv")
    return (
        train["text"].to_list(),
        train["label"].cast(pl.String).to_list(),
        test["text"].to_list(),
        test["label"].cast(pl.String).to_list(),
    )


def stratified(labels: list[str], n: int, seed: int) -> list[int]:
    """`n` row indices (about), each label's share as in `labels`, drawn by `seed`."""
    rng = np.random.default_rng(seed)
    y = np.asarray(labels)
    rows: list[int] = []
    for label in sorted(set(labels)):
        idx = np.flatnonzero(y == label)
        rows += rng.choice(idx, max(1, round(n * len(idx) / len(y))), replace=False).tolist()
    return sorted(rows)


def scores(pred: list[str], labels: list[str]) -> dict[str, float]:
    from assay.train.metrics import classification_report

    report = classification_report(labels, pred, sorted(set(labels) | set(pred)))
    return {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"]}


def make(model: str, seed: int = 0, cache_dir: str | None = None):
    from assay.train.evaluate import make_model

    return make_model(model, seed, {"cache_dir": cache_dir} if cache_dir else {}, None)


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "mean": round(float(np.mean(values)), 4),
        "min": round(float(np.min(values)), 4),
        "max": round(float(np.max(values)), 4),
    }


def quality(data: Path, name: str, rows: int, seeds: int, models: tuple[str, ...]) -> dict:
    """Test scores per model over the seeds' draws; with the fine-tuned encoder among the
    models, each other model's agreement with its test predictions too."""
    train_x, train_y, test_x, test_y = load(data, name)
    out: dict = {"train_rows": rows, "test_rows": len(test_x), "seeds": seeds}
    preds: dict[str, list[list[str]]] = {m: [] for m in models}
    for seed in range(seeds):
        draw = stratified(train_y, rows, seed)
        x, y = [train_x[i] for i in draw], [train_y[i] for i in draw]
        for model in models:
            preds[model].append(make(model, seed).fit(x, y).predict(test_x))
    for model in models:
        runs = [scores(p, test_y) for p in preds[model]]
        out[model] = {m: _spread([r[m] for r in runs]) for m in ("accuracy", "macro_f1")}
        if ENCODER in models and model != ENCODER:
            out[model]["agrees_with_encoder"] = _spread(
                [
                    float(np.mean(np.array(p) == np.array(e)))
                    for p, e in zip(preds[model], preds[ENCODER], strict=True)
                ]
            )
    return out


C_GRID = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
TUNE_ROWS = (500, 2000)
HELD_OUT = 500  # TREC has no dev file: this many train rows (seed 123) stand in for one


def tune_c(data: Path, seeds: int) -> list[dict]:
    """Dev accuracy and macro-F1 of the probe per C, training rows and dataset (SST-2's dev
    file; TREC's held-out train rows), mean over the seeds' draws. Test rows are not read."""
    out = []
    for name in DATASETS:
        train_x, train_y, _, _ = load(data, name)
        if name == "sst2":
            import polars as pl

            dev = pl.read_csv(data / name / "dev.csv")
            dev_x, dev_y = dev["text"].to_list(), dev["label"].cast(pl.String).to_list()
        else:
            held = set(stratified(train_y, HELD_OUT, 123))
            dev_x = [t for i, t in enumerate(train_x) if i in held]
            dev_y = [t for i, t in enumerate(train_y) if i in held]
            train_x = [t for i, t in enumerate(train_x) if i not in held]
            train_y = [t for i, t in enumerate(train_y) if i not in held]
        for rows in TUNE_ROWS:
            for c in C_GRID:
                runs = []
                for seed in range(seeds):
                    draw = stratified(train_y, rows, seed)
                    model = make("probe", seed).set_params(C=c)
                    model.fit([train_x[i] for i in draw], [train_y[i] for i in draw])
                    runs.append(scores(model.predict(dev_x), dev_y))
                out.append(
                    {"dataset": name, "train_rows": rows, "C": c}
                    | {m: round(float(np.mean([r[m] for r in runs])), 4) for m in runs[0]}
                )
    return out


def _timed(fn, repeats: int = 1) -> float:
    """Median wall seconds of `repeats` calls (2 shared cores: single timings jump)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return round(float(np.median(times)), 3)


def timing(data: Path, name: str, rows: int, model: str, cache_dir: str | None) -> dict:
    """Seconds of each stage in this (fresh) process."""
    train_x, train_y, test_x, _ = load(data, name)
    draw = stratified(train_y, rows, 0)
    x, y = [train_x[i] for i in draw], [train_y[i] for i in draw]
    out: dict = {}
    if model == "probe" and cache_dir is None:
        from assay import resources

        out["encoder_load_s"] = _timed(lambda: resources.sentence_encoder(None))
    first = make(model, 0, cache_dir)
    out["fit_s"] = _timed(lambda: first.fit(x, y))
    out["predict_test_s"] = _timed(lambda: first.predict(test_x))
    if model == "probe":
        second = make(model, 0, cache_dir)
        out["warm_fit_s"] = _timed(lambda: second.fit(x, y), WARM_REPEATS)
        out["warm_predict_test_s"] = _timed(lambda: second.predict(test_x), WARM_REPEATS)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--encoder",
        action="store_true",
        help="also fine-tune MiniLM (the reference judge; minutes per fit on a CPU)",
    )
    parser.add_argument(
        "--tune-c",
        action="store_true",
        help="instead: the probe's dev scores per C (how its default was chosen)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not args.data.is_dir():
        sys.exit(f"datasets not found at {args.data}: pass --data")
    if args.tune_c:
        rows = tune_c(args.data, args.seeds)
        for r in rows:
            print(json.dumps(r) if args.json else
                  f"{r['dataset']:5s} {r['train_rows']:5d} rows  C={r['C']:<6g} "
                  f"accuracy {r['accuracy']:.4f}  macro-F1 {r['macro_f1']:.4f}")  # fmt: skip
        return
    report: dict = {}
    for name in DATASETS:
        models = ("fast", "probe", ENCODER) if args.encoder else ("fast", "probe")
        entry = isolated(quality, args.data, name, args.rows, args.seeds, models)
        with tempfile.TemporaryDirectory() as cache:
            entry["seconds"] = {
                "fast": isolated(timing, args.data, name, args.rows, "fast", None),
                "probe_cold": isolated(timing, args.data, name, args.rows, "probe", None),
            }
            isolated(timing, args.data, name, args.rows, "probe", cache)  # fills the disk cache
            entry["seconds"]["probe_from_disk"] = isolated(
                timing, args.data, name, args.rows, "probe", cache
            )
        report[name] = entry
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for name, entry in report.items():
        print(f"{name}: {entry['train_rows']} train rows, {entry['seeds']} seeds, "
              f"{entry['test_rows']} test rows")  # fmt: skip
        for model in ("fast", "probe", ENCODER):
            if model not in entry:
                continue
            m = entry[model]
            agrees = m.get("agrees_with_encoder")
            print(f"  {model:6s} accuracy {m['accuracy']['mean']:.4f} "
                  f"[{m['accuracy']['min']:.4f}, {m['accuracy']['max']:.4f}]  "
                  f"macro-F1 {m['macro_f1']['mean']:.4f} "
                  f"[{m['macro_f1']['min']:.4f}, {m['macro_f1']['max']:.4f}]"
                  + (f"  agrees with the encoder {agrees['mean']:.4f}" if agrees else ""))  # fmt: skip
        for what, seconds in entry["seconds"].items():
            print(f"  {what:16s} {json.dumps(seconds)}")


if __name__ == "__main__":
    main()
