"""Benchmark: does `label_noise` do harm at the sizes where people curate, and does its gate
keep it from doing harm?

SST-2, TREC, SUBJ and MR (`../shared/data`), train draws of 100, 500 and 2,000 rows (a new
stratified draw per seed), 0%, 5%, 10% and 20% of the train labels flipped uniformly to
another class before the draw (a planted step, so every arm sees the same flips), test
rows clean. One ablation per (data set, noise rate) through the ablation runner, fast
model as the judge (label_noise's own out-of-fold model: `--judge`, fast by default), `--seeds`
seeds, macro-F1, paired bootstrap CIs. Arms:

- baseline: the noisy labels, nothing done;
- `drop, gated`: `label_noise: {action: drop}` (the default gates: the out-of-fold model's
  accuracy CI, the cap at the estimate's upper bound);
- `drop, no gate`: the same with `force: true` (every flagged row dropped);
- `relabel, gated`: `label_noise: {action: relabel}`;
- `clean labels` (noise > 0): the planted flips left out: the points the noise cost.

Targets (the label-noise docs quote them):
- with 0% noise, gated drop never costs more than 1.0 point: its delta CI's lower bound is
  at least -1.0 at every N on every data set, or the gate refused in every cell;
- with 10% and 20% noise at N = 2,000, the better gated arm recovers at least half of the
  points the noise cost (on the data sets where the noise cost a point or more);
- no gated arm makes any N worse by more than 1.0 point (delta CI lower bound >= -1.0).

    nice .venv/bin/python bench/label_noise_small_n.py [--datasets sst2 trec subj mr]
        [--sizes 100 500 2000] [--rates 0 0.05 0.1 0.2] [--seeds 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from harness import target

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from judges import DATA, write_dataset  # noqa: E402  (also registers planted_label_flip)

GATED = ("drop, gated", "relabel, gated")


def arms(judge: str, check: str | None = None) -> list[dict]:
    """The label_noise arms, its out-of-fold model `judge` (fast, probe or auto), the
    gated arms' held-out check on `check` (default: the judge)."""
    step = {"model": judge} | ({"check_model": check} if check else {})
    return [
        {"name": "drop, gated", "add": [{"label_noise": {**step, "action": "drop"}}]},
        {"name": "drop, no gate",
         "add": [{"label_noise": {**step, "action": "drop", "force": True}}]},
        {"name": "relabel, gated", "add": [{"label_noise": {**step, "action": "relabel"}}]},
    ]  # fmt: skip


CLEAN = {"name": "clean labels", "remove": ["planted_label_flip"]}


def ablation(
    source: Path,
    rate: float,
    sizes: list[int],
    seeds: int,
    judge: str,
    out: Path,
    check: str | None = None,
) -> dict:
    from assay.recipes.ablation import run_ablation
    from assay.recipes.schema import load_recipe

    recipe = load_recipe({
        "name": f"{source.stem}-noise{rate}",
        "seed": 11,
        "input": {"source": str(source), "split_column": "split"},
        "steps": [{"planted_label_flip": {"fraction": rate}}] if rate else [],
        "ablation": {
            "model": "fast", "seeds": seeds, "train_rows": sizes, "metric": "macro_f1",
            "bootstrap": 500, "variants": arms(judge, check) + ([CLEAN] if rate else []),
        },
    })  # fmt: skip
    started = time.perf_counter()
    report = run_ablation(recipe, out).report
    # Every train size is in the learning curve (the arms' rows hold the largest only);
    # an arm's gate note counts its refusals over all sizes.
    gates = {r["arm"]: r.get("gate") for r in report["arms"]}
    rows = []
    for r in report.get("learning_curve") or report["arms"]:
        rows.append({
            "arm": r["arm"], "train_rows_cap": r.get("train_rows_cap"),
            "train_rows": r.get("train_rows"), "score": r.get("score"),
            **{k: r.get(k) for k in ("delta", "delta_low", "delta_high", "significant")},
            "gate": gates.get(r["arm"]),
        })  # fmt: skip
    return {"rows": rows, "seconds": round(time.perf_counter() - started, 1)}


