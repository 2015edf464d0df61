"""Benchmark: does fixing label noise help the model trained on the data?

SST-2 (train 6,920 / test 1,821 sentences) with 10% of the train labels flipped (seed 0).
Four arms through the ablation runner (`assay.recipes.ablation.run_ablation`), fast model,
5 seeds, the same test set:

- baseline: the noisy train labels;
- `+label_noise drop`: drop the rows the step flags (out-of-fold fast model, K=5, default
  ranker `oof_loss` with `cleanlab_count`);
- `+label_noise relabel`: set the flagged rows to the suggested label;
- `+label_noise drop share10`: drop the worst 10% by out-of-fold loss (the flip rate, as
  if it were known: does a smaller, surer cut help more?);
- clean labels: the flipped labels restored (the upper bound).

Test accuracy and macro-F1 per arm (mean over seeds, bootstrap CI over test sentences and
seeds, as the ablation report computes them), the difference to the noisy baseline, and
how many flipped rows the step caught.

    .venv/bin/python bench/label_noise_ablation.py [--data ../shared/data] [--seeds 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
from harness import target

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
FLIP_RATE = 0.10
SEED = 0


def _register_true_labels() -> None:
    """A bench-only step that restores the true train labels (the upper-bound arm)."""
    from pydantic import Field

    from assay import registry
    from assay.step import Changes, Edit, StepConfig

    if "bench_true_labels" in registry.names():
        return

    @registry.register("bench_true_labels")
    class TrueLabelsEdit(Edit):
        """Restore the labels of a file keyed by id (benchmark upper bound)."""

        touches_eval = False

        class Config(StepConfig):
            path: str = Field(description="csv with id and label")

        def edit(self, corpus, ctx):
            truth = pl.read_csv(self.config.path, schema_overrides={"id": pl.String})
            rows = corpus.filter(pl.col("split") == "train").select("id")
            return Changes(columns=rows.join(truth, on="id", how="left"))


def write_noisy(data: Path, out: Path) -> tuple[Path, Path, set[str]]:
    frames = []
    for split in ("train", "dev", "test"):
        frame = pl.read_csv(data / "sst2" / f"{split}.csv").with_columns(split=pl.lit(split))
        frames.append(frame)
    full = pl.concat(frames).with_row_index("n")
    full = full.with_columns(id=pl.format("s{}", pl.col("n"))).drop("n")
    train = full.filter(pl.col("split") == "train")
    rng = np.random.default_rng(SEED)
    flip = rng.choice(train.height, round(FLIP_RATE * train.height), replace=False)
    flipped = set(train["id"].gather(flip).to_list())
    other = {"positive": "negative", "negative": "positive"}
    noisy = full.with_columns(
        label=pl.when(pl.col("id").is_in(list(flipped)))
        .then(pl.col("label").replace(other))
        .otherwise(pl.col("label"))
    )
    source, truth = out / "sst2_noisy.csv", out / "sst2_true_train.csv"
    noisy.select("id", "text", "label", "split").write_csv(source)
    train.select("id", "label").write_csv(truth)
    return source, truth, flipped


def run(data: Path, seeds: int, out: Path) -> dict:
    from assay.context import RunContext
    from assay.curate.label_noise import LabelNoiseEdit
    from assay.recipes.ablation import run_ablation
    from assay.recipes.schema import load_recipe

    _register_true_labels()
    source, truth, flipped = write_noisy(data, out)
    variants = [
        {"name": "+label_noise drop", "add": [{"label_noise": {"action": "drop"}}]},
        {"name": "+label_noise relabel", "add": [{"label_noise": {"action": "relabel"}}]},
        {
            "name": "+label_noise drop share10",
            "add": [{"label_noise": {"action": "drop", "flag": "share", "share": FLIP_RATE}}],
        },
        {"name": "clean labels", "add": [{"bench_true_labels": {"path": str(truth)}}]},
    ]
    results: dict[str, dict] = {}
    started = time.perf_counter()
    for metric in ("accuracy", "macro_f1"):
        recipe = load_recipe(
            {
                "name": "label-noise-ablation",
                "seed": 13,
                "input": {"source": str(source), "split_column": "split", "id_column": "id"},
                "steps": [],
                "ablation": {
                    "model": "fast",
                    "seeds": seeds,
                    "metric": metric,
                    "variants": variants,
                },
            }
        )
        report = run_ablation(recipe, out / "ablation").report
        for arm in report["arms"]:
            row = results.setdefault(arm["arm"], {})
            row[metric] = {
                "mean": arm["score"],
                "low": arm["score_low"],
                "high": arm["score_high"],
                **{k: arm[k] for k in ("delta", "delta_low", "delta_high", "p_value") if k in arm},
            }
            row["train_rows"] = arm.get("train_rows")
    # What the step caught (seed of the first arm's pipeline: the recipe seed).
    corpus = pl.read_csv(source, schema_overrides={"id": pl.String})
    from assay import from_records

    frame = from_records(
        corpus["text"].to_list(),
        corpus["label"].to_list(),
        ids=corpus["id"].to_list(),
        split=corpus["split"].to_list(),
    )
    flagged = LabelNoiseEdit(action="flag").apply(frame, RunContext(seed=13)).corpus
    hit = set(flagged.filter(pl.col("label_noise__is_issue").fill_null(False))["id"].to_list())
    caught = {
        "flipped": len(flipped),
        "flagged": len(hit),
        "precision": round(len(hit & flipped) / max(len(hit), 1), 4),
        "recall": round(len(hit & flipped) / len(flipped), 4),
    }
    return {"arms": results, "flags": caught, "seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        res = run(args.data, args.seeds, Path(tmp))
    arms = res["arms"]
    base = arms["baseline"]["macro_f1"]["mean"]
    clean = arms["clean labels"]["macro_f1"]["mean"]
    best_fix = max(arms[a]["macro_f1"]["mean"] for a in arms if a.startswith("+label_noise"))
    gap = clean - base
    recovered = (best_fix - base) / gap if gap > 0 else float("nan")
    targets = [
        target("fix_beats_noisy_baseline_macro_f1", best_fix - base, 0.0, ">="),
        target("share_of_clean_gap_recovered", recovered, 0.0, ">="),
    ]
    if args.json:
        print(
            json.dumps(
                {
                    "bench": "label_noise_ablation",
                    "params": {"seeds": args.seeds, "flip_rate": FLIP_RATE},
                    "results": res,
                    "targets": targets,
                }
            )
        )
        return
    print(f"SST-2, {FLIP_RATE:.0%} train labels flipped, fast model, {args.seeds} seeds")
    print(f"{'arm':24} {'accuracy [CI]':28} {'macro-F1 [CI]':28} {'dF1 vs noisy [CI]':24} rows")
    for name, row in arms.items():
        a, f = row["accuracy"], row["macro_f1"]
        d = f"{f.get('delta', 0):+.4f} [{f.get('delta_low', 0):+.4f}, {f.get('delta_high', 0):+.4f}]"
        print(
            f"{name:24} {a['mean']:.4f} [{a['low']:.4f}, {a['high']:.4f}]   "
            f"{f['mean']:.4f} [{f['low']:.4f}, {f['high']:.4f}]   {d:24} {row['train_rows']}"
        )
    print("flags:", res["flags"], "seconds:", res["seconds"])
    for t in targets:
        print(t)


if __name__ == "__main__":
    main()
