"""The low-resource study's smoke version: one seed, 100 rows, both models, every arm."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from assay.recipes.schema import load_recipe

REPO = Path(__file__).resolve().parents[2]


def test_study_recipe_declares_every_variant_with_controls():
    recipe = load_recipe(REPO / "recipes" / "study-low-resource.yaml")
    spec = recipe.ablation
    assert spec.train_rows == [100, 500, 2000]
    augmenting = [v for v in spec.variants if v.controls]
    assert {v.name for v in augmenting} >= {"+eda", "+synonyms", "+back_translation", "+paraphrase"}


@pytest.mark.slow
@pytest.mark.integration
def test_study_smoke_runs_both_models_and_reports_proxy_agreement(shared_data):
    done = subprocess.run(
        [sys.executable, "study.py", "--smoke", "--json"],
        cwd=REPO / "bench",
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    cells = report["results"]["cells"]
    models = {c["model"] for c in cells}
    assert models == {"fast", "minilm"}
    arms = {c["arm"] for c in cells if c["model"] == "fast"}
    assert "baseline" in arms and "+eda [duplicate control]" in arms
    for cell in cells:
        score, low, high = cell["macro_f1"]
        assert 0 <= low <= score <= high <= 1
        assert cell["accuracy"][0] > 0
    agreement = report["results"]["proxy_agreement"]
    # Every non-baseline arm run with both models is one agreement cell.
    assert agreement["n"] == len(arms) - 1
    assert 0 <= agreement["agreement"] <= 1
