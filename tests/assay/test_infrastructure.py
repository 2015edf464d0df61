from __future__ import annotations

import json
import subprocess
import sys

import polars as pl
import pytest

from assay import atomic, from_records
from assay.cache import StepCache
from assay.hashing import frame_hash
from assay.step import StepReport, StepResult


def test_atomic_write_keeps_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "out.json"
    atomic.write_json(target, {"v": 1})
    with pytest.raises(RuntimeError), atomic.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_cache_round_trip_and_miss(tmp_path):
    cache = StepCache(tmp_path)
    c = from_records(["a", "b"], ["x", "y"])
    report = StepReport(step="s", kind="filter", n_in=2, n_out=2)
    cache.put("k1", StepResult(c, report))
    hit = cache.get("k1")
    assert hit is not None and hit.report.cached and hit.corpus.equals(c)
    assert cache.get("k2") is None
    assert StepCache(tmp_path, enabled=False).get("k1") is None


def test_frame_hash_sees_content_and_order():
    c = from_records(["a", "b"], ["x", "y"])
    assert frame_hash(c) == frame_hash(c.clone())
    assert frame_hash(c) != frame_hash(c.reverse())
    assert frame_hash(c) != frame_hash(c.with_columns(pl.lit("z").alias("label")))


@pytest.mark.parametrize(
    "module",
    ["assay", "assay.curate", "assay.curate.io", "assay.curate.clean", "assay.recipes.cli"],
)
def test_light_imports_load_no_heavy_libraries(module):
    code = (
        f"import sys, {module}; "
        "heavy = [m for m in ('torch', 'transformers', 'ray', 'label_studio_sdk', 'sklearn', 'datasets') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


@pytest.mark.slow
def test_every_registered_step_has_docstring_and_config_schema():
    from assay import registry
    from assay.recipes.catalog import load_steps

    load_steps()
    assert {"clean", "split"} <= set(registry.names())
    for name in registry.names():
        info = registry.describe(name)
        assert info["summary"], f"{name} has no docstring"
        assert info["config_schema"]["type"] == "object", name
        for key, prop in info["config_schema"].get("properties", {}).items():
            assert prop.get("description"), f"{name}.{key} has no description"
