from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from assay import RunContext
from assay.corpus import from_records
from assay.engine import LocalEngine, get_engine
from assay.errors import InputError

HAS_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(
    not HAS_RAY, reason="the 'ray' extra is not installed: pip install 'assay[ray]'"
)


def _double(table: pa.Table) -> pa.Table:
    return pa.table({"x": pa.compute.multiply(table["x"], 2)})


def _group_sizes(table: pa.Table) -> pa.Table:
    frame = pl.from_arrow(table).group_by("key").len().rename({"len": "n"})
    return frame.to_arrow()


def test_local_engine_maps_batches_and_keeps_groups_whole():
    engine = LocalEngine()
    table = pa.table({"x": np.arange(10), "key": np.arange(10) % 3})
    assert engine.map_batches(table, _double, batch_size=4)["x"].to_pylist() == list(
        range(0, 20, 2)
    )
    sizes = pl.from_arrow(engine.shuffle_map(table, "key", _group_sizes)).sort("key")
    assert sizes["n"].to_list() == [4, 3, 3]


def test_unknown_engine_is_an_input_error():
    with pytest.raises(InputError, match="unknown engine"):
        get_engine("spark")


def planted_corpus(n_base: int = 1500, seed: int = 3) -> pl.DataFrame:
    """Random word texts; every fifth row gets a one-word-edited copy appended."""
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(5000)])
    texts = [" ".join(vocab[rng.integers(0, len(vocab), size=30)]) for _ in range(n_base)]
    copies = []
    for i in range(0, n_base, 5):
        words = texts[i].split()
        words[int(rng.integers(0, len(words)))] = "edited"
        copies.append(" ".join(words))
    all_texts = texts + copies
    return from_records(
        all_texts,
        ["a"] * len(all_texts),
        split=["train"] * len(all_texts),
        ids=[f"d{i}" for i in range(len(all_texts))],
    )


@pytest.fixture(scope="module")
def ray_cluster():
    """A real local Ray cluster (separate processes), shared by the tests of this module."""
    if not HAS_RAY:
        pytest.skip("the 'ray' extra is not installed: pip install 'assay[ray]'")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1")
    try:
        yield ray
    finally:
        ray.shutdown()


def _both_engines(corpus: pl.DataFrame, **params):
    from assay.curate.dedup import DedupFilter

    out = {}
    for name in ("local", "ray"):
        step = DedupFilter(method="minhash", engine=name, **params)
        out[name] = step.apply(corpus, RunContext(engine=name).for_step(0, "dedup"))
    return out["local"], out["ray"]


@needs_ray
@pytest.mark.integration
def test_ray_engine_gives_the_local_engine_output(ray_cluster):
    assert ray_cluster.is_initialized()
    corpus = planted_corpus()
    local, remote = _both_engines(corpus, threshold=0.6)
    assert remote.report.summary["engine"] == "ray"
    assert local.corpus.equals(remote.corpus)
    assert local.dropped.equals(remote.dropped)
    # the planted copies are what was dropped
    assert sorted(local.dropped["id"].to_list()) == sorted(f"d{1500 + k}" for k in range(300))


@needs_ray
@pytest.mark.integration
@pytest.mark.slow
def test_ray_engine_keeps_the_same_ids_on_100k_rows(ray_cluster):
    corpus = planted_corpus(n_base=84_000)  # + 16,800 planted copies
    local, remote = _both_engines(corpus, verify=False, ngram=5, num_perm=64)
    assert local.corpus["id"].to_list() == remote.corpus["id"].to_list()
    assert local.report.summary["candidate_pairs"] == remote.report.summary["candidate_pairs"]


def test_doctor_says_when_ray_is_missing_or_no_cluster_runs_without_starting_one(
    monkeypatch, tmp_path
):
    from assay import resource_checks

    monkeypatch.setattr(resource_checks, "has_module", lambda name: name != "ray")
    check = resource_checks.ray_cluster()
    assert not check.ok and "not installed" in check.detail and "assay[ray]" in check.fix
    monkeypatch.undo()
    if not HAS_RAY or ("ray" in sys.modules and sys.modules["ray"].is_initialized()):
        return
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(resource_checks, "Path", lambda p: tmp_path / "no-cluster-file")
    check = resource_checks.ray_cluster()
    assert not check.ok and "no Ray cluster running" in check.detail
    assert "ray" not in sys.modules or not sys.modules["ray"].is_initialized()


