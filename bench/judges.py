"""The judge study: how often a cheap judge's verdict on a data change matches the verdict
of the fine-tuned encoder, the judge whose word matters.

For each data set (SST-2, TREC, SUBJ, MR from ../shared/data) and train size, every arm of
the low-resource study (EDA, synonyms, back-translation, each with its duplicate control;
label-noise drop; reweight) plus a planted harm (20% of the train labels flipped, a change
known to hurt) is judged by:

- the candidates, here: the fast model and the probe, `--seeds` seeds each;
- the reference: MiniLM fine-tuned (300 optimiser steps a cell), `--seeds` seeds, its cells
  trained as stacks on a GPU. `--export DIR` writes its cells for the device check
  (`bash scripts/device_check.sh run OUT --stages judges` trains every folder under
  `.device/judges/`); `--reference-results DIR` reads what it wrote back; `--reference-cpu`
  trains them here (hours on 2 cores).

Per candidate, on the arms whose reference CI excludes 0: the share where the candidate says
the same (better/worse), says no detectable change, or says the opposite; the Spearman
correlation of the arms' deltas; the cost per cell relative to the reference's.

    python bench/judges.py --datasets sst2 trec --sizes 500 --export .device/judges
    python bench/judges.py --datasets sst2 trec --sizes 500 --reference-results OUT/judges --json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
from pydantic import Field

from assay import registry
from assay.context import RunContext
from assay.step import Step, StepConfig, StepResult

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO / "bench"))
from study import study_recipe  # noqa: E402

CANDIDATES = ("fast", "probe")
REFERENCE = "minilm"
STEPS = 300
SKIP = ("+paraphrase",)  # minutes of generation per seed on a CPU
HARM = {"name": "+planted flip 20%",
        "description": "20% of the train labels flipped to another class (known to hurt)",
        "add": [{"planted_label_flip": {"fraction": 0.2}}]}  # fmt: skip


class PlantedLabelFlip(Step):
    """Flip a share of the train labels to another class, uniformly: a planted harm."""

    touches_eval = False

    class Config(StepConfig):
        fraction: float = Field(0.2, gt=0, lt=1, description="share of train rows to flip")

    def _run(self, corpus: pl.DataFrame, ctx: RunContext) -> StepResult:
        labels = sorted(corpus["label"].drop_nulls().unique().to_list())
        rng = ctx.rng("planted-flip")
        train = (corpus["split"] == "train").to_numpy()
        flip = train & (rng.random(corpus.height) < self.config.fraction)
        shift = rng.integers(1, len(labels), corpus.height)
        new = [labels[(labels.index(y) + s) % len(labels)] if f else y
               for y, f, s in zip(corpus["label"].to_list(), flip, shift, strict=True)]  # fmt: skip
        out = corpus.with_columns(label=pl.Series(new, dtype=pl.String))
        return StepResult(out, self._report(n_modified=int(flip.sum())))


if "planted_label_flip" not in registry.names():
    registry.register("planted_label_flip")(PlantedLabelFlip)


def write_dataset(name: str, folder: Path) -> Path:
    """One CSV (text, label, split): the data set's own splits, or 80/10/10 of all.csv by a
    hash of the text (SUBJ and MR ship unsplit)."""
    root = DATA / name
    if (root / "all.csv").exists():
        frame = pl.read_csv(root / "all.csv").select("text", "label")
        bucket = frame["text"].hash(seed=0) % 10
        split = pl.when(bucket == 0).then(pl.lit("test")).when(bucket == 1).then(pl.lit("dev"))
        frame = frame.with_columns(split=split.otherwise(pl.lit("train")))
    else:
        frames = [pl.read_csv(root / f"{s}.csv").select("text", "label").with_columns(
                  split=pl.lit(s)) for s in ("train", "dev", "test") if (root / f"{s}.csv").exists()]  # fmt: skip
        frame = pl.concat(frames)
        if "dev" not in frame["split"].unique().to_list():  # TREC: dev from the train file
            bucket = frame["text"].hash(seed=0) % 10
            frame = frame.with_columns(split=pl.when((pl.col("split") == "train") & (bucket == 0))
                                       .then(pl.lit("dev")).otherwise(pl.col("split")))  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{name}.csv"
    frame.write_csv(out)
    return out


def recipe_for(source: Path, model: str, size: int, seeds: int):
    from assay.recipes.ablation_spec import AblationSpec

    recipe = study_recipe(source, SKIP, model=model, train_rows=size, seeds=seeds,
                          budget={"steps": STEPS})  # fmt: skip
    fields = recipe.ablation.model_dump()
    fields["variants"] = [*fields["variants"], HARM]
    return recipe.model_copy(update={"ablation": AblationSpec.model_validate(fields)})


def judge(source: Path, model: str, size: int, seeds: int, out: Path, train=None, device=None):
    from assay.recipes.ablation import run_ablation

    started = time.perf_counter()
    result = run_ablation(recipe_for(source, model, size, seeds), out, train=train,
                          device=device)  # fmt: skip
    seconds = time.perf_counter() - started
    # A cell's own training and scoring seconds, as stored with it: the cost of the judge,
    # the same whether this run trained the cell or read it back (the pipelines are shared).
    trained = [json.loads(p.read_text())["seconds"] for p in (out / "cells").glob("*.json")]
    return {
        "model": model,
        "cells": result.report["cells"],
        "seconds": round(seconds, 1),
        "seconds_per_cell": round(float(np.mean(trained)) if trained else 0.0, 3),
        "arms": [
            {k: r.get(k) for k in ("arm", "kind", "score", "delta", "delta_low", "delta_high",
                                   "significant", "verdict")}
            for r in result.report["arms"]
        ],
    }  # fmt: skip


def agreement(candidate: dict, reference: dict) -> dict:
    """The candidate's verdicts on the arms the reference separated from zero."""
    from scipy.stats import spearmanr

    ref = {r["arm"]: r for r in reference["arms"] if r["kind"] != "baseline"}
    cand = {r["arm"]: r for r in candidate["arms"] if r["kind"] != "baseline"}
    calls = {"same": 0, "no detectable change": 0, "opposite": 0}
    for arm, r in ref.items():
        if not r["significant"] or arm not in cand:
            continue
        c = cand[arm]
        if not c["significant"]:
            calls["no detectable change"] += 1
        elif (c["delta"] > 0) == (r["delta"] > 0):
            calls["same"] += 1
        else:
            calls["opposite"] += 1
    n = sum(calls.values())
    arms = sorted(set(ref) & set(cand))
    rho = spearmanr([cand[a]["delta"] for a in arms], [ref[a]["delta"] for a in arms])[0]
    return {
        "reference_significant_arms": n,
        **{k: v for k, v in calls.items()},
        "decision_agreement": calls["same"] / n if n else None,
        "opposite_rate": calls["opposite"] / n if n else None,
        "spearman_deltas": None if np.isnan(rho) else float(rho),
        "cost_per_cell_vs_reference": round(
            candidate["seconds_per_cell"] / max(reference["seconds_per_cell"], 1e-9), 4),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    from assay.train.cells_io import CellsElsewhere, CellsExported

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["sst2", "trec", "subj", "mr"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[100, 500, 2000])
    ap.add_argument("--seeds", type=int, default=10, help="seeds per candidate cell")
    ap.add_argument(
        "--reference-seeds",
        type=int,
        help="seeds per reference cell (default: --seeds; 5 is the CPU floor)",
    )
    ap.add_argument("--candidates", nargs="+", default=list(CANDIDATES))
    ap.add_argument("--out", type=Path, help="keep the ablations here (default: runs/judges)")
    ref = ap.add_mutually_exclusive_group()
    ref.add_argument("--export", type=Path, help="write the reference's cells here for a GPU")
    ref.add_argument("--reference-results", type=Path, help="the device check's judges folder")
    ref.add_argument("--reference-cpu", action="store_true", help="train the reference here")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--ship", action="store_true",
                    help="write the agreement record assay prints beside verdicts "
                    "(recipes/data/judge_agreement.json)")  # fmt: skip
    args = ap.parse_args(argv)
    if not DATA.exists():
        print(f"no data at {DATA}; nothing to measure", file=sys.stderr)
        return 0
    out = args.out or REPO / "runs" / "judges"
    rows = []
    with tempfile.TemporaryDirectory(prefix="assay-judges-") as tmp:
        for name in args.datasets:
            source = write_dataset(name, out if args.out else Path(tmp))
            for size in args.sizes:
                tag = f"{name}-{size}"
                row: dict = {"dataset": name, "train_rows": size, "judges": {}}
                for model in args.candidates:
                    row["judges"][model] = judge(source, model, size, args.seeds,
                                                 out / f"{tag}-{model}")  # fmt: skip
                    print(f"  {tag} {model}: {row['judges'][model]['seconds']} s", file=sys.stderr)
                train = None
                if args.export or args.reference_results:
                    folder = (args.export or args.reference_results) / tag
                    results = None if args.export else folder / "results.npz"
                    train = CellsElsewhere(folder, results)
                if train is not None or args.reference_cpu:
                    try:
                        reference = judge(source, REFERENCE, size,
                                          args.reference_seeds or args.seeds,
                                          out / f"{tag}-{REFERENCE}", train=train,
                                          device="cuda" if train is not None else None)  # fmt: skip
                    except CellsExported as exc:
                        print(f"  {tag} {REFERENCE}: {exc}", file=sys.stderr)
                    else:
                        row["judges"][REFERENCE] = reference
                        row["agreement"] = {m: agreement(row["judges"][m], reference)
                                            for m in args.candidates}  # fmt: skip
                rows.append(row)
    report = {"bench": "judges", "params": vars(args) | {"steps": STEPS}, "results": rows}
    _print(rows)
    if args.ship:
        _ship(rows, args.reference_seeds or args.seeds)
    if args.json:
        print(json.dumps(report, default=str))
    return 0


