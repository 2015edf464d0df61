"""Benchmark: the quickstart recipe on the local engine and on Ray (one machine).

Speed (`--rows`, 100,000 by default): the steps of `recipes/quickstart.yaml` (clean, exact
dedup, split by MinHash clusters, quality, leakage, label_noise, model_audit, balance,
synonyms, back-translation through Spanish) on real sentiment sentences: the SST-2 and MR
sentences of ../shared/data, each row two sentences of one label joined, so that 100,000
rows are distinct (10% of them then copied with markup, for dedup). Each engine starts
from an empty translation cache.

Memory (`--memory-rows`, 1,000,000): a shorter recipe (clean, exact dedup, split,
char_noise) on generated review-like rows (10% exact copies with markup).

Data is written to Parquet outside the timing. Each run is its own fresh process (so the
driver's peak RSS is its own):

- local: `engine: local`, everything in-process (polars, numpy);
- ray: `engine: ray` on a local Ray cluster started in that process (`num_cpus=--cpus`;
  its start is timed apart). The driver's peak RSS is measured; Ray's workers and object
  store are other processes and are not in it.

Both runs must give the same corpus (checked by its hash). It also times the tasks of the
row-local steps in-process (a batch's hook call: what one Ray task runs; the first
`--task-batches` batches) and from them gives a paper estimate for `--nodes` nodes: per
step, the first task (loading), then the batches in waves over the CPUs, plus the
scheduling overhead measured here; steps on the driver as measured, times the rows.

    .venv/bin/python bench/engine.py --rows 100000 --memory-rows 1000000 [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import yaml
from harness import isolated, peak_rss_mb, target

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ASSAY_SHARED_DATA", REPO.parent / "shared" / "data"))

POSITIVE = ["good", "great", "wonderful", "moving", "clever", "funny", "warm", "beautiful"]
NEGATIVE = ["bad", "dull", "boring", "weak", "clumsy", "tedious", "cold", "ugly"]
NOUNS = ["film", "story", "movie", "script", "cast", "ending", "plot", "score", "director"]
ROW_LOCAL = {"clean", "char_noise", "synonyms", "back_translation"}


def generate(rows: int, path: Path, seed: int = 3) -> None:
    rng = np.random.default_rng(seed)
    n_fresh = rows - rows // 10
    positive = rng.random(n_fresh) < 0.5
    words = np.where(
        positive[:, None],
        np.array(POSITIVE)[rng.integers(0, 8, (n_fresh, 2))],
        np.array(NEGATIVE)[rng.integers(0, 8, (n_fresh, 2))],
    )
    nouns = np.array(NOUNS)[rng.integers(0, len(NOUNS), (n_fresh, 2))]
    texts = [
        f"The {a} was {w1} and the {b} felt {w2}, said reviewer {i}."
        for i, (a, b, w1, w2) in enumerate(
            zip(nouns[:, 0], nouns[:, 1], words[:, 0], words[:, 1], strict=True)
        )
    ]
    labels = np.where(positive, "positive", "negative").tolist()
    pick = rng.integers(0, n_fresh, size=rows - n_fresh)
    texts += [f"<p>{texts[i]}</p>" for i in pick]
    labels += [labels[i] for i in pick]
    pl.DataFrame({"text": texts, "label": labels}).write_parquet(path)


def real_rows(rows: int, path: Path, seed: int = 3) -> None:
    """`rows` distinct rows of two real same-label sentences (SST-2 and MR), 10% of them
    copied again with markup."""
    frames = [pl.read_csv(DATA / "sst2" / f"{part}.csv") for part in ("train", "dev", "test")] + [
        pl.read_csv(DATA / "mr" / "all.csv")
    ]
    sentences = pl.concat([f.select("text", "label") for f in frames]).unique("text").sort("text")
    rng = np.random.default_rng(seed)
    n_fresh = rows - rows // 10
    texts, labels = [], []
    for label, group in sentences.group_by("label", maintain_order=True):
        pool = group["text"].to_numpy()
        k = n_fresh // 2 if label[0] == "negative" else n_fresh - n_fresh // 2
        a, b = rng.integers(0, len(pool), (2, k))
        texts += [f"{x} {y}" for x, y in zip(pool[a], pool[b], strict=True)]
        labels += [label[0]] * k
    frame = pl.DataFrame({"text": texts, "label": labels}).unique("text", keep="first")
    pick = rng.integers(0, frame.height, size=rows - frame.height)
    copies = frame[pick].with_columns(text=pl.format("<p>{}</p>", "text"))
    pl.concat([frame, copies]).write_parquet(path)


def quickstart_recipe(source: Path, engine: object) -> dict:
    """recipes/quickstart.yaml's steps on `source` (its ablation left out)."""
    spec = yaml.safe_load((REPO / "recipes" / "quickstart.yaml").read_text())
    return {
        "name": "engine-bench-quickstart",
        "seed": spec["seed"],
        "cache": False,
        "engine": engine,
        "input": {"source": str(source), "labels": spec["input"]["labels"]},
        "steps": spec["steps"],
    }