@needs_ray
@pytest.mark.integration
def test_doctor_reports_the_cluster_it_sees(ray_cluster):
    from assay import resources

    check = resources.ray_cluster()
    assert check.ok
    assert "2 CPUs" in check.detail and "0 GPUs" in check.detail and "1 node(s)" in check.detail


def _label_rows(table: pa.Table) -> pa.Table:
    return pa.table({"x": table["x"], "n": pa.array([table.num_rows] * table.num_rows)})


class _Model:
    """Loads once per instance; the engine builds one per actor."""

    def __init__(self, offset: int) -> None:
        self.offset = offset

    def __call__(self, table: pa.Table) -> pa.Table:
        return pa.table({"x": pa.compute.add(table["x"], self.offset)})


@needs_ray
@pytest.mark.integration
def test_ray_engine_runs_callable_classes_in_an_actor_pool_and_shuffles_by_key(ray_cluster):
    from assay.engine import RayEngine

    engine = RayEngine()
    table = pa.table({"x": np.arange(1000), "key": np.arange(1000) % 7})
    out = engine.map_batches(table, _Model, batch_size=100, fn_args=(5,), concurrency=2)
    assert sorted(out["x"].to_pylist()) == list(range(5, 1005))
    sizes = pl.from_arrow(engine.shuffle_map(table, "key", _group_sizes)).sort("key")
    assert sizes["key"].to_list() == list(range(7))
    assert sizes["n"].to_list() == [143, 143, 143, 143, 143, 143, 142]
    local = LocalEngine().map_batches(table, _Model, batch_size=100, fn_args=(5,))
    assert local["x"].to_pylist() == list(range(5, 1005))


def _short_filter():
    from assay.step import Filter, Keep

    class ShortFilter(Filter):
        """Drops texts of fewer than four words; counts them per label."""

        name = "short"
        row_local = True
        batch_rows = 7

        def keep(self, corpus, ctx):
            short = corpus["text"].str.count_matches(r"\S+") < 4
            labels = corpus.filter(short)["label"].value_counts()
            return Keep(
                mask=(~short).to_numpy(),
                reason="too_short",
                columns=corpus.select("id", short__words=pl.col("text").str.count_matches(r"\S+")),
                summary={"short": dict(labels.iter_rows()), "checked": corpus.height},
            )

    return ShortFilter()


@needs_ray
@pytest.mark.integration
def test_a_row_local_filter_runs_in_batches_on_ray_with_the_same_books(ray_cluster):
    texts = [("one two three four five " if i % 3 else "too short ") + str(i) for i in range(40)]
    corpus = from_records(
        texts,
        ["a" if i % 2 else "b" for i in range(40)],
        split=["train"] * 40,
        ids=[f"t{i}" for i in range(40)],
    )
    step = _short_filter()
    local = step.apply(corpus, RunContext(engine="local").for_step(0, "short"))
    remote = step.apply(corpus, RunContext(engine="ray").for_step(0, "short"))
    assert sorted(local.dropped["id"].to_list()) == sorted(f"t{i}" for i in range(0, 40, 3))
    assert local.corpus.equals(remote.corpus)
    assert local.dropped.equals(remote.dropped)
    assert remote.report.summary == local.report.summary
    assert local.report.summary["checked"] == 40


@needs_ray
@pytest.mark.integration
def test_cpu_budget_is_the_cpus_ray_assigns_inside_a_worker(ray_cluster):
    from assay.engine import cpu_budget

    @ray_cluster.remote(num_cpus=1)
    def budget() -> int:
        return cpu_budget()

    @ray_cluster.remote(num_cpus=2)
    def budget_of_two() -> int:
        return cpu_budget()

    assert ray_cluster.get(budget.remote()) == 1
    assert ray_cluster.get(budget_of_two.remote()) == 2
    # the driver is given no CPUs by Ray: its budget is the cores it may run on
    assert cpu_budget() == len(os.sched_getaffinity(0))