def _ship(rows: list[dict], seeds: int) -> None:
    """Pool the counts per (judge, task kind, train rows) over data sets and write them."""
    from assay.recipes.judge_record import task_kind

    pooled: dict[tuple, dict] = {}
    for row in rows:
        source = write_dataset(row["dataset"], Path(tempfile.mkdtemp()))
        n_classes = pl.read_csv(source)["label"].n_unique()
        for judge_name, a in (row.get("agreement") or {}).items():
            key = (judge_name, task_kind(n_classes), row["train_rows"])
            p = pooled.setdefault(key, {"same": 0, "no detectable change": 0, "opposite": 0,
                                        "rho": [], "cost": [], "datasets": []})  # fmt: skip
            for k in ("same", "no detectable change", "opposite"):
                p[k] += a[k]
            if a["spearman_deltas"] is not None:
                p["rho"].append(a["spearman_deltas"])
            p["cost"].append(a["cost_per_cell_vs_reference"])
            p["datasets"].append(row["dataset"])
    records = []
    for (judge_name, kind, size), p in sorted(pooled.items()):
        n = p["same"] + p["no detectable change"] + p["opposite"]
        records.append({
            "judge": judge_name, "task": kind, "train_rows": size, "datasets": p["datasets"],
            "reference": f"{REFERENCE} fine-tuned, {STEPS} steps, {seeds} seeds",
            "reference_significant_arms": n,
            "decision_agreement": p["same"] / n if n else None,
            "opposite_rate": p["opposite"] / n if n else None,
            "spearman_deltas_mean": float(np.mean(p["rho"])) if p["rho"] else None,
            "cost_per_cell_vs_reference": float(np.mean(p["cost"])),
        })  # fmt: skip
    path = REPO / "recipes" / "data" / "judge_agreement.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"source": "bench/judges.py", "records": records}, indent=1) + "\n")
    print(f"wrote {path}")


def _print(rows: list[dict]) -> None:
    for row in rows:
        print(f"\n{row['dataset']} at {row['train_rows']} train rows")
        names = list(row["judges"])
        print(f"{'arm':<40}" + "".join(f"{n:>24}" for n in names))
        arms = [a["arm"] for a in row["judges"][names[0]]["arms"]]
        for arm in arms:
            cells = []
            for n in names:
                r = next(a for a in row["judges"][n]["arms"] if a["arm"] == arm)
                cells.append("" if r["delta"] is None else
                             f"{100 * r['delta']:+.2f}{'*' if r['significant'] else ' '}")  # fmt: skip
            print(f"{arm:<40}" + "".join(f"{c:>24}" for c in cells))
        for m, a in (row.get("agreement") or {}).items():
            print(f"  {m}: {a}")


if __name__ == "__main__":
    raise SystemExit(main())