def recipe(source: Path, engine: object) -> dict:
    return {
        "name": "engine-bench",
        "seed": 13,
        "cache": False,
        "engine": engine,
        "input": {"source": str(source), "labels": ["negative", "positive"]},
        "steps": [
            {"clean": {"min_chars": 10, "lang": "en"}},
            {"dedup": {"method": "exact"}},
            {"split": {"dev": 0.1, "test": 0.1}},
            {"char_noise": {"fraction": 0.3}},
        ],
    }


RECIPES = {"quickstart": quickstart_recipe, "short": recipe}


def fresh_home(root: Path) -> None:
    """A new ASSAY_HOME (an empty translation cache) that shares the prepared WordNet."""
    from assay import resources

    old = resources.home()
    root.mkdir(parents=True, exist_ok=True)
    for item in old.glob("*"):
        if item.name in ("nltk_data",) or item.name.startswith("wordnet-synonyms"):
            (root / item.name).symlink_to(item)
    os.environ["ASSAY_HOME"] = str(root)


def run_once(
    source: str, engine: str, out: str, cpus: int, batch_size: int, which: str = "short"
) -> dict:
    from assay import run

    fresh_home(Path(out + "-home"))
    started = time.perf_counter()
    settings: object = "local"
    ray_start = 0.0
    if engine == "ray":
        import ray

        ray.init(
            num_cpus=cpus,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            log_to_driver=False,
        )
        import ray.data

        ray.data.DataContext.get_current().enable_progress_bars = False
        ray_start = time.perf_counter() - started
        settings = {"ray": {"batch_size": batch_size}}
    t0 = time.perf_counter()
    result = run(RECIPES[which](Path(source), settings), out)
    seconds = time.perf_counter() - t0
    corpus = pl.read_parquet(Path(out) / "corpus.parquet")
    digest = corpus.sort("id").hash_rows(seed=1).sum()
    steps = {f"{s['index']}:{s['step']}": s["seconds"] for s in result.manifest["steps"]}
    on_engine = {f"{s['index']}:{s['step']}": s["engine_seconds"] for s in result.manifest["steps"]}
    if engine == "ray":
        import ray

        ray.shutdown()
    return {
        "seconds": round(seconds, 2),
        "ray_start_s": round(ray_start, 2),
        "rows_out": corpus.height,
        "corpus_hash": int(digest),
        "steps": steps,
        "engine_steps": on_engine,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "corpus_mb": round(corpus.estimated_size() / 2**20, 1),
    }


