from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import sys
import textwrap
import time
import uuid
from datetime import timedelta

import pytest

from assay import from_records
from assay.cache import StepCache, code_hash, code_modules, parse_duration, step_key
from assay.context import RunContext
from assay.curate.clean import CleanTransform
from assay.curate.split import SplitStep
from assay.errors import InputError
from assay.recipes.runner import run_steps
from assay.step import StepReport, StepResult

STEP_MODULE = """
from assay import Filter, Keep

MIN_CHARS = {min_chars}


class DropShort(Filter):
    \"\"\"Drops texts shorter than MIN_CHARS.\"\"\"

    name = "drop_short"

    def keep(self, corpus, ctx):
        return Keep(corpus["text"].str.len_chars() >= MIN_CHARS, "short")
"""


@pytest.fixture
def step_package(tmp_path, monkeypatch):
    """A step module in a package of its own on sys.path; `write(n)` rewrites its source."""
    package = f"stepdemo_{uuid.uuid4().hex[:8]}"
    root = tmp_path / "src"
    (root / package).mkdir(parents=True)
    (root / package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)

    def write(min_chars: int):
        (root / package / "steps.py").write_text(STEP_MODULE.format(min_chars=min_chars))
        importlib.invalidate_caches()
        name = f"{package}.steps"
        return (
            importlib.reload(sys.modules[name])
            if name in sys.modules
            else (importlib.import_module(name))
        )

    yield write
    for name in [m for m in sys.modules if m.startswith(package)]:
        del sys.modules[name]


def corpus():
    texts = ["a", "bb", "ccc", "dddd", "eeeee", "ffffff"] * 4
    return from_records(texts, ["x", "y"] * 12, ids=[f"r{i}" for i in range(len(texts))])


def test_editing_a_step_recomputes_it_and_later_steps_but_not_earlier_ones(tmp_path, step_package):
    cache = StepCache(tmp_path / "cache")
    module = step_package(2)

    def run(mod):
        steps = [CleanTransform(), mod.DropShort(), SplitStep()]
        return run_steps(corpus(), steps, RunContext(seed=1), cache=cache)

    first = run(module)
    again = run(module)
    assert [r.cached for r in first.reports] == [False, False, False]
    assert [r.cached for r in again.reports] == [True, True, True]

    edited = step_package(3)
    after = run(edited)
    assert [r.cached for r in after.reports] == [True, False, False]
    assert after.corpus.height == first.corpus.height - 4  # the "bb" rows now go too
    assert "bb" not in after.corpus["text"].to_list()


def _edit_source(monkeypatch, module: str) -> None:
    """From now on `module`'s source reads as edited, and no code hash is remembered."""
    import assay.cache as cache_mod

    original = cache_mod._module_source

    def patched(name):
        return original(name) + (b"# edited" if name == module else b"")

    monkeypatch.setattr(cache_mod, "_CODE_HASHES", {})
    monkeypatch.setattr(cache_mod, "_module_source", patched)


def test_code_hash_changes_with_the_source_of_a_base_module(monkeypatch):
    before = code_hash(SplitStep)
    assert "assay.step" in code_modules(SplitStep)
    assert "assay.curate.split" in code_modules(SplitStep)
    _edit_source(monkeypatch, "assay.step")
    assert code_hash(SplitStep) != before
    assert step_key("in", SplitStep(), 0, 0) != step_key("in", SplitStep(), 1, 0)


def test_code_modules_follow_the_step_modules_own_imports():
    from assay.curate.dedup import DedupFilter

    modules = code_modules(DedupFilter)
    assert {"assay.curate.dedup", "assay.curate.dedup_minhash", "assay.step"} <= set(modules)
    assert not any(m.startswith(("torch", "polars", "numpy")) for m in modules)


def test_code_hash_covers_modules_a_step_reaches_only_through_others(monkeypatch):
    import assay.cache as cache_mod
    from assay.curate.dedup import DedupFilter

    # dedup.py never imports assay.embeddings; dedup_semantic.py, which it imports, does
    assert b"assay.embeddings" not in cache_mod._module_source("assay.curate.dedup")
    assert "assay.embeddings" in code_modules(DedupFilter)
    before = code_hash(DedupFilter)
    _edit_source(monkeypatch, "assay.embeddings")
    assert code_hash(DedupFilter) != before


def test_damaged_entries_are_misses_and_removed(tmp_path):
    cache = StepCache(tmp_path)
    c = from_records(["a", "b"], ["x", "y"])
    report = StepReport(step="s", kind="filter", n_in=2, n_out=2)
    cache.put("k1", StepResult(c, report))
    cache.put("k2", StepResult(c, report))
    (tmp_path / "k1"[:2] / "k1" / "corpus.parquet").unlink()  # report without corpus
    (tmp_path / "k2"[:2] / "k2" / "corpus.parquet").write_bytes(b"not parquet")
    assert cache.get("k1") is None and cache.get("k2") is None
    assert not (tmp_path / "k1"[:2] / "k1").exists()
    assert not (tmp_path / "k2"[:2] / "k2").exists()
    cache.put("k1", StepResult(c, report))
    assert cache.get("k1").corpus.equals(c)


def test_damaged_entry_in_a_pipeline_is_recomputed(tmp_path):
    cache = StepCache(tmp_path)
    steps = [CleanTransform(), SplitStep()]
    first = run_steps(corpus(), steps, RunContext(), cache=cache)
    for entry in tmp_path.glob("*/*/corpus.parquet"):
        entry.unlink()
    second = run_steps(corpus(), steps, RunContext(), cache=cache)
    assert [r.cached for r in second.reports] == [False, False]
    assert second.corpus.equals(first.corpus)
    third = run_steps(corpus(), steps, RunContext(), cache=cache)
    assert [r.cached for r in third.reports] == [True, True]


