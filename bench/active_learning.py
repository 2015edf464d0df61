"""Active learning: learning curves of the selection strategies, with a simulated oracle.

Each run starts from 50 randomly labelled train rows and labels `--batch` more per round
(the oracle answers with the true label), chosen by one strategy of
`assay.curate.active`: random, uncertainty (entropy, or `--measure`, of the fast model), diversity (k-center
greedy on MiniLM embeddings), hybrid (k-center among the 5 x batch most uncertain). After
every round the fast model is trained on the labelled rows and scored on the test split
(macro-F1). Curves are means over `--seeds` seeds with 95% t-intervals across seeds; the
ratio of labels (best strategy / random) gets a 95% interval by resampling the seeds.

Targets: the best strategy needs at most half the labels random needs to come within
1 point of the full-train-split macro-F1, on both data sets. Rounds stop at
`--max-labels` (the fast model is retrained every round on 2 shared cores); a strategy that
has not come within the point by then is reported as needing more than the cap.

`--server` adds one timed round against a real Label Studio server (started here): pull,
retrain, push of `--batch` tasks with their reasons.

    python bench/active_learning.py [--datasets trec sst2] [--seeds 5] [--max-labels 2550]
        [--server] [--json] [--plot curves.svg] [--from-json saved.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from assay.curate import active
from assay.embedding_cache import EmbeddingCache
from assay.train.fast import FastModel
from assay.train.metrics import classification_report

DATA = Path("/work/shared/data")
STRATEGIES = ("random", "uncertainty", "diversity", "hybrid")
START = 50
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306}


def load(name: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    train = pl.read_csv(DATA / name / "train.csv").with_columns(pl.col("label").cast(pl.String))
    test = pl.read_csv(DATA / name / "test.csv").with_columns(pl.col("label").cast(pl.String))
    train = train.with_row_index("row").with_columns(id=pl.format("{}-{}", pl.lit(name), "row"))
    return train, test


def macro_f1(model: FastModel, test: pl.DataFrame, classes: list[str]) -> float:
    pred = model.predict(test["text"].to_list())
    return float(classification_report(test["label"].to_list(), pred, classes)["macro_f1"])


def run_curve(
    train: pl.DataFrame,
    test: pl.DataFrame,
    vectors: np.ndarray,
    strategy: str,
    seed: int,
    batch: int,
    max_labels: int,
    cold_strategy: str = "random",
    measure: str = "entropy",
) -> list[tuple[int, float]]:
    texts = train["text"].to_list()
    labels = np.array(train["label"].to_list())
    classes = sorted(set(labels.tolist()) | set(test["label"].to_list()))
    n = len(texts)
    rng = np.random.default_rng(seed)
    labelled = np.zeros(n, dtype=bool)
    labelled[rng.choice(n, START, replace=False)] = True
    curve = []
    while True:
        idx = np.flatnonzero(labelled)
        model = FastModel(seed=seed).fit([texts[i] for i in idx], labels[idx].tolist())
        curve.append((int(idx.size), macro_f1(model, test, classes)))
        if idx.size >= max_labels or idx.size >= n:
            return curve
        pool = np.flatnonzero(~labelled)
        proba = None
        if strategy in ("uncertainty", "hybrid"):
            proba = model.predict_proba([texts[i] for i in pool])
        sel = active.select(
            pool.astype(str).tolist(),
            min(batch, max_labels - idx.size),
            strategy,
            rng,
            labels=labels[idx].tolist(),
            classes=classes,
            proba=proba,
            pool_vectors=vectors[pool],
            labelled_vectors=vectors[idx],
            cold_strategy=cold_strategy,
            measure=measure,
        )
        labelled[np.array(sel.ids, dtype=np.int64)] = True


def full_f1(train: pl.DataFrame, test: pl.DataFrame) -> float:
    classes = sorted(set(train["label"].to_list()) | set(test["label"].to_list()))
    model = FastModel(seed=0).fit(train["text"].to_list(), train["label"].to_list())
    return macro_f1(model, test, classes)


def summarise(curves: list[list[tuple[int, float]]], full: float) -> dict:
    sizes = [s for s, _ in curves[0]]
    scores = np.array([[f for _, f in c] for c in curves])  # seeds x rounds
    mean = scores.mean(axis=0)
    k = scores.shape[0]
    half = T975.get(k - 1, 1.96) * scores.std(axis=0, ddof=1) / math.sqrt(k) if k > 1 else 0 * mean
    area = float(np.trapezoid(mean, sizes) / (sizes[-1] - sizes[0])) if len(sizes) > 1 else mean[0]
    reached = first_within(scores, sizes, full)
    return {
        "labels": sizes,
        "macro_f1": [round(float(x), 4) for x in mean],
        "ci_low": [round(float(x), 4) for x in mean - half],
        "ci_high": [round(float(x), 4) for x in mean + half],
        "auc": round(area, 4),
        "labels_to_within_1pt": reached,
        "final_macro_f1": round(float(mean[-1]), 4),
        "per_seed": scores.round(4).tolist(),
    }


def first_within(scores: np.ndarray, sizes: list[int], full: float) -> int | None:
    """The first label count where the mean curve (seeds x rounds) is within 1 point of full."""
    hit = np.flatnonzero(scores.mean(axis=0) >= full - 0.01)
    return int(sizes[hit[0]]) if hit.size else None


def ratio_interval(
    result: dict, best: str, max_labels: int, batch: int, draws: int = 2000
) -> list[float | None]:
    """95% percentile interval of best/random labels to within 1 point, resampling seeds.

    Seeds are resampled in pairs (a seed's strategies share their 50 starting rows). A draw
    where random never gets there counts it as needing one batch past the cap (the ratio
    then is an upper bound); one where the best never does is infinite (printed as None).
    """
    if "per_seed" not in result[best] or "per_seed" not in result["random"]:
        return [None, None]
    full = result["full_macro_f1"]
    sizes = result["random"]["labels"]
    rand, top = np.array(result["random"]["per_seed"]), np.array(result[best]["per_seed"])
    rng = np.random.default_rng(0)
    ratios = np.empty(draws)
    for d in range(draws):
        pick = rng.integers(0, rand.shape[0], rand.shape[0])
        r = first_within(rand[pick], sizes, full) or max_labels + batch
        b = first_within(top[pick], sizes, full)
        ratios[d] = np.inf if b is None else b / r
    lo, hi = np.percentile(ratios, [2.5, 97.5])
    return [round(float(x), 3) if np.isfinite(x) else None for x in (lo, hi)]


def bench_dataset(
    name: str,
    seeds: int,
    batch: int,
    max_labels: int,
    strategies: tuple[str, ...],
    cache_dir: str | None = None,
    cold_strategy: str = "random",
    measure: str = "entropy",
) -> dict:
    train, test = load(name)
    started = time.perf_counter()
    full = full_f1(train, test)
    t0 = time.perf_counter()
    # in memory only, unless a directory keeps them between runs
    vectors = EmbeddingCache(cache_dir).embed(train["text"].to_list())
    embed_s = time.perf_counter() - t0
    out: dict = {"full_train_rows": train.height, "full_macro_f1": round(full, 4)}
    out["embed_s"] = round(embed_s, 1)
    for strategy in strategies:
        t0 = time.perf_counter()
        curves = [
            run_curve(
                train, test, vectors, strategy, seed, batch, max_labels, cold_strategy, measure
            )
            for seed in range(seeds)
        ]
        out[strategy] = summarise(curves, full)
        out[strategy]["seconds"] = round(time.perf_counter() - t0, 1)
        print(
            f"{name} {strategy}: auc {out[strategy]['auc']} final {out[strategy]['final_macro_f1']}"
            f" within-1pt {out[strategy]['labels_to_within_1pt']} "
            f"({out[strategy]['seconds']} s)",
            file=sys.stderr,
            flush=True,
        )
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def label_ratio(result: dict, max_labels: int, batch: int) -> tuple[float | None, str, bool]:
    """(best labels / random labels, the best strategy, met); bounds when random never got there."""
    others = {s: result[s]["labels_to_within_1pt"] for s in STRATEGIES if s in result}
    random_needs = others.pop("random", None)
    reached = {s: v for s, v in others.items() if v is not None}
    if not reached:
        return None, "-", False
    best = min(reached, key=reached.__getitem__)
    # Random not within the point by the cap: it needs at least one more batch.
    denominator = random_needs if random_needs is not None else max_labels + batch
    ratio = reached[best] / denominator
    return round(ratio, 3), best, ratio <= 0.5


def match_random(result: dict) -> dict:
    """Labels each strategy needs to reach random's macro-F1 at the cap (mean curves)."""
    rand = result["random"]
    goal, cap = rand["macro_f1"][-1], rand["labels"][-1]
    out = {"random_final_macro_f1": goal, "random_labels": cap}
    for s in STRATEGIES:
        if s == "random" or s not in result:
            continue
        hit = [
            n for n, f in zip(result[s]["labels"], result[s]["macro_f1"], strict=True) if f >= goal
        ]
        out[s] = {
            "labels": hit[0] if hit else None,
            "ratio": round(hit[0] / cap, 3) if hit else None,
        }
    return out


def server_round(batch: int, cache_dir: str | None) -> dict:
    """Two rounds on TREC against a real server; the oracle annotates the first batch."""
    import importlib.util
    import os
    import uuid

    from assay.corpus import from_records
    from assay.curate.labelstudio.client import Connection
    from assay.curate.labelstudio.config import init_project
    from assay.curate.labelstudio.round import run_round

    spec = importlib.util.spec_from_file_location(
        "labelstudio_server", Path(__file__).resolve().parents[1] / "scripts/labelstudio_server.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    train, test = load("trec")
    rng = np.random.default_rng(0)
    seed_rows = set(rng.choice(train.height, START, replace=False).tolist())
    truth = dict(zip(train["id"], train["label"], strict=True))
    corpus = from_records(
        train["text"].to_list() + test["text"].to_list(),
        [lab if i in seed_rows else None for i, lab in enumerate(train["label"])]
        + test["label"].to_list(),
        ids=train["id"].to_list() + [f"trec-test-{i}" for i in range(test.height)],
        split=["train" if i in seed_rows else "unlabeled" for i in range(train.height)]
        + ["dev"] * test.height,
    )
    embeddings = EmbeddingCache(cache_dir) if cache_dir else None
    with mod.LabelStudioServer() as server, tempfile.TemporaryDirectory() as state_dir:
        os.environ["ASSAY_LS_TOKEN"] = server.token
        client = Connection(server.url).client()
        labels = sorted(set(train["label"].to_list()))
        project = init_project(client, f"al-bench-{uuid.uuid4().hex[:6]}", labels)
        first = run_round(
            client, project, corpus, state_dir, strategy="hybrid", batch=batch,
            embeddings=embeddings,
        )  # fmt: skip
        started = time.perf_counter()
        for task in client.tasks(project.id):
            label = truth[task["data"]["assay_id"]]
            client.sdk.annotations.create(id=task["id"], result=project.config.result(label))
        annotate_s = time.perf_counter() - started
        time.sleep(2.2)  # past the pull's safety margin
        second = run_round(
            client, project, corpus, state_dir, strategy="hybrid", batch=batch,
            embeddings=embeddings,
        )  # fmt: skip
    return {
        "batch": batch,
        "first_round_s": first.seconds,
        "second_round_s": second.seconds,
        "second_round_new_annotations": second.n_new_annotations,
        "second_round_labels": second.n_labels,
        "second_round_pushed": second.push["n_created"],
        "dev_macro_f1_round1": first.metric,
        "dev_macro_f1_round2": second.metric,
        "oracle_annotation_posts_s": round(annotate_s, 2),
    }


COLOURS = {"random": "#888888", "uncertainty": "#4C78A8", "diversity": "#54A24B",
           "hybrid": "#F58518"}  # fmt: skip


def curves_svg(out: dict, width: int = 560, height: int = 300) -> str:
    """One panel per data set: mean test macro-F1 against labels per strategy, the 95% CI
    as a band, the full-train-split score and the point below it as dashed lines."""
    panels = [(n, r) for n, r in out["results"].items() if n != "server_round"]
    left, top, gap = 56, 30, 36
    total_h = len(panels) * (height + gap)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + left + 130}" '
        f'height="{total_h}" role="img" aria-label="active learning curves" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{width + left + 130}" height="{total_h}" fill="white"/>',
    ]
    for k, (name, res) in enumerate(panels):
        y0 = k * (height + gap) + top
        plot_h = height - top - 30
        strategies = [s for s in STRATEGIES if s in res]
        xmax = max(res[s]["labels"][-1] for s in strategies)
        lows = [min(res[s]["ci_low"]) for s in strategies]
        ylo = max(0.0, min(lows) - 0.02)
        yhi = res["full_macro_f1"] + 0.03

        def x(n: float, xmax: float = xmax) -> float:
            return left + n / xmax * width

        def y(
            v: float, y0: float = y0, ylo: float = ylo, yhi: float = yhi, h: int = plot_h
        ) -> float:
            return y0 + (yhi - min(max(v, ylo), yhi)) / (yhi - ylo) * h

        full = res["full_macro_f1"]
        parts.append(f'<text x="{left}" y="{y0 - 10}" font-weight="bold">{name}: test '
                     f"macro-F1 by labels ({out['params']['seeds']} seeds, 95% CI)</text>")  # fmt: skip
        for v, dash in ((full, "6 3"), (full - 0.01, "2 3")):
            parts.append(f'<line x1="{left}" x2="{left + width}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                         f'stroke="#444" stroke-dasharray="{dash}"/>')  # fmt: skip
        for t in np.linspace(ylo, yhi, 5):
            parts.append(
                f'<text x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end">{t:.2f}</text>'
            )
        for t in np.linspace(0, xmax, 6):
            parts.append(f'<text x="{x(t):.1f}" y="{y0 + plot_h + 16}" text-anchor="middle">'
                         f"{int(round(t, -1)):,}</text>")  # fmt: skip
        for i, s in enumerate(strategies):
            r, colour = res[s], COLOURS[s]
            band = [
                f"{x(n):.1f},{y(v):.1f}" for n, v in zip(r["labels"], r["ci_high"], strict=True)
            ]
            band += [f"{x(n):.1f},{y(v):.1f}"
                     for n, v in zip(r["labels"][::-1], r["ci_low"][::-1], strict=True)]  # fmt: skip
            parts.append(f'<polygon points="{" ".join(band)}" fill="{colour}" opacity="0.18"/>')
            line = " ".join(
                f"{x(n):.1f},{y(v):.1f}" for n, v in zip(r["labels"], r["macro_f1"], strict=True)
            )
            parts.append(
                f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
            need = r["labels_to_within_1pt"]
            ly = y0 + 14 + i * 18
            parts.append(f'<rect x="{left + width + 12}" y="{ly - 9}" width="10" height="10" '
                         f'fill="{colour}"/><text x="{left + width + 28}" y="{ly}">{s} '
                         f"({need or '-'})</text>")  # fmt: skip
        parts.append(f'<text x="{left + width / 2}" y="{y0 + plot_h + 30}" text-anchor="middle" '
                     'fill="#555">labels (in brackets: labels to within 1 point of the full '
                     "split, dotted)</text>")  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


def print_table(out: dict) -> None:
    p = out["params"]
    print(
        f"Active learning, fast model, start {START}, rounds of {p['batch']}, up to "
        f"{p['max_labels']} labels, {p['seeds']} seeds (test macro-F1, mean [95% CI])"
    )
    for name, res in out["results"].items():
        if name == "server_round":
            continue
        print(f"\n{name}: full train split ({res['full_train_rows']} rows) {res['full_macro_f1']}")
        sizes = res["random"]["labels"]
        show = [i for i, s in enumerate(sizes) if s in (50, 150, 250, 550, 1050, 1550, 2050)]
        show = show or list(range(len(sizes)))
        head = "".join(f"{sizes[i]:>20}" for i in show)
        print(f"{'strategy':<12}{head}{'AUC':>8}{'to 1pt':>8}")
        for s in STRATEGIES:
            r = res.get(s)
            if r is None:
                continue
            cells = "".join(
                f"{r['macro_f1'][i]:>8.3f} [{r['ci_low'][i]:.3f},{r['ci_high'][i]:.3f}]"[
                    -20:
                ].rjust(20)
                for i in show
            )
            need = r["labels_to_within_1pt"]
            print(f"{s:<12}{cells}{r['auc']:>8.3f}{(need or '>' + str(p['max_labels'])):>8}")
        if "to_match_random_at_cap" in res:
            m = res["to_match_random_at_cap"]
            print(
                f"labels to reach random's {m['random_final_macro_f1']:.3f} at "
                f"{m['random_labels']}: "
                + ", ".join(
                    f"{s} {m[s]['labels'] or '-'}" for s in STRATEGIES if s in m and s != "random"
                )
            )
    if "server_round" in out["results"]:
        print("\nserver round:", json.dumps(out["results"]["server_round"]))
    print()
    for t in out["targets"]:
        mark = "met" if t["met"] else "NOT met"
        lo, hi = t.get("ci95", [None, None])
        ci = f" [{lo}, {hi if hi is not None else 'inf'}]" if lo is not None else ""
        print(f"target {t['name']}: {t['value']}{ci} ({t['best']}; want {t['target']}) {mark}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=["trec", "sst2"])
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--max-labels", type=int, default=2550)
    parser.add_argument("--server", action="store_true", help="add one timed real-server round")
    parser.add_argument(
        "--cache-dir", default=None, help="keep MiniLM embeddings here between runs"
    )
    parser.add_argument(
        "--cold-strategy", default="random", choices=["random", "diversity"],
        help="what uncertainty and hybrid do before the model can be trusted",
    )  # fmt: skip
    parser.add_argument(
        "--measure", default="entropy", choices=["entropy", "margin", "least_confidence"],
        help="uncertainty measure of uncertainty and hybrid (the same ranking on 2 classes)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--plot", type=Path, help="write the learning curves here (SVG)")
    parser.add_argument(
        "--from-json", type=Path, help="print and plot a saved --json result instead of running"
    )
    args = parser.parse_args()
    if args.from_json:
        out = json.loads(args.from_json.read_text())
        if args.plot:
            args.plot.write_text(curves_svg(out))
        print_table(out)
        return 0
    results: dict = {}
    targets = []
    for name in args.datasets:
        res = bench_dataset(
            name,
            args.seeds,
            args.batch,
            args.max_labels,
            tuple(args.strategies),
            args.cache_dir,
            args.cold_strategy,
            args.measure,
        )
        results[name] = res
        if "random" in res:
            res["to_match_random_at_cap"] = match_random(res)
        ratio, best, met = label_ratio(res, args.max_labels, args.batch)
        targets.append(
            {
                "name": f"{name}_labels_best_over_random_to_within_1pt",
                "value": ratio,
                "ci95": ratio_interval(res, best, args.max_labels, args.batch)
                if ratio is not None and "random" in res
                else [None, None],
                "best": best,
                "target": "<= 0.5",
                "met": met,
            }
        )
    if args.server:
        results["server_round"] = server_round(args.batch, args.cache_dir)
    out = {
        "bench": "active_learning",
        "params": {
            "datasets": args.datasets,
            "seeds": args.seeds,
            "batch": args.batch,
            "start": START,
            "max_labels": args.max_labels,
            "cold_strategy": args.cold_strategy,
            "measure": args.measure,
            "model": "fast",
        },
        "results": results,
        "targets": targets,
    }
    if args.plot:
        args.plot.write_text(curves_svg(out))
    if args.json:
        print(json.dumps(out))
    else:
        print_table(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