def task_timings(source: str, batch_size: int, which: str, home: str, most: int) -> dict:
    """Per-task cost of the row-local steps: each batch's hook call timed in-process
    (exactly what one Ray task runs), the first call (resources loading) apart."""
    from assay import RunContext
    from assay.curate.io import read
    from assay.engine_steps import HookBatches
    from assay.recipes.runner import build_steps
    from assay.recipes.schema import load_recipe

    fresh_home(Path(home))
    parsed = load_recipe(RECIPES[which](Path(source), "local"))
    corpus = read(parsed.input).corpus
    out = {}
    for index, step in enumerate(build_steps(parsed.steps)):
        if step.name not in ROW_LOCAL:
            continue
        ctx = RunContext(seed=13).for_step(index, step.name)
        # augmenters work on train rows (the split step comes before them in the recipe)
        train = corpus.with_columns(split=pl.lit("train"))
        rows = step.select(train, ctx) if step.kind == "augmenter" else corpus
        method = "_generate_batch" if step.kind == "augmenter" else "_local_changes"
        run_batch = HookBatches(step, ctx, method)
        table = rows.with_row_index("__row").with_columns(pl.col("__row").cast(pl.Int64))
        times = []
        for start in range(0, min(table.height, most * batch_size), batch_size):
            batch = table.slice(start, batch_size).to_arrow()
            t0 = time.perf_counter()
            run_batch(batch)
            times.append(time.perf_counter() - t0)
        if not times:
            continue
        out[f"{index}:{step.name}"] = {
            "batches": -(-table.height // batch_size),
            "batches_timed": len(times),
            "first_task_s": round(times[0], 3),
            "task_s_median": round(float(np.median(times[1:] or times)), 3),
        }
    return out


def estimate(
    remote: dict, tasks: dict, cpus: int, nodes: int, node_cpus: int, scale: float = 1.0
) -> dict:
    """Seconds per step at `nodes` x `node_cpus` CPUs for `scale` times the rows. A
    row-local step: its first task (loading) plus its batches in waves over the CPUs, plus
    the scheduling overhead measured here (its Ray time minus the same model at `cpus`
    CPUs). Another step: the part of it the driver waited on the engine (its
    `engine_seconds`) divided over the CPUs and times `scale` (fixed costs included, so
    pessimistic), the rest on the driver, times `scale`."""

    def model(t: dict, n_cpus: int, times: float = 1.0) -> float:
        batches = max(1, round(t["batches"] * times))
        return t["first_task_s"] + -(-batches // n_cpus) * t["task_s_median"]

    total = driver = 0.0
    per_step = {}
    for key, ray_s in remote["steps"].items():
        task = tasks.get(key)
        if task is not None:
            overhead = max(0.0, ray_s - model(task, cpus))
            est = overhead + model(task, nodes * node_cpus, scale)
        else:
            waited = min(ray_s, remote.get("engine_steps", {}).get(key, 0.0))
            here = (ray_s - waited) * scale
            est = here + waited * scale * cpus / (nodes * node_cpus)
            driver += here
        per_step[key] = round(est, 2)
        total += est
    return {
        "steps": per_step,
        "seconds": round(total, 2),
        "driver_seconds": round(driver, 2),
        "driver_share": round(driver / total, 3) if total else None,
        "nodes": nodes,
        "node_cpus": node_cpus,
        "rows_scale": scale,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--memory-rows", type=int, default=1_000_000)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16_384)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--node-cpus", type=int, default=16)
    parser.add_argument("--estimate-rows", type=int, default=10_000_000)
    parser.add_argument(
        "--speed-recipe", choices=sorted(RECIPES), default="quickstart", help="the timed recipe"
    )
    parser.add_argument("--task-batches", type=int, default=3, help="batches timed per step")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, rows in (("speed", args.rows), ("memory", args.memory_rows)):
            if rows <= 0:
                continue
            which = args.speed_recipe if label == "speed" else "short"
            source = Path(tmp) / f"{label}.parquet"
            (real_rows if which == "quickstart" else generate)(rows, source)
            for engine in ("local", "ray"):
                out = str(Path(tmp) / f"{label}-{engine}")
                got = isolated(
                    run_once, str(source), engine, out, args.cpus, args.batch_size, which
                )
                results[f"{label}_{engine}"] = got
                print(f"{label} {engine} ({rows:,} rows): {got}", file=sys.stderr)
            if label == "speed":
                home = str(Path(tmp) / "tasks-home")
                results["tasks"] = isolated(
                    task_timings, str(source), args.batch_size, which, home, args.task_batches
                )

    targets = []
    speed_l, speed_r = results.get("speed_local", {}), results.get("speed_ray", {})
    if "seconds" in speed_l and "seconds" in speed_r:
        ratio = speed_r["seconds"] / speed_l["seconds"]
        results["ray_over_local_time"] = round(ratio, 2)
        results["same_corpus"] = speed_l["corpus_hash"] == speed_r["corpus_hash"]
        targets.append(target("same_corpus_local_and_ray", float(results["same_corpus"]), 1, ">="))
        tasks = results.get("tasks", {})
        results["estimate_same_rows"] = estimate(
            speed_r, tasks, args.cpus, args.nodes, args.node_cpus
        )
        scale = args.estimate_rows / args.rows
        results["estimate"] = estimate(speed_r, tasks, args.cpus, args.nodes, args.node_cpus, scale)
        targets.append(target("estimate_seconds", results["estimate"]["seconds"], 2500, "<="))
        targets.append(
            target("estimate_driver_share", results["estimate"]["driver_share"], 0.2, "<=")
        )
        # the same model on this machine's CPUs, for the ratio
        here = estimate(speed_r, tasks, args.cpus, 1, args.cpus, scale)
        results["estimate_rows_here"] = here["seconds"]
    mem_l, mem_r = results.get("memory_local", {}), results.get("memory_ray", {})
    if "peak_rss_mb" in mem_l and "peak_rss_mb" in mem_r:
        results["driver_rss_ray_over_local"] = round(mem_r["peak_rss_mb"] / mem_l["peak_rss_mb"], 2)
        results["memory_same_corpus"] = mem_l["corpus_hash"] == mem_r["corpus_hash"]
        for engine, got in (("local", mem_l), ("ray", mem_r)):
            ratio = got["peak_rss_mb"] / got["corpus_mb"]
            targets.append(target(f"driver_rss_over_corpus_{engine}", ratio, 1.2, "<="))

    report = {
        "bench": "engine",
        "params": {
            "rows": args.rows,
            "memory_rows": args.memory_rows,
            "cpus": args.cpus,
            "batch_size": args.batch_size,
            "speed_recipe": args.speed_recipe,
        },
        "results": results,
        "targets": targets,
    }
    if args.json:
        print(json.dumps(report))
        return
    print(f"{'run':<14}{'rows out':>10}{'seconds':>10}{'ray start':>11}{'driver RSS MB':>15}")
    for key in ("speed_local", "speed_ray", "memory_local", "memory_ray"):
        r = results.get(key)
        if r and "seconds" in r:
            print(
                f"{key:<14}{r['rows_out']:>10,}{r['seconds']:>10}{r['ray_start_s']:>11}"
                f"{r['peak_rss_mb']:>15}"
            )
        elif r:
            print(f"{key:<14} {r}")
    keys = (
        "ray_over_local_time",
        "same_corpus",
        "driver_rss_ray_over_local",
        "tasks",
        "estimate_same_rows",
        "estimate",
        "estimate_rows_here",
    )
    for key in keys:
        if key in results:
            print(f"{key}: {results[key]}")


if __name__ == "__main__":
    main()
