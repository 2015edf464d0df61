"""Imports point down the floors (docs/architecture.md, "Floors").

kernel <- train <- curate <- augment, audits <- recipes <- bench, scripts. Every import
counts: `import` and `from ... import` (relative ones resolved against the importing file's
package), the string targets of `importlib.import_module`, `__import__` and the kernel's
`require`, and, in a module that imports by a name it looks up, every module name it holds
as a string (the kernel's table of lazy entry points, the report's table of renderers).
"""

from __future__ import annotations

import ast
import functools
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Folder at the repository root -> the package it installs as (pyproject's package-dir).
# bench/ and scripts/ are not installed: they run as scripts from a checkout.
PACKAGE = {"assay": "assay", "train": "assay.train", "curate": "assay.curate",
           "augment": "assay.augment", "audits": "assay.audits", "recipes": "assay.recipes",
           "bench": "bench", "scripts": "scripts"}  # fmt: skip
LIBRARY = ("assay", "train", "curate", "augment", "audits", "recipes")
# What each folder may import. bench/ and scripts/ sit above everything and may import any
# floor; the library never imports them.
ALLOWED = {
    "assay": {"assay"},
    "train": {"assay", "train"},
    "curate": {"assay", "train", "curate"},
    "augment": {"assay", "train", "curate", "augment"},
    "audits": {"assay", "train", "curate", "audits"},
    "recipes": {*LIBRARY},
    "bench": {*LIBRARY, "bench", "scripts"},
    "scripts": {*LIBRARY, "bench", "scripts"},
}
# The only imports allowed to point up. `assay.read`, `assay.from_frame`, `assay.run` and
# `assay.ablate` are the Python entry points; they read files and run recipes, so they live
# above the kernel, and `assay/__init__.py` (`_ENTRY_POINTS`) imports their modules on first
# use of the name, never when `import assay` runs. A new entry here needs the same reason.
LAZY_ENTRY_POINTS = {
    ("assay/__init__.py", "assay.curate.frames"),
    ("assay/__init__.py", "assay.recipes.api"),
}
# Functions that import the module named by their first argument.
IMPORTERS = {"import_module", "__import__", "require"}
MODULE_NAME = re.compile(r"^(assay|bench|scripts)(\.[A-Za-z_][A-Za-z0-9_]*)+$")
# Top-level folders with Python files that no floor holds: the tests may import anything.
UNFLOORED = {"tests", "build"}


def floor_of(module: str, root: Path) -> str | None:
    """The folder `module` lives in, or None for a module outside the repository."""
    parts = module.split(".")
    if parts[0] == "assay":
        folder = parts[1] if len(parts) > 1 else "assay"
        return folder if folder in LIBRARY else "assay"
    if parts[0] in ("bench", "scripts"):
        return parts[0]
    # bench/ and scripts/ put their own folder on sys.path: `from harness import target`.
    for folder in ("bench", "scripts"):
        if (root / folder / f"{parts[0]}.py").is_file():
            return folder
    return None


def package_of(path: Path, root: Path) -> str:
    """The package a file's relative imports start from (its folder, as installed)."""
    top, *inner = path.parent.relative_to(root).parts
    return ".".join([PACKAGE[top], *inner])


def absolute(package: str, level: int, module: str | None) -> str:
    """`from <level dots><module> import ...` seen from `package`, as an absolute name."""
    parts = package.split(".")
    if level > len(parts):
        return "." * level + (module or "")  # beyond the top package: not a module of ours
    base = parts[: len(parts) - level + 1]
    return ".".join([*base, module] if module else base)


def entry_points(root: Path) -> dict[str, str]:
    """The kernel's lazy names (`assay.run` ...) -> the module that defines each."""
    for node in ast.parse((root / "assay" / "__init__.py").read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "_ENTRY_POINTS" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    return {}


def _called(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def imported_modules(path: Path, root: Path) -> set[str]:
    """Every module `path` imports, as absolute names."""
    lazy = tuple(sorted(entry_points(root).items()))
    return set(_imports(path.read_text(encoding="utf-8"), package_of(path, root), lazy))


@functools.cache  # the planted copies repeat the tree's files: parse each text once
def _imports(source: str, package: str, lazy_items: tuple[tuple[str, str], ...]) -> frozenset[str]:
    tree = ast.parse(source)
    lazy = dict(lazy_items)
    found: set[str] = set()
    by_lookup = False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = absolute(package, node.level, node.module) if node.level else node.module
            if module:
                found.add(module)
                found.update(f"{module}.{alias.name}" for alias in node.names)
                if module == "assay":  # `from assay import run` imports assay.recipes.api
                    found.update(lazy[a.name] for a in node.names if a.name in lazy)
        elif isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == "assay" and node.attr in lazy:
                found.add(lazy[node.attr])  # `assay.run(...)`
        elif isinstance(node, ast.Call) and _called(node) in IMPORTERS and node.args:
            target = node.args[0]
            if isinstance(target, ast.Constant) and isinstance(target.value, str):
                found.add(target.value)
            else:
                by_lookup = True
    if by_lookup:
        # The name is looked up (a table, a parameter): every module name the file holds
        # may be imported.
        found.update(
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and MODULE_NAME.match(node.value)
        )
    return frozenset(found)


def upward_imports(root: Path) -> list[tuple[str, str, str]]:
    """(file, module, folder of the module) for every import that points up or sideways."""
    wrong = []
    for folder in PACKAGE:
        for path in sorted((root / folder).rglob("*.py")):
            for module in sorted(imported_modules(path, root)):
                target = floor_of(module, root)
                if target is not None and target not in ALLOWED[folder]:
                    wrong.append((path.relative_to(root).as_posix(), module, target))
    return wrong


def floor_violations(root: Path) -> list[str]:
    """The upward imports under `root` that the allow-list does not name, one line each."""
    return sorted(
        {
            f"{file} imports {module} ({target}/)"
            for file, module, target in upward_imports(root)
            if (file, module) not in LAZY_ENTRY_POINTS
        }
    )


@pytest.mark.slow
def test_every_import_points_down_the_floors():
    wrong = floor_violations(ROOT)
    assert not wrong, "imports that point up a floor:\n" + "\n".join(wrong)


def test_the_allow_list_names_exactly_the_kernels_lazy_entry_points():
    allowed = {(file, module) for file, module, _ in upward_imports(ROOT)} & LAZY_ENTRY_POINTS
    assert allowed == LAZY_ENTRY_POINTS, "stale allow-list entries: no longer imported"
    assert set(entry_points(ROOT).values()) == {module for _, module in LAZY_ENTRY_POINTS}


def test_every_folder_with_python_files_has_a_floor():
    folders = {
        path.relative_to(ROOT).parts[0]
        for path in ROOT.glob("*/**/*.py")
        if not path.relative_to(ROOT).parts[0].startswith(".")
    }
    unknown = folders - set(PACKAGE) - UNFLOORED - {f for f in folders if f.endswith(".egg-info")}
    assert not unknown, f"folders {sorted(unknown)} hold Python files but have no floor"


# -- the check catches what it should, on a planted copy of the tree ------------------------


def copy_python(root: Path, folders: Iterable[str]) -> Path:
    """The Python files of `folders` of the repository, copied under `root`."""

    def not_python(folder: str, names: list[str]) -> list[str]:
        return [n for n in names if n == "__pycache__" or (Path(folder, n).is_file() and not n.endswith(".py"))]  # fmt: skip

    for folder in folders:
        shutil.copytree(ROOT / folder, root / folder, ignore=not_python)
    return root


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """The floored folders' Python files, copied."""
    return copy_python(tmp_path, PACKAGE)


def plant(root: Path, folder: str, code: str) -> str:
    """Append `code` to the first module of `folder` (not `__init__.py`); its path."""
    path = next(p for p in sorted((root / folder).glob("*.py")) if p.name != "__init__.py")
    path.write_text(path.read_text(encoding="utf-8") + "\n" + code + "\n", encoding="utf-8")
    return path.relative_to(root).as_posix()


@pytest.mark.parametrize(
    ("folder", "code", "module"),
    [
        ("curate", "from ..recipes import runner", "assay.recipes.runner"),
        ("train", "from ..curate.dedup import DedupFilter", "assay.curate.dedup"),
        ("audits", "from .. import augment", "assay.augment"),
        ("assay", "from .curate import io", "assay.curate.io"),
        ("curate", 'importlib.import_module("assay.recipes.runner")', "assay.recipes.runner"),
        ("train", 'MODULES = {"eda": "assay.augment.eda"}\nimportlib.import_module(MODULES[k])',
         "assay.augment.eda"),
        ("assay", "from assay import run", "assay.recipes.api"),
        ("recipes", "from harness import target", "harness"),
        ("augment", "import bench.harness", "bench.harness"),
    ],
)  # fmt: skip
def test_a_planted_upward_import_fails_the_check_naming_the_file(tree, folder, code, module):
    where = plant(tree, folder, code)
    wrong = floor_violations(tree)
    assert wrong, f"{code!r} in {where} passed the check"
    assert all(line.startswith(f"{where} imports ") for line in wrong), wrong
    assert any(line.startswith(f"{where} imports {module} (") for line in wrong), wrong


def test_a_planted_downward_relative_import_passes(tree):
    plant(tree, "curate", "from ..train import metrics\nfrom . import dedup")
    plant(tree, "bench", "from assay.recipes import runner")
    assert floor_violations(tree) == []
