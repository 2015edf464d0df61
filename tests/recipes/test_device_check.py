"""The device check's dry run: prepare, run and report on CPU with a tiny model, through the
same script and wheel that travel to a GPU machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_device_check_dry_run_prepares_runs_and_reports():
    env = {**os.environ, "PY": sys.executable}
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "device_check.sh"), "dry-run"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "bytes_that_travel" in out
    assert "4 of 4 cells" not in out  # the report found every cell the run trained
    assert "dry run: 4 arms, 3 targets" in out
    assert "examples_per_s_10_seeds_vs_fastest_trainer_run" in out
