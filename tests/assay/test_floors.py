"""Imports point down the floors: kernel <- train <- curate <- augment, audits <- recipes."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDER = {"assay": "assay", "curate": "curate", "augment": "augment", "train": "train",
          "audits": "audits", "recipes": "recipes"}  # fmt: skip
ALLOWED = {
    "assay": {"assay"},
    "train": {"assay", "train"},
    "curate": {"assay", "train", "curate"},
    "augment": {"assay", "train", "curate", "augment"},
    "audits": {"assay", "train", "curate", "audits"},
    "recipes": {"assay", "train", "curate", "augment", "audits", "recipes"},
}


def floor_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "assay":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED and parts[1] != "assay" else "assay"


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_every_import_points_down_the_floors():
    wrong = []
    for folder, floor in FOLDER.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            for module in imported_modules(path):
                target = floor_of(module)
                if target is not None and target not in ALLOWED[floor]:
                    wrong.append(f"{path.relative_to(ROOT)} imports {module} ({target})")
    assert not wrong, "imports that point up a floor:\n" + "\n".join(sorted(set(wrong)))
