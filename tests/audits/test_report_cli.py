from __future__ import annotations

import polars as pl
from click.testing import CliRunner

from assay.recipes.cli import main
from assay.recipes.runner import run_recipe


def _run(tmp_path):
    source = tmp_path / "data.csv"
    pl.DataFrame(
        {"text": [f"sentence number {i} about things" for i in range(30)] + ["same text"] * 2,
         "label": ["a", "b"] * 16}
    ).write_csv(source)  # fmt: skip
    recipe = {
        "name": "cli",
        "seed": 1,
        "input": {"source": str(source), "labels": ["a", "b"]},
        "steps": ["dedup", {"split": {"dev": 0.2, "test": 0.2}}],
        "cache": False,
    }
    return run_recipe(recipe, tmp_path / "run").run_dir.path


def test_report_command_rebuilds_both_files_and_prints_their_paths(tmp_path):
    run = _run(tmp_path)
    (run / "report.html").unlink()
    (run / "report.md").unlink()
    result = CliRunner().invoke(main, ["report", str(run)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [str(run / "report.html"), str(run / "report.md")]
    assert "<h2>Duplicates</h2>" in (run / "report.html").read_text()
    assert "## Duplicates" in (run / "report.md").read_text()


def test_report_command_says_what_a_run_folder_holds_when_given_another(tmp_path):
    result = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert result.exit_code == 2  # bad input
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "manifest.json" in lines[0] and "ablation.json" in lines[0]
    assert "Traceback" not in result.output
