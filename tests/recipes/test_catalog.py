"""The catalog knows every step module, and the README's step table names every step."""

from __future__ import annotations

import re
from pathlib import Path

from assay import registry
from assay.recipes.catalog import BUILTIN_STEP_MODULES, load_steps

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"curate": "assay.curate", "augment": "assay.augment", "train": "assay.train",
            "audits": "assay.audits", "recipes": "assay.recipes"}  # fmt: skip
REGISTERS = re.compile(r"^@register\(", re.MULTILINE)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join([PACKAGES[parts[0]], *parts[1:]]).removesuffix(".__init__")


def registering_modules() -> set[str]:
    found = set()
    for folder in PACKAGES:
        for path in (ROOT / folder).rglob("*.py"):
            if REGISTERS.search(path.read_text(encoding="utf-8")):
                found.add(_module_name(path))
    return found


def test_every_module_that_registers_a_step_is_in_the_catalog():
    missing = registering_modules() - set(BUILTIN_STEP_MODULES)
    assert not missing, (
        f"{sorted(missing)} register steps but are missing from "
        "recipes/catalog.py BUILTIN_STEP_MODULES: recipes cannot use their steps"
    )


def test_catalog_lists_only_modules_that_register_steps():
    assert set(BUILTIN_STEP_MODULES) <= registering_modules()


def readme_step_names() -> set[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("## The steps", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in table.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`([a-z_]+)`", first_cell))
    return names


def test_every_registered_step_is_in_the_readme_step_table():
    load_steps()
    builtin = {n for n in registry.names() if registry.get(n).__module__ in BUILTIN_STEP_MODULES}
    missing = builtin - readme_step_names()
    assert not missing, f"steps {sorted(missing)} are missing from the README's step table"
    unknown = readme_step_names() - builtin
    assert not unknown, f"the README's step table names unregistered steps {sorted(unknown)}"
