"""Benchmark: the low-resource augmentation study, with the fast model and MiniLM.

The setting of Wei & Zou 2019 (EDA) and Kumar et al. 2020: SST-2 and TREC, a learning curve
at 100, 500 and 2,000 train rows, and the variants of `recipes/study-low-resource.yaml`
(each augmentation with its size-matched duplicate control), through assay's ablation
runner. The fast model runs the whole grid (5 seeds); the packaged MiniLM runs at 500 rows
(3 seeds, the same optimiser steps in every arm). Each cell: accuracy and macro-F1 with 95%
CIs, the delta against the baseline and against the control, wall time.

Proxy agreement: for every (dataset, variant) run with both models, does the fast model's
delta have the same sign as MiniLM's? The rate over all such cells and over the cells where
MiniLM's CI excludes 0 says when the fast model is enough to screen data changes.

Published anchors: EDA's average gain over 5 datasets was +3.0 points at 500 rows and +0.8
on full data with non-pretrained models; Longpre et al. 2020 found little or no consistent
gain for pretrained transformers; Cegin et al. 2025 found LLM paraphrasing pays only at
about 5-20 examples per label.

    .venv/bin/python bench/study.py [--datasets sst2 trec] [--seeds 5] [--encoder-seeds 3]
                                    [--no-encoder] [--smoke] [--json]

`--smoke` is one seed at 100 rows on SST-2 with 100-sentence dev and test slices, an encoder pass
of a few steps, and no LM paraphrase (loading the generator alone takes minutes on a busy
CPU): it checks that the study runs, not what it finds.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
RECIPE = REPO / "recipes" / "study-low-resource.yaml"
SIZES = [100, 500, 2000]
ENCODER_SIZE = 500
# LM paraphrase runs up to this many train rows (fast model only, since the encoder runs
# at 500): Cegin et al. place its gain at 5-20 examples per label, and each 500-row draw
# costs minutes of SmolLM2 generation per seed on 2 cores.
PARAPHRASE_UP_TO = 100
METRICS = ("macro_f1", "accuracy")


def write_dataset(name: str, folder: Path, eval_rows: int | None = None) -> Path:
    """One CSV (text, label, split) from the dataset's per-split files; `eval_rows` caps
    the dev and test slices (a seeded sample of each)."""
    frames = []
    for split in ("train", "dev", "test"):
        path = DATA / name / f"{split}.csv"
        if path.exists():
            frame = pl.read_csv(path).select("text", "label")
            if split != "train" and eval_rows:
                frame = frame.sample(n=min(eval_rows, frame.height), seed=0)
            frames.append(frame.with_columns(split=pl.lit(split)))
    out = folder / f"{name}.csv"
    pl.concat(frames).write_csv(out)
    return out


def study_recipe(source: Path, skip: tuple[str, ...] = (), **ablation):
    from assay.recipes.ablation_spec import AblationSpec
    from assay.recipes.schema import load_recipe

    recipe = load_recipe(RECIPE)
    fields = recipe.ablation.model_dump()
    fields["variants"] = [v for v in fields["variants"] if v["name"] not in skip]
    spec = AblationSpec.model_validate({**fields, **ablation})
    inputs = recipe.input.model_copy(update={"source": str(source)})
    return recipe.model_copy(update={"input": inputs, "ablation": spec, "name": source.stem})


def run_cells(
    source: Path,
    model: str,
    size: int,
    seeds: int,
    out: Path,
    budget: int | None,
    skip: tuple[str, ...] = (),
):
    """Both metrics' reports of one (dataset, model, size) ablation: the second metric
    reads the first's cached cells, so it trains nothing."""
    from assay.recipes.ablation import run_ablation

    reports = {}
    for metric in METRICS:
        extra = {"budget": {"steps": budget}} if budget else {}
        recipe = study_recipe(
            source, skip, model=model, train_rows=size, seeds=seeds, metric=metric, **extra
        )
        started = time.perf_counter()
        result = run_ablation(recipe, out / f"{source.stem}-{model}-{size}")
        reports[metric] = (result.report, time.perf_counter() - started)
    return reports


def cell_rows(dataset: str, model: str, size: int, reports: dict) -> list[dict]:
    rows = {}
    for metric, (report, seconds) in reports.items():
        for arm in report["arms"]:
            row = rows.setdefault(
                arm["arm"],
                {"dataset": dataset, "model": model, "train_rows": size, "arm": arm["arm"],
                 "kind": arm["kind"], "rows": arm["train_rows"], "seconds_per_seed": arm["seconds"]},
            )  # fmt: skip
            row[metric] = [arm["score"], arm["score_low"], arm["score_high"]]
            if "delta" in arm:
                row[f"{metric}_delta"] = [arm["delta"], arm["delta_low"], arm["delta_high"]]
                row[f"{metric}_verdict"] = arm["verdict"]
            if "vs_control_delta" in arm:
                row[f"{metric}_vs_control"] = [arm["vs_control_delta"],
                                               arm["vs_control_delta_low"],
                                               arm["vs_control_delta_high"]]  # fmt: skip
        if metric == METRICS[0]:
            for row in rows.values():
                row["wall_seconds"] = round(seconds, 1)
    return list(rows.values())


