"""The engine recipe on a Ray cluster of three nodes on this machine (a head and two
workers, one CPU each): batches, actor pools and hash shuffles cross raylets, and the run
must still be the local one (the same corpus, dropped rows and findings)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from assay import from_frame, run
from assay.registry import names, register
from assay.step import Filter, Keep

needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None,
    reason="the 'ray' extra is not installed: pip install 'assay[ray]'",
)
NODES = 3
# Steps left out here: each loads a model that takes minutes on two shared cores in every
# actor (test_engine_recipe.py runs them on a one-node cluster).
HEAVY = {"generate", "back_translation", "translate_train"}


def _engine_recipe_module():
    """test_engine_recipe.py, whose planted corpus and recipe this file reuses (test files
    are not importable by name under --import-mode=importlib)."""
    name = "assay_tests_engine_recipe"
    if name not in sys.modules:
        path = Path(__file__).with_name("test_engine_recipe.py")
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _node_probes() -> tuple[str, str]:
    """Two filters that keep every row and count the rows each Ray node saw: one runs as
    Ray tasks, one in an actor pool. Defined in a function so that Ray ships the classes
    by value (workers cannot import this file)."""

    def seen(corpus):
        node = "local"
        ray = sys.modules.get("ray")
        if ray is not None and ray.is_initialized():
            node = ray.get_runtime_context().get_node_id()
        return Keep(mask=[True] * corpus.height, summary={"nodes": {node: corpus.height}})

    class NodeProbe(Filter):
        """Keeps every row; counts the rows per Ray node (test only)."""

        row_local = True

        def keep(self, corpus, ctx):
            return seen(corpus)

    class NodeProbeActors(NodeProbe):
        """Keeps every row in an actor pool; counts the rows per Ray node (test only)."""

        loads_model = True

    probes = (("test_node_probe", NodeProbe), ("test_node_probe_actors", NodeProbeActors))
    for name, cls in probes:
        if name not in names():
            register(name)(cls)
    return probes[0][0], probes[1][0]


PROBE_TASKS, PROBE_ACTORS = _node_probes()


def cluster_recipe(lexicon: Path, engine: object) -> dict:
    """The engine recipe without the heavy models, with the node probes after `clean`."""
    spec = _engine_recipe_module().recipe(lexicon, engine, None)
    steps = []
    for step in spec["steps"]:
        (name, params), *_ = step.items()
        if name in HEAVY or (name == "dedup" and params.get("method") == "semantic"):
            continue
        if name == "leakage":
            step = {"leakage": {}}  # every method but the semantic ones (MiniLM)
        steps.append(step)
    steps[1:1] = [{PROBE_TASKS: {}}, {PROBE_ACTORS: {}}]
    return {**spec, "steps": steps}


@pytest.fixture
def three_nodes(monkeypatch):
    """A head and two worker nodes, one CPU each, and a driver connected to them. The
    cluster's address is not written to Ray's address file, so a plain `ray.init()` in
    another test process (pytest-xdist) starts its own cluster rather than joining this
    one; every port is picked free."""
    import ray
    import ray._private.utils
    from ray.cluster_utils import Cluster

    monkeypatch.setattr(ray._private.utils, "write_ray_address", lambda *a, **k: None)
    node = {"num_cpus": 1, "object_store_memory": 100 * 1024 * 1024}
    cluster = Cluster(
        initialize_head=True,
        head_node_args={**node, "include_dashboard": False, "dashboard_agent_listen_port": None},
    )
    try:
        for _ in range(NODES - 1):
            cluster.add_node(**node)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)
        try:
            yield cluster
        finally:
            ray.shutdown()
    finally:
        cluster.shutdown()


@needs_ray
@pytest.mark.slow
def test_the_engine_recipe_on_three_nodes_gives_the_local_run(tmp_path, three_nodes):
    import ray

    helpers = _engine_recipe_module()
    lexicon = tmp_path / "lexicon.yaml"
    lexicon.write_text("heart attack: [myocardial infarction, MI]\nfilm: [picture]\n")
    corpus = from_frame(helpers.planted_frame())
    local = run(cluster_recipe(lexicon, "local"), tmp_path / "local", corpus=corpus)
    assert len({n["NodeID"] for n in ray.nodes() if n["Alive"]}) == NODES
    # small batches, so every step runs on several; two actors per pool, which one-CPU
    # nodes must place on two nodes
    settings = {"ray": {"batch_size": 32, "actors": 2}}
    remote = run(cluster_recipe(lexicon, settings), tmp_path / "ray", corpus=corpus)

    assert remote.manifest["engine"] == "ray"
    mine, theirs = helpers._outputs(tmp_path / "local"), helpers._outputs(tmp_path / "ray")
    assert sorted(mine) == sorted(theirs)
    assert any("dropped" in name for name in mine)
    for step in ("quality", "model_audit", "leakage"):
        assert any(step in name and "findings" in name for name in mine), step
    for name, frame in mine.items():
        assert frame.equals(theirs[name]), name
    assert [s["n_dropped"] for s in remote.manifest["steps"]] == [
        s["n_dropped"] for s in local.manifest["steps"]
    ]

    def nodes_of(result, probe):
        (step,) = [s for s in result.manifest["steps"] if s["step"] == probe]
        return step["summary"]["nodes"]

    alive = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    rows = local.manifest["steps"][0]["n_out"]
    # locally, one call in the driver's process saw every row
    assert list(nodes_of(local, PROBE_TASKS).values()) == [rows]
    seen = set()
    for probe in (PROBE_TASKS, PROBE_ACTORS):
        ran = nodes_of(remote, probe)
        assert set(ran) <= alive, probe
        assert sum(ran.values()) == rows, probe
        seen |= set(ran)
    # the batches ran on more than one node
    assert len(seen) >= 2, seen
