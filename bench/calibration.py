"""Benchmark: are the ablation's "significant" calls and 95% CIs calibrated?

Three measurements, each for the current design and for the old one in the same run:

- A/A: repetitions of an ablation whose variant is the baseline with an independent train
  draw of the same size from the same pool (SST-2 train, `--rows` rows, `--seeds` seeds,
  fast model, evaluated on the 1,821 SST-2 test sentences). The share called significant
  at alpha 0.05 should be at most 5%.
- Power: the same baseline draws, with a planted harmful variant: the seed's own draw with
  10% of its train labels flipped. The share called significantly worse should be >= 80%.

A fit is the expensive part, so the benchmark first fits `--pool` independent train draws
(and each draw with its labels flipped) once, and every repetition then takes 2 x seeds
distinct draws from that pool at random: the first half are the baseline's seeds, the
second half the A/A variant's, and the flipped twins of the first half the harmful
variant's. Repetitions share draws now and then (two of 1,000 repetitions overlap in a
draw with probability about 1 - (1 - 10/pool)^10), so they are not quite independent and
the Wilson intervals are slightly narrower than they should be; a share far from the
target is still far.
- Coverage: simulated predictions with a known true delta and seed-to-seed variance: the
  share of 95% CIs that cover the true delta should be 93-97%.

Designs (through `paired_bootstrap`, what the runner's `compare_arms` runs for each
comparison, and the runner's own train draw `subsample_train` / `train_draw_seed`):

- `new` (default): each seed draws its own train rows, the seed part of the bootstrap is
  a Student-t draw scaled by the seeds' spread, p from the bootstrap (`p_test:
  bootstrap`), Holm-adjusted.
- `new_permutation`: the same runs, p from the metric permutation test.
- `old`: one draw for every seed (`resample_train: once`; the fast model is
  deterministic, so every seed gives the same predictions), plain bootstrap, p from the
  per-example correctness sign-flip test.
- `t_seeds` (a yardstick, not a design): a Student t-test on the per-seed deltas of the
  `new` runs, exact at 5% when the seeds' deltas are independent and normal. Its A/A share
  in the same run tells how far the repetitions' own noise moves a share whose true value
  is 5%.

The statistics are driven directly (one fast-model fit per arm and seed; no recipe
machinery) so that hundreds of repetitions fit on a busy laptop; `--quick` is a smoke run.
The binomial 95% interval (Wilson) of every share is printed with it.

    .venv/bin/python bench/calibration.py [--reps 2000] [--pool 600] [--sims 1000] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from statistics import NormalDist

import numpy as np
from harness import target

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "sst2"
ALPHA = 0.05
FLIP = 0.10
METRIC = "macro_f1"
RECIPE_SEED = 13
DESIGNS = ("new", "new_permutation", "old", "t_seeds")
COVERAGE_OF = {"new": "new", "new_permutation": "new", "old": "old"}
# The parent reads data with polars (threads) before the pools start: fork would deadlock.
SPAWN = multiprocessing.get_context("spawn")


def wilson(hits: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    if n == 0:
        return (float("nan"), float("nan"))
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def share(hits: int, n: int) -> dict:
    low, high = wilson(hits, n)
    return {"share": hits / n if n else float("nan"), "hits": hits, "n": n,
            "low": round(low, 4), "high": round(high, 4)}  # fmt: skip


# -- real runs: A/A and power --------------------------------------------------------------


def load_pool():
    import polars as pl

    from assay.corpus import from_records

    train = pl.read_csv(DATA / "train.csv")
    test = pl.read_csv(DATA / "test.csv")
    pool = from_records(train["text"].to_list(), train["label"].to_list(), split="train")
    return pool, test["text"].to_list(), test["label"].to_list()


def flip_labels(frame, rng: np.random.Generator):
    import polars as pl

    labels = sorted(frame["label"].unique().to_list())
    flip = rng.random(frame.height) < FLIP
    new = [labels[1 - labels.index(x)] if f else x
           for x, f in zip(frame["label"].to_list(), flip, strict=True)]  # fmt: skip
    return frame.with_columns(label=pl.Series(new, dtype=pl.String))


def fit_predict(frame, test_texts: list[str], classes: list[str]) -> np.ndarray:
    from assay.train.fast import FastModel
    from assay.train.metrics import encode

    model = FastModel(seed=0).fit(frame["text"].to_list(), frame["label"].to_list())
    return encode(model.predict(test_texts), classes)


def judge(variant, base, y, k, rng, args) -> dict:
    """Calls of the three designs on one comparison, through `paired_bootstrap` (what
    `compare_arms` runs per comparison; Holm over one comparison changes nothing)."""
    from assay.train.bootstrap import correctness_test, paired_bootstrap

    s = len(base)
    new = paired_bootstrap(y, variant, base, k, METRIC, rng=rng, n_resamples=args.bootstrap,
                           n_permutations=args.permutations, p_test="bootstrap")  # fmt: skip
    # The old design: seed 0's draw for every seed (the fast model is deterministic).
    once_v, once_b = [variant[0]] * s, [base[0]] * s
    old = paired_bootstrap(y, once_v, once_b, k, METRIC, rng=rng, n_resamples=args.bootstrap,
                           n_permutations=100, seed_t=False)  # fmt: skip
    old_p = correctness_test(y, once_v, once_b, rng=rng, n_permutations=args.permutations)
    out = {}
    for name, cmp, p in (("new", new, new.p_value_bootstrap),
                         ("new_permutation", new, new.p_value_permutation),
                         ("old", old, old_p)):  # fmt: skip
        out[name] = {"significant": p < ALPHA, "delta": cmp.delta.estimate, "p": p,
                     "low": cmp.delta.low, "high": cmp.delta.high}  # fmt: skip
    out["t_seeds"] = t_on_seeds(variant, base, y, k)
    return out


def t_on_seeds(variant, base, y, k) -> dict:
    """The yardstick: a one-sample Student t-test on the S per-seed deltas, exact at 5% for
    independent normal deltas. Its A/A share shows how far this run's repetitions alone
    move a share whose true value is 5%."""
    from scipy import stats

    from assay.train.bootstrap import resampled_scores

    ones = np.ones((1, len(y)))
    deltas = np.array([resampled_scores(y, v, k, ones, METRIC)[0]
                       - resampled_scores(y, b, k, ones, METRIC)[0]
                       for v, b in zip(variant, base, strict=True)])  # fmt: skip
    p = float(stats.ttest_1samp(deltas, 0.0).pvalue) if deltas.std() > 0 else 1.0
    half = stats.t.ppf(1 - ALPHA / 2, len(deltas) - 1) * deltas.std(ddof=1) / math.sqrt(len(deltas))
    mean = float(deltas.mean())
    return {"significant": p < ALPHA, "delta": mean, "p": p, "low": mean - half,
            "high": mean + half}  # fmt: skip


def pool_chunk(args, draws: list[int]) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Test predictions of pool draws `draws`: each draw as drawn and with 10% flipped."""
    from assay.recipes.ablation_cells import train_draw_seed
    from assay.train.ablation_data import subsample_train

    pool, test_texts, test_labels = load_pool()
    classes = sorted(set(test_labels))
    out = []
    for i in draws:
        draw = train_draw_seed(RECIPE_SEED * 100_003, i, "per_seed")
        mine = subsample_train(pool, args.rows, draw).filter(pool_train())
        rng = np.random.default_rng([i, 0xF11])
        out.append((i, fit_predict(mine, test_texts, classes),
                    fit_predict(flip_labels(mine, rng), test_texts, classes)))  # fmt: skip
    return out