def proxy_agreement(rows: list[dict], size: int, metric: str = "macro_f1") -> dict:
    """Same-sign rate of the fast model's and the encoder's deltas at `size` train rows,
    per (dataset, variant)."""
    fast = {(r["dataset"], r["arm"]): r for r in rows
            if r["model"] == "fast" and r["train_rows"] == size}  # fmt: skip
    cells = []
    for r in rows:
        key = (r["dataset"], r["arm"])
        if r["model"] == "fast" or key not in fast or f"{metric}_delta" not in r:
            continue
        d_enc, low, high = r[f"{metric}_delta"]
        d_fast = fast[key][f"{metric}_delta"][0]
        cells.append({"dataset": key[0], "arm": key[1], "fast": d_fast, "encoder": d_enc,
                      "agree": (d_fast > 0) == (d_enc > 0),
                      "encoder_ci_excludes_0": low > 0 or high < 0})  # fmt: skip
    sure = [c for c in cells if c["encoder_ci_excludes_0"]]
    return {
        "cells": cells,
        "agreement": sum(c["agree"] for c in cells) / len(cells) if cells else None,
        "n": len(cells),
        "agreement_where_encoder_sure": sum(c["agree"] for c in sure) / len(sure) if sure else None,
        "n_sure": len(sure),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["sst2", "trec"])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--encoder-seeds", type=int, default=3)
    ap.add_argument("--encoder", default="minilm")
    ap.add_argument("--encoder-steps", type=int, default=150)
    ap.add_argument("--no-encoder", action="store_true")
    ap.add_argument("--encoder-datasets", nargs="+", help="run the encoder on these only")
    ap.add_argument("--paraphrase-up-to", type=int, default=PARAPHRASE_UP_TO,
                    help="largest train size that runs +paraphrase")  # fmt: skip
    ap.add_argument("--smoke", action="store_true", help="1 seed, 100 rows, SST-2, short test")
    ap.add_argument("--out", type=Path, help="keep the ablations here (default: a temp dir)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "--data-dir", type=Path, help="write the data sets' CSVs here (a stable path keeps the "
        "cached cells of an earlier run usable; default: a temp dir)",
    )  # fmt: skip
    ap.add_argument("--from-json", type=Path, help="print a saved --json result instead")
    args = ap.parse_args(argv)
    if args.from_json:
        print_table(json.loads(args.from_json.read_text().strip().splitlines()[-1]))
        return 0
    if not DATA.exists():
        print(f"no data at {DATA}; nothing to measure", file=sys.stderr)
        return 0
    sizes, eval_rows, skip = SIZES, None, ()
    if args.smoke:
        skip = ("+paraphrase",)
        args.datasets, args.seeds, args.encoder_seeds, args.encoder_steps = ["sst2"], 1, 1, 4
        sizes, eval_rows = [100], 100
    encoder_size = sizes[0] if args.smoke else ENCODER_SIZE

    def skipped(size: int) -> tuple[str, ...]:
        return skip + (("+paraphrase",) if size > args.paraphrase_up_to else ())

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="assay-study-") as tmp:
        out = args.out or Path(tmp)
        rows: list[dict] = []
        for name in args.datasets:
            source = write_dataset(name, args.data_dir or Path(tmp), eval_rows)
            for size in sizes:
                reports = run_cells(source, "fast", size, args.seeds, out, None, skipped(size))
                rows += cell_rows(name, "fast", size, reports)
                print(f"  {name} fast {size}: {time.perf_counter() - started:.0f} s",
                      file=sys.stderr)  # fmt: skip
            if not args.no_encoder and name in (args.encoder_datasets or args.datasets):
                reports = run_cells(source, args.encoder, encoder_size, args.encoder_seeds, out,
                                    args.encoder_steps, skipped(encoder_size))  # fmt: skip
                rows += cell_rows(name, args.encoder, encoder_size, reports)
                print(f"  {name} {args.encoder} {encoder_size}: "
                      f"{time.perf_counter() - started:.0f} s", file=sys.stderr)  # fmt: skip
    agreement = proxy_agreement(rows, size=encoder_size)
    report = {
        "bench": "study",
        "params": {
            "datasets": args.datasets,
            "sizes": sizes,
            "seeds": args.seeds,
            "encoder": None if args.no_encoder else args.encoder,
            "encoder_seeds": args.encoder_seeds,
            "encoder_datasets": args.encoder_datasets or args.datasets,
            "encoder_steps": args.encoder_steps,
            "smoke": args.smoke,
            "paraphrase_up_to": args.paraphrase_up_to,
        },
        "results": {"cells": rows, "proxy_agreement": agreement},
        "seconds": round(time.perf_counter() - started, 1),
        # No target: the study reports what it measures, whichever way it falls.
        "targets": [],
    }
    if args.json:
        print(json.dumps(report))
    else:
        print_table(report)
    return 0


def _ci(v: list[float] | None, delta: bool = False) -> str:
    if not v:
        return ""
    sign = "+" if delta else ""
    return f"{100 * v[0]:{sign}.2f} [{100 * v[1]:{sign}.2f}, {100 * v[2]:{sign}.2f}]"


def print_table(report: dict) -> None:
    print(f"study: {report['params']} ({report['seconds']} s)")
    head = ("dataset", "model", "rows", "arm", "macro-F1", "accuracy", "delta macro-F1",
            "vs control", "s")  # fmt: skip
    print(" | ".join(head))
    for r in report["results"]["cells"]:
        print(" | ".join([r["dataset"], r["model"], str(r["train_rows"]), r["arm"],
                          _ci(r.get("macro_f1")), _ci(r.get("accuracy")),
                          _ci(r.get("macro_f1_delta"), True), _ci(r.get("macro_f1_vs_control"), True),
                          str(r.get("wall_seconds", ""))]))  # fmt: skip
    a = report["results"]["proxy_agreement"]
    if a["n"]:
        print(f"proxy agreement (same sign of delta, fast vs encoder): {a['agreement']:.2f} "
              f"over {a['n']} cells; {a['agreement_where_encoder_sure']} over the "
              f"{a['n_sure']} cells where the encoder's CI excludes 0")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