def _by_size(rows: list[dict]) -> dict[int, dict[str, dict]]:
    out: dict[int, dict[str, dict]] = {}
    for r in rows:
        out.setdefault(r["train_rows_cap"], {})[r["arm"]] = r
    return out


def targets(results: list[dict]) -> list[dict]:
    worst_clean_cost, worst_gated, recovered = 0.0, 0.0, []
    for res in results:
        for size, arms in res["by_size"].items():
            for name in GATED:
                arm = arms[name]
                low = arm["delta_low"]
                if res["rate"] == 0 and name == "drop, gated" and not _all_refused(arm):
                    worst_clean_cost = min(worst_clean_cost, low)
                worst_gated = min(worst_gated, low)
            # The noisy baseline is the reference: "clean labels" is how much better the
            # model is without the flips, so the noise cost is its delta.
            cost = arms["clean labels"]["delta"] if "clean labels" in arms else 0.0
            if res["rate"] >= 0.1 and size == 2000 and cost >= 0.01:
                best = max(arms[n]["delta"] for n in GATED)
                recovered.append(best / cost)
    out = [
        target("clean_data_gated_drop_worst_delta_low_points", 100 * worst_clean_cost, -1.0, ">="),
        target("gated_arms_worst_delta_low_points", 100 * worst_gated, -1.0, ">="),
    ]
    if recovered:
        out.append(target("n2000_noise10_20_min_share_recovered", min(recovered), 0.5, ">="))
    return out


def _all_refused(arm: dict) -> bool:
    gate = arm.get("gate") or ""
    # "label_noise's gate refused to drop in K of N cells ..."
    words = gate.split()
    try:
        i = words.index("in")
        return words[i + 1] == words[i + 3]
    except (ValueError, IndexError):
        return False


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["sst2", "trec", "subj", "mr"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[100, 500, 2000])
    ap.add_argument("--rates", nargs="+", type=float, default=[0.0, 0.05, 0.1, 0.2])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument(
        "--judge",
        default="fast",
        choices=["fast", "probe", "auto"],
        help="label_noise's out-of-fold model (the ablation's judge stays fast)",
    )
    ap.add_argument(
        "--check-model",
        default=None,
        help="the model label_noise's held-out check trains (check_model; default: the judge)",
    )
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "label-noise-small-n")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if not DATA.exists():
        print(f"no data at {DATA}; nothing to measure", file=sys.stderr)
        return 0
    results = []
    for name in args.datasets:
        source = write_dataset(name, args.out / "data")
        for rate in args.rates:
            tag = args.judge + (f"-check-{args.check_model}" if args.check_model else "")
            res = ablation(source, rate, args.sizes, args.seeds, args.judge,
                           args.out / f"{name}-{rate}-{tag}", args.check_model)  # fmt: skip
            res.update(dataset=name, rate=rate,
                       by_size=_by_size(res.pop("rows")))  # fmt: skip
            results.append(res)
            print(f"  {name} noise {rate:.0%}: {res['seconds']} s", file=sys.stderr)
    found = targets(results)
    _print(results)
    for t in found:
        print(t)
    if args.json:
        print(json.dumps({"bench": "label_noise_small_n", "params": vars(args) | {"model": "fast"},
                          "results": results, "targets": found}, default=str))  # fmt: skip
    return 0


def _print(results: list[dict]) -> None:
    print(f"{'data':6} {'noise':>5} {'N':>5} {'arm':16} {'macro-F1':>8} "
          f"{'delta [95% CI] (points)':>28}  gate")  # fmt: skip
    for res in results:
        for size, arms in res["by_size"].items():
            for name, r in arms.items():
                delta = "" if r["delta"] is None else (
                    f"{100 * r['delta']:+.2f} [{100 * r['delta_low']:+.2f}, "
                    f"{100 * r['delta_high']:+.2f}]")  # fmt: skip
                print(f"{res['dataset']:6} {res['rate']:>5.0%} {size:>5} {name:16} "
                      f"{r['score']:>8.4f} {delta:>28}  {r.get('gate') or ''}")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
