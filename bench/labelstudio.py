"""Label Studio sync against a real server: assay push/pull beside raw API calls.

Targets (issue "Label Studio sync"):
- push of 10,000 tasks within 1.3x the time of one raw bulk import of the same tasks;
- incremental pull after 100 new annotations on a 10,000-task project under 5 s.

The peer is the bare REST API on the same server in the same process run: one POST of all
tasks to /api/projects/<id>/import (push), and a full JSON export (what a pull costs
without incremental sync). Push timings are medians over --reps fresh projects, taken in
alternating order; the push target is the median of the paired ratios.

    python bench/labelstudio.py [--rows 10000] [--reps 3] [--annotations 100] [--json]

Starts its own server (scripts/labelstudio_server.py) unless --url is given; the token is
then read from ASSAY_LS_TOKEN.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from assay.corpus import from_records
from assay.curate.labelstudio import sync as ls_sync
from assay.curate.labelstudio.client import Connection
from assay.curate.labelstudio.config import init_project

LABELS = ["neg", "pos"]
ROOT = Path(__file__).resolve().parents[1]


def server_module():
    spec = importlib.util.spec_from_file_location(
        "labelstudio_server", ROOT / "scripts" / "labelstudio_server.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def make_corpus(n: int):
    words = [
        "good",
        "bad",
        "plot",
        "actor",
        "scene",
        "boring",
        "moving",
        "script",
        "slow",
        "sharp",
        "warm",
        "cold",
    ]
    texts = [
        f"review {i}: " + " ".join(words[(i * k + k) % len(words)] for k in range(1, 12))
        for i in range(n)
    ]
    return from_records(texts, ids=[f"doc{i:06d}" for i in range(n)], split="unlabeled")


def raw_import(url: str, token: str, project: int, tasks: list[dict]) -> float:
    started = time.perf_counter()
    resp = httpx.post(
        f"{url}/api/projects/{project}/import",
        json=tasks,
        headers={"Authorization": f"Token {token}"},
        timeout=600,
    )
    resp.raise_for_status()
    return time.perf_counter() - started


def raw_export(url: str, token: str, project: int) -> tuple[float, int]:
    started = time.perf_counter()
    resp = httpx.get(
        f"{url}/api/projects/{project}/export",
        params={"exportType": "JSON", "download_all_tasks": "true"},
        headers={"Authorization": f"Token {token}"},
        timeout=600,
    )
    resp.raise_for_status()
    return time.perf_counter() - started, len(resp.json())


def run(url: str, token: str, rows: int, reps: int, n_annotations: int) -> dict:
    client = Connection(url).client()
    corpus = make_corpus(rows)
    tasks = [{"data": {"text": t, "assay_id": i}} for i, t in corpus.select("id", "text").rows()]
    tag = uuid.uuid4().hex[:6]

    push_s, raw_s = [], []
    last_project = None
    for rep in range(reps):
        order = ("assay", "raw") if rep % 2 == 0 else ("raw", "assay")
        for who in order:
            project = init_project(client, f"bench-{who}-{rep}-{tag}", LABELS)
            if who == "raw":
                raw_s.append(raw_import(url, token, project.id, tasks))
            else:
                started = time.perf_counter()
                report = ls_sync.push(client, project, corpus)
                push_s.append(time.perf_counter() - started)
                assert report.n_created == rows
                last_project = project

    # A second push of the same corpus: listing only, nothing created.
    started = time.perf_counter()
    again = ls_sync.push(client, last_project, corpus)
    repush_s = time.perf_counter() - started
    assert again.n_created == 0 and again.n_unchanged == rows

    with tempfile.TemporaryDirectory() as sync_dir:
        started = time.perf_counter()
        ls_sync.pull(client, last_project, sync_dir)
        full_pull_s = time.perf_counter() - started
        time.sleep(2.2)  # past the pull's safety margin
        ids = {
            t["data"]["assay_id"]: t["id"]
            for t in client.tasks(last_project.id, filters=[], page_size=5000)
        }
        picked = list(ids)[:: max(1, rows // n_annotations)][:n_annotations]
        for k, example in enumerate(picked):
            client.sdk.annotations.create(
                id=ids[example], result=last_project.config.result(LABELS[k % 2]), lead_time=1.0
            )
        started = time.perf_counter()
        incremental = ls_sync.pull(client, last_project, sync_dir)
        incremental_s = time.perf_counter() - started
        assert incremental.n_tasks_pulled == n_annotations, incremental.n_tasks_pulled
    export_s, exported = raw_export(url, token, last_project.id)
    assert exported == rows

    push_med, raw_med = statistics.median(push_s), statistics.median(raw_s)
    # Each repetition times both back to back; the median of the paired ratios is robust
    # to the load of a shared machine drifting between repetitions.
    ratio = statistics.median(a / r for a, r in zip(push_s, raw_s, strict=True))
    return {
        "bench": "labelstudio",
        "params": {"rows": rows, "reps": reps, "annotations": n_annotations},
        "results": {
            "assay": {
                "push_s": round(push_med, 3),
                "push_s_all": [round(x, 3) for x in push_s],
                "push_tasks_per_s": round(rows / push_med),
                "repush_noop_s": round(repush_s, 3),
                "full_pull_s": round(full_pull_s, 3),
                "incremental_pull_s": round(incremental_s, 3),
                "incremental_tasks_pulled": incremental.n_tasks_pulled,
            },
            "raw_api": {
                "bulk_import_s": round(raw_med, 3),
                "bulk_import_s_all": [round(x, 3) for x in raw_s],
                "bulk_import_tasks_per_s": round(rows / raw_med),
                "full_export_s": round(export_s, 3),
            },
        },
        "targets": [
            {
                "name": "push_time_vs_raw_bulk_import",
                "value": round(ratio, 3),
                "target": "<= 1.3",
                "met": ratio <= 1.3,
            },
            {
                "name": "incremental_pull_s_after_100_annotations",
                "value": round(incremental_s, 3),
                "target": "< 5",
                "met": incremental_s < 5.0,
            },
        ],
    }


def print_table(out: dict) -> None:
    a, r = out["results"]["assay"], out["results"]["raw_api"]
    p = out["params"]
    print(f"Label Studio sync, {p['rows']:,} tasks, median of {p['reps']} (same run)")
    print(f"{'measure':<44}{'assay':>12}{'raw API':>12}")
    print(f"{'push / bulk import (s)':<44}{a['push_s']:>12.3f}{r['bulk_import_s']:>12.3f}")
    print(
        f"{'  tasks per second':<44}{a['push_tasks_per_s']:>12,}{r['bulk_import_tasks_per_s']:>12,}"
    )
    print(f"{'re-push, nothing changed (s)':<44}{a['repush_noop_s']:>12.3f}{'-':>12}")
    print(
        f"{'full pull / full JSON export (s)':<44}{a['full_pull_s']:>12.3f}{r['full_export_s']:>12.3f}"
    )
    label = f"incremental pull after {p['annotations']} annotations (s)"
    print(f"{label:<44}{a['incremental_pull_s']:>12.3f}{'-':>12}")
    print()
    for t in out["targets"]:
        mark = "met" if t["met"] else "NOT met"
        print(f"target {t['name']}: {t['value']} (want {t['target']}) {mark}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--annotations", type=int, default=100)
    parser.add_argument("--url", default=None, help="use this server (token in ASSAY_LS_TOKEN)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    server = None
    if args.url:
        url, token = args.url.rstrip("/"), os.environ["ASSAY_LS_TOKEN"]
    else:
        mod = server_module()
        server = mod.LabelStudioServer().start()
        url, token = server.url, server.token
        os.environ["ASSAY_LS_TOKEN"] = token
    try:
        out = run(url, token, args.rows, args.reps, args.annotations)
    finally:
        if server is not None:
            server.stop()
    if args.json:
        print(json.dumps(out))
    else:
        print_table(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
