"""The catalog finds every step module by itself, and the README's step table names every
step."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from assay import registry
from assay.recipes.catalog import BUILTIN_STEP_MODULES, builtin_step_modules, load_steps

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"assay": "assay", "curate": "assay.curate", "augment": "assay.augment",
            "train": "assay.train", "audits": "assay.audits",
            "recipes": "assay.recipes"}  # fmt: skip
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


def test_discovery_finds_exactly_the_modules_that_register_steps():
    assert set(builtin_step_modules()) == registering_modules()
    assert list(builtin_step_modules()) == sorted(builtin_step_modules())
    assert list(builtin_step_modules()) == BUILTIN_STEP_MODULES


def test_every_registered_step_comes_from_a_discovered_module():
    load_steps()
    discovered = set(builtin_step_modules())
    modules = {registry.get(n).__module__ for n in registry.names()}
    builtin = {m for m in modules if m.startswith("assay.")}
    assert builtin <= discovered, f"{sorted(builtin - discovered)} register steps unseen"
    assert discovered <= modules, f"{sorted(discovered - modules)} register no step"


def test_discovery_imports_no_step_module():
    code = (
        "import sys\n"
        "from assay.recipes.catalog import builtin_step_modules\n"
        "found = builtin_step_modules()\n"
        "assert found and not any(m in sys.modules for m in found), sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


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
    builtin = {n for n in registry.names() if registry.get(n).__module__ in builtin_step_modules()}
    missing = builtin - readme_step_names()
    assert not missing, f"steps {sorted(missing)} are missing from the README's step table"
    unknown = readme_step_names() - builtin
    assert not unknown, f"the README's step table names unregistered steps {sorted(unknown)}"