def real_chunk(args, reps: list[int]) -> list[dict]:
    """A/A and power calls of the repetitions `reps`, from the fitted pool."""
    preds, flipped, y = args.preds, args.flipped, args.y
    k, s = int(y.max()) + 1, args.seeds
    out = []
    for rep in reps:
        rng = np.random.default_rng([rep, 0xCA1])
        picks = rng.choice(len(preds), 2 * s, replace=False)
        base = [preds[i] for i in picks[:s]]
        other = [preds[i] for i in picks[s:]]
        harmful = [flipped[i] for i in picks[:s]]
        out.append({"aa": judge(other, base, y, k, rng, args),
                    "power": judge(harmful, base, y, k, rng, args)})  # fmt: skip
    return out


def summarise_real(calls: list[dict]) -> dict:
    out = {}
    for design in DESIGNS:
        aa = [c["aa"][design] for c in calls]
        power = [c["power"][design] for c in calls]
        out[design] = {
            "aa_significant": share(sum(c["significant"] for c in aa), len(aa)),
            "power_detected_worse": share(
                sum(c["significant"] and c["delta"] < 0 for c in power), len(power)
            ),
            "aa_mean_abs_delta": float(np.mean([abs(c["delta"]) for c in aa])),
            "power_mean_delta": float(np.mean([c["delta"] for c in power])),
            "aa_ci_width": float(np.mean([c["high"] - c["low"] for c in aa])),
        }
    return out


