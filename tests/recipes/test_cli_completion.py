"""Shell completion of `assay`: commands, step names and dataset names, through click's
completion protocol (the `_ASSAY_COMPLETE` environment variable), without heavy imports."""

from __future__ import annotations

import json
import subprocess
import sys

from click.shell_completion import ShellComplete
from click.testing import CliRunner

from assay.recipes.cli import main


def _candidates(args: list[str], incomplete: str) -> list[str]:
    complete = ShellComplete(main, {}, "assay", "_ASSAY_COMPLETE")
    return [item.value for item in complete.get_completions(args, incomplete)]


def test_step_names_complete_from_the_registry():
    assert _candidates(["steps", "show"], "syn") == ["synonyms"]
    assert _candidates(["steps", "show"], "labelstudio_re") == [
        "labelstudio_review",
        "labelstudio_review_pull",
    ]
    everything = _candidates(["steps", "show"], "")
    assert {"clean", "split", "dedup", "back_translation"} <= set(everything)
    assert everything == sorted(everything)
    assert _candidates(["steps", "show"], "nothing_like_it") == []


def test_dataset_names_complete_from_the_data_command():
    from assay.curate.datasets import DATASETS

    assert _candidates(["data", "get"], "vader-m") == ["vader-movies"]
    assert _candidates(["data", "get"], "vader-") == ["vader-amazon", "vader-movies",
                                                      "vader-nyt", "vader-tweets"]  # fmt: skip
    assert _candidates(["data", "get"], "") == sorted(DATASETS)


def test_bash_completion_through_the_environment():
    env = {
        "_ASSAY_COMPLETE": "bash_complete",
        "COMP_WORDS": "assay steps show syn",
        "COMP_CWORD": "3",
    }
    result = CliRunner().invoke(main, [], prog_name="assay", env=env)
    assert result.exit_code == 0
    assert result.output.splitlines() == ["plain,synonyms"]
    env = {"_ASSAY_COMPLETE": "bash_complete", "COMP_WORDS": "assay da", "COMP_CWORD": "1"}
    result = CliRunner().invoke(main, [], prog_name="assay", env=env)
    assert result.output.splitlines() == ["plain,data"]


def test_the_completion_scripts_name_the_program():
    for shell in ("bash", "zsh", "fish"):
        env = {"_ASSAY_COMPLETE": f"{shell}_source"}
        result = CliRunner().invoke(main, [], prog_name="assay", env=env)
        assert result.exit_code == 0 and "_ASSAY_COMPLETE" in result.output, shell


HEAVY = ("torch", "transformers", "sklearn", "sentence_transformers", "ray", "datasets")
PROBE = f"""
import json, os, sys
from assay.recipes.cli import main
for words, cword in (("assay steps show syn", "3"), ("assay data get vader-m", "3")):
    os.environ.update(_ASSAY_COMPLETE="bash_complete", COMP_WORDS=words, COMP_CWORD=cword)
    try:
        main(prog_name="assay")
    except SystemExit:
        pass
print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))
"""


def test_completion_imports_no_heavy_library():
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    ).stdout.splitlines()
    assert out[:2] == ["plain,synonyms", "plain,vader-movies"]
    assert json.loads(out[-1]) == []
