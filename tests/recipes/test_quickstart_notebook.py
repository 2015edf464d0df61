"""docs/quickstart.ipynb runs from top to bottom on real data, in a fresh kernel and an
empty working folder, and is stored without outputs."""

from __future__ import annotations

import time
from pathlib import Path

import ipykernel  # noqa: F401  (the kernel nbclient starts)
import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "docs" / "quickstart.ipynb"


def _text(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        parts.append(output.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def test_the_notebook_is_stored_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert len(code) >= 8
    assert all(c.outputs == [] and c.execution_count is None for c in code)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_notebook_runs_on_real_data(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_SHARED_DATA", str(shared_data))  # the kernel inherits it
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    started = time.perf_counter()
    client.execute()  # a cell error raises CellExecutionError, with the cell and traceback
    seconds = time.perf_counter() - started
    outputs = "\n".join(_text(c) for c in notebook.cells if c.cell_type == "code")
    assert "10,662 sentences read; 400 kept for this notebook" in outputs
    assert "rows: 400 read ->" in outputs and "clean too_short" in outputs
    assert "+synonyms [duplicate control]" in outputs
    assert "['label_noise__is_issue', 'label_noise__score', 'label_noise__suggested']" in outputs
    assert "same corpus: True" in outputs and "same ablation: True" in outputs
    run = tmp_path / "runs" / "notebook"
    assert {"corpus.parquet", "dropped.parquet", "lineage.parquet", "manifest.json"} <= {
        p.name for p in run.iterdir()
    }
    assert (run / "ablation.json").is_file() and (run / "report.html").is_file()
    assert seconds < 300, f"the notebook took {seconds:.0f} s"