def pool_train():
    import polars as pl

    return pl.col("split") == "train"


# -- simulation: coverage ------------------------------------------------------------------


def simulate(args, sims: list[int]) -> dict:
    """Predictions whose expected accuracy (over test examples and seeds) is known.

    Each example has a difficulty shared by every arm and seed (so pairing matters); each
    seed has a draw effect shared by both arms (cancels in the delta) and one on the delta
    itself (sd `--seed-sd`, the variance of which rows a seed happened to draw). An example
    is right when difficulty + noise falls below the arm-and-seed threshold, so the chance
    is exactly that seed's accuracy. Classes are balanced and errors symmetric, so the
    expected macro-F1 equals the expected accuracy.
    """
    from assay.train.bootstrap import paired_bootstrap

    n, s, base_acc, delta = args.sim_examples, args.seeds, 0.78, args.sim_delta
    rho = 0.7
    inv = NormalDist().inv_cdf
    covered = {"new": {"accuracy": 0, "macro_f1": 0}, "old": {"accuracy": 0, "macro_f1": 0}}
    for sim in sims:
        rng = np.random.default_rng([20261129, sim])
        y = rng.integers(0, 2, n)
        difficulty = rng.standard_normal(n)
        shared = rng.normal(0, 0.015, s)
        own = rng.normal(0, args.seed_sd, s)
        arms = []
        for which in (0, 1):
            preds = []
            for seed in range(s):
                acc = base_acc + shared[seed] + (delta + own[seed] if which else 0.0)
                noise = rng.standard_normal(n)
                right = rho * difficulty + math.sqrt(1 - rho * rho) * noise < inv(acc)
                preds.append(np.where(right, y, 1 - y))
            arms.append(preds)
        for design, seed_t in (("new", True), ("old", False)):
            for metric in ("accuracy", "macro_f1"):
                cmp = paired_bootstrap(
                    y,
                    arms[1],
                    arms[0],
                    2,
                    metric,
                    rng=rng,
                    n_resamples=args.bootstrap,
                    n_permutations=100,
                    seed_t=seed_t,
                )
                covered[design][metric] += int(cmp.delta.low <= delta <= cmp.delta.high)
    return covered


def run_chunk(task: tuple[str, dict, list[int]]):
    kind, params, items = task
    args = argparse.Namespace(**params)
    work = {"pool": pool_chunk, "real": real_chunk, "sim": simulate}[kind]
    return kind, work(args, items)


def fit_pool(args, workers: int, started: float) -> dict:
    """Fit the pool of draws (in parallel) and return it with the encoded test labels."""
    from assay.train.metrics import encode

    _, _, test_labels = load_pool()
    y = encode(test_labels, sorted(set(test_labels)))
    preds = np.zeros((args.pool, len(y)), dtype=y.dtype)
    flipped = np.zeros_like(preds)
    chunks = [list(range(i, args.pool, workers * 4)) for i in range(workers * 4)]
    tasks = [("pool", vars(args), c) for c in chunks if c]
    with ProcessPoolExecutor(workers, mp_context=SPAWN) as pool:
        for _, fitted in pool.map(run_chunk, tasks):
            for i, p, f in fitted:
                preds[i], flipped[i] = p, f
    print(f"  pool of {args.pool} draws fitted, {time.perf_counter() - started:.0f} s",
          file=sys.stderr)  # fmt: skip
    return {"preds": preds, "flipped": flipped, "y": y}


