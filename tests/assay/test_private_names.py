"""No `_private` name is imported from a module of another top-level folder.

A leading underscore says "only this package relies on it": a name another folder needs is
a contract, so it gets a public name and a docstring (or the code moves). The library's
folders, `bench/`, `scripts/` and `tests/` each count as one folder; tests reach the library
through its public names. `from __future__ import ...` and dunder names (`__version__`)
are not private. The folders and import resolution are those of the floors check.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .test_floors import PACKAGE, ROOT, absolute, copy_python, floor_of, package_of, plant

# The folders whose files are checked: every floor, and the tests.
FOLDERS = (*PACKAGE, "tests")


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def folder_of_import(node: ast.ImportFrom, path: Path, root: Path) -> str | None:
    """The top-level folder of the module `node` imports from, or None outside the repo."""
    top = path.relative_to(root).parts[0]
    if node.level:
        if top == "tests":  # tests are no installed package: a relative import stays inside
            return "tests"
        module = absolute(package_of(path, root), node.level, node.module)
    else:
        module = node.module or ""
        if module.split(".")[0] == "tests":
            return "tests"
    return floor_of(module, root)


def private_imports(root: Path) -> list[str]:
    """`<file>:<line> imports <name> from <module> (<folder>/)` for every private name a
    file imports from a module of another top-level folder."""
    found = []
    for top in FOLDERS:
        for path in sorted((root / top).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.ImportFrom) or node.module == "__future__":
                    continue
                names = [a.name for a in node.names if is_private(a.name)]
                target = folder_of_import(node, path, root) if names else None
                if target is not None and target != top:
                    module = "." * node.level + (node.module or "")
                    found.extend(
                        f"{path.relative_to(root).as_posix()}:{node.lineno} imports {name} "
                        f"from {module} ({target}/)"
                        for name in names
                    )
    return found


@pytest.mark.slow
def test_no_module_imports_a_private_name_from_another_folder():
    wrong = private_imports(ROOT)
    assert not wrong, "private names imported across folders:\n" + "\n".join(wrong)


# -- the check catches what it should, on a planted copy of the tree ------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """The floored folders' and the tests' Python files, copied."""
    return copy_python(tmp_path, FOLDERS)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("folder", "code", "found"),
    [
        ("audits", "from assay.train.features import _token_hash",
         "imports _token_hash from assay.train.features (train/)"),
        ("curate", "from ..train.features import _MULT", "imports _MULT from ..train.features (train/)"),
        ("bench", "from assay.augment.tagger import _TEMPLATES",
         "imports _TEMPLATES from assay.augment.tagger (augment/)"),
        ("tests", "from assay.engine import _RAY_ENGINES", "imports _RAY_ENGINES from assay.engine (assay/)"),
        ("tests", "from assay.curate.datasets import VADER_ARCHIVE, _download_vader",
         "imports _download_vader from assay.curate.datasets (curate/)"),
    ],
)  # fmt: skip
def test_a_planted_private_import_fails_the_check_naming_the_file(tree, folder, code, found):
    where = plant(tree, folder, code)
    wrong = private_imports(tree)
    assert len(wrong) == 1 and wrong[0].startswith(f"{where}:"), wrong
    assert wrong[0].endswith(f" {found}"), wrong


@pytest.mark.slow
def test_private_names_within_a_folder_future_and_dunders_pass(tree):
    plant(tree, "curate", "from assay.curate.dedup_minhash import _band_hashes")
    plant(tree, "train", "from __future__ import annotations\nfrom assay import __version__")
    plant(tree, "tests", "from .assay.test_floors import _called")
    plant(tree, "bench", "from harness import _anything")
    assert private_imports(tree) == []
