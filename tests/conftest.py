from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ASSAY_SHARED_DATA", REPO.parent / "shared" / "data"))


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