def test_put_keeps_an_entry_that_appeared_meanwhile(tmp_path):
    cache = StepCache(tmp_path)
    report = StepReport(step="s", kind="filter", n_in=2, n_out=2)
    theirs = from_records(["a", "b"], ["x", "y"])
    cache.put("k1", StepResult(theirs, report))
    cache.put("k1", StepResult(from_records(["c", "d"], ["x", "y"]), report))
    assert cache.get("k1").corpus.equals(theirs)
    assert [p.name for p in (tmp_path / "k1"[:2]).iterdir()] == ["k1"]  # no temp dirs left


WRITER = """
from assay import from_records
from assay.cache import StepCache
from assay.step import StepReport, StepResult


def write_entries(root, barrier, n, queue):
    cache = StepCache(root)
    c = from_records([f"t{i}" for i in range(20)], ["x", "y"] * 10)
    report = StepReport(step="s", kind="filter", n_in=c.height, n_out=c.height)
    barrier.wait()
    try:
        misses = 0
        for i in range(n):
            # few keys, many writes: both processes keep storing the same entries
            cache.put(f"key{i % 3}", StepResult(c, report))
            hit = cache.get(f"key{i % 3}")
            misses += hit is None or hit.corpus.height != 20
        queue.put(("ok", cache.enabled, misses))
    except BaseException as exc:
        queue.put(("error", repr(exc), None))
"""


@pytest.mark.slow
def test_two_processes_writing_the_same_entries_do_not_fail(tmp_path, monkeypatch):
    helper = tmp_path / "helper"
    helper.mkdir()
    name = f"cache_writer_{uuid.uuid4().hex[:8]}"
    (helper / f"{name}.py").write_text(textwrap.dedent(WRITER))
    monkeypatch.syspath_prepend(str(helper))
    writer = importlib.import_module(name)
    ctx = multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    root = tmp_path / "cache"
    procs = [
        ctx.Process(target=writer.write_entries, args=(str(root), barrier, 200, queue))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    outcomes = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert outcomes == [("ok", True, 0), ("ok", True, 0)]
    cache = StepCache(root)
    assert sorted(e.key for e in cache.entries()) == ["key0", "key1", "key2"]
    assert all(cache.get(f"key{i}").corpus.height == 20 for i in range(3))
    assert not list(root.glob("*/.*"))  # the losing writer cleaned up


def test_unwritable_cache_root_warns_once_and_runs_uncached(tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cache = StepCache(blocker / "cache")
    with caplog.at_level(logging.WARNING, logger="assay.cache"):
        result = run_steps(corpus(), [CleanTransform(), SplitStep()], RunContext(), cache=cache)
    assert result.corpus.height == corpus().height
    warnings = [r for r in caplog.records if "cannot write the step cache" in r.getMessage()]
    assert len(warnings) == 1
    assert "ASSAY_CACHE_DIR" in warnings[0].getMessage()
    assert not cache.enabled


def test_info_and_prune_by_age(tmp_path):
    cache = StepCache(tmp_path)
    c = from_records(["a", "b"], ["x", "y"])
    report = StepReport(step="s", kind="filter", n_in=2, n_out=2)
    for key in ("old1", "old2", "new1"):
        cache.put(key, StepResult(c, report))
    month_ago = time.time() - 31 * 86400
    for key in ("old1", "old2"):
        os.utime(tmp_path / key[:2] / key / "report.json", (month_ago, month_ago))
    info = cache.info()
    assert info.entries == 3 and info.size > 0
    assert info.to_dict()["oldest_age_s"] > 30 * 86400 > info.to_dict()["newest_age_s"]
    crashed = tmp_path / "ol" / ".old3.half-written"  # a writer died before its rename
    crashed.mkdir()
    (crashed / "corpus.parquet").write_bytes(b"x" * 10)
    os.utime(crashed, (month_ago, month_ago))
    pruned = cache.prune(timedelta(days=30))
    assert pruned.removed == 2 and pruned.freed > 0
    assert not crashed.exists()
    assert [e.key for e in cache.entries()] == ["new1"]
    assert cache.prune(everything=True).removed == 1
    assert cache.info().entries == 0
    with pytest.raises(InputError):
        cache.prune()


def test_a_hit_counts_as_a_use_for_pruning(tmp_path):
    cache = StepCache(tmp_path)
    report = StepReport(step="s", kind="filter", n_in=2, n_out=2)
    cache.put("k1", StepResult(from_records(["a", "b"], ["x", "y"]), report))
    month_ago = time.time() - 31 * 86400
    os.utime(tmp_path / "k1" / "k1" / "report.json", (month_ago, month_ago))
    assert cache.get("k1") is not None
    assert cache.prune(timedelta(days=30)).removed == 0


@pytest.mark.parametrize(
    ("text", "seconds"), [("12h", 43200), ("30d", 2592000), ("2w", 1209600), ("90s", 90)]
)
def test_parse_duration(text, seconds):
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["12", "thirty days", "3y", ""])
def test_parse_duration_rejects_what_it_cannot_read(text):
    with pytest.raises(InputError, match="12h, 30d or 2w"):
        parse_duration(text)


def test_step_key_changes_with_position_params_and_seed():
    s = SplitStep()
    assert step_key("in", s, 0, 0) == step_key("in", SplitStep(), 0, 0)
    assert step_key("in", s, 0, 0) != step_key("in", s, 0, 1)
    assert step_key("in", s, 0, 0) != step_key("in", s, 1, 0)
    assert step_key("in", s, 0, 0) != step_key("in", SplitStep(dev=0.2), 0, 0)
    assert step_key("in", s, 0, 0) != step_key("other", s, 0, 0)