# -- report --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=2000, help="A/A and power repetitions")
    ap.add_argument("--pool", type=int, default=600, help="train draws fitted once")
    ap.add_argument("--sims", type=int, default=1000, help="coverage simulations")
    ap.add_argument("--rows", type=int, default=500, help="train rows per draw")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--permutations", type=int, default=1000)
    ap.add_argument("--sim-examples", type=int, default=1821)
    ap.add_argument("--sim-delta", type=float, default=-0.02)
    ap.add_argument("--seed-sd", type=float, default=0.01, help="sd of the per-seed delta")
    ap.add_argument("--workers", type=int, default=2, help="processes")
    ap.add_argument("--quick", action="store_true", help="smoke run: a few reps and simulations")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.reps, args.pool, args.sims, args.bootstrap, args.permutations = 20, 30, 40, 300, 500
    if not DATA.exists():
        print(f"no SST-2 data at {DATA}; nothing to measure", file=sys.stderr)
        return 0
    started = time.perf_counter()
    params = {**vars(args), **fit_pool(args, args.workers, started)}
    tasks = [
        ("sim", params, list(range(i, args.sims, args.workers * 4)))
        for i in range(args.workers * 4)
    ]
    tasks += [("real", params, list(range(i, args.reps, args.workers * 4)))
              for i in range(args.workers * 4)]  # fmt: skip
    calls: list[dict] = []
    covered = {"new": {"accuracy": 0, "macro_f1": 0}, "old": {"accuracy": 0, "macro_f1": 0}}
    with ProcessPoolExecutor(args.workers, mp_context=SPAWN) as pool:
        for done, (kind, value) in enumerate(pool.map(run_chunk, tasks), 1):
            if kind == "real":
                calls.extend(value)
            else:
                for design, by in value.items():
                    for metric, hits in by.items():
                        covered[design][metric] += hits
            print(f"  {done}/{len(tasks)} chunks ({kind}), {time.perf_counter() - started:.0f} s",
                  file=sys.stderr)  # fmt: skip
    coverage = {d: {m: share(h, args.sims) for m, h in by.items()} for d, by in covered.items()}
    real = summarise_real(calls)
    # Coverage is simulated for the bootstrap designs only; the t yardstick has none.
    results = {design: {**real[design], "coverage": coverage.get(COVERAGE_OF.get(design, ""))}
               for design in DESIGNS}  # fmt: skip
    new = results["new"]
    targets = [
        target("aa_significant_share", new["aa_significant"]["share"], 0.05, "<="),
        target("power_detected_worse_share", new["power_detected_worse"]["share"], 0.80, ">="),
        target("coverage_macro_f1_min", new["coverage"]["macro_f1"]["share"], 0.93, ">="),
        target("coverage_macro_f1_max", new["coverage"]["macro_f1"]["share"], 0.97, "<="),
        target("coverage_accuracy_min", new["coverage"]["accuracy"]["share"], 0.93, ">="),
        target("coverage_accuracy_max", new["coverage"]["accuracy"]["share"], 0.97, "<="),
    ]
    report = {
        "bench": "calibration",
        "params": {k: getattr(args, k) for k in ("reps", "pool", "sims", "rows", "seeds", "bootstrap",
                                                 "permutations", "sim_examples", "sim_delta",
                                                 "seed_sd", "quick")},
        "results": results,
        "seconds": round(time.perf_counter() - started, 1),
        "fits": 2 * args.pool,
        "targets": targets,
    }  # fmt: skip
    if args.json:
        print(json.dumps(report))
    else:
        print_table(report)
    return 0


def _fmt(s: dict | None) -> str:
    if s is None:
        return "-"
    return f"{100 * s['share']:5.1f}% [{100 * s['low']:.1f}, {100 * s['high']:.1f}]"


def print_table(report: dict) -> None:
    p = report["params"]
    print(f"calibration: SST-2, {p['rows']} train rows per draw, {p['seeds']} seeds, "
          f"{p['reps']} repetitions over a pool of {p['pool']} draws, {p['sims']} simulations "
          f"({report['seconds']} s)")  # fmt: skip
    print(f"{'design':<17}{'A/A significant':>26}{'power (10% flipped)':>26}"
          f"{'coverage macro-F1':>26}{'coverage accuracy':>26}")  # fmt: skip
    for design, r in report["results"].items():
        cov = r["coverage"] or {}
        print(f"{design:<17}{_fmt(r['aa_significant']):>26}{_fmt(r['power_detected_worse']):>26}"
              f"{_fmt(cov.get('macro_f1')):>26}{_fmt(cov.get('accuracy')):>26}")  # fmt: skip
    print("shares with Wilson 95% intervals; A/A mean |delta| "
          + ", ".join(f"{d} {100 * r['aa_mean_abs_delta']:.2f}" for d, r in report["results"].items())
          + " points; power mean delta "
          + ", ".join(f"{d} {100 * r['power_mean_delta']:+.2f}" for d, r in report["results"].items()))  # fmt: skip
    for t in report["targets"]:
        print(
            f"  {t['name']}: {t['value']} (target {t['target']}) {'met' if t['met'] else 'NOT met'}"
        )


if __name__ == "__main__":
    sys.exit(main())
