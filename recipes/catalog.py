"""Where the built-in steps live. Importing a module registers its steps.

The built-in step modules are found, not listed: every module of the library whose source
holds a `@register(` decorator at the start of a line. The files are read as text (a few
milliseconds), so finding them imports nothing; `load_steps` then imports them in sorted
order. Third-party packages add steps through the `assay.steps` entry-point group (each
entry point names a module to import).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from importlib.metadata import entry_points
from pathlib import Path

# The library's top-level packages; their subpackages are found by walking their folders.
LIBRARY_PACKAGES = (
    "assay",
    "assay.curate",
    "assay.augment",
    "assay.train",
    "assay.audits",
    "assay.recipes",
)
DECORATOR = b"@register("

_loaded = False


def _modules_under(package: str, folder: Path) -> dict[str, Path]:
    """Every module of `package` (in `folder`) and of its subpackages, by dotted name."""
    found: dict[str, Path] = {}
    for path in sorted(folder.glob("*.py")):
        name = package if path.stem == "__init__" else f"{package}.{path.stem}"
        found[name] = path
    for sub in sorted(folder.iterdir()):
        if sub.is_dir() and (sub / "__init__.py").is_file():
            found.update(_modules_under(f"{package}.{sub.name}", sub))
    return found


@functools.cache
def builtin_step_modules() -> tuple[str, ...]:
    """The library's modules that register steps, sorted by name."""
    modules: dict[str, Path] = {}
    for package in LIBRARY_PACKAGES:
        spec = importlib.util.find_spec(package)
        for location in (spec.submodule_search_locations or []) if spec else []:
            modules.update(_modules_under(package, Path(location)))
    return tuple(sorted(name for name, path in modules.items() if _registers(path.read_bytes())))


def _registers(source: bytes) -> bool:
    # A decorator at the start of a line: a plain search, several times faster than a regex.
    return source.startswith(DECORATOR) or b"\n" + DECORATOR in source


def __getattr__(name: str) -> list[str]:
    # The list the catalog used to keep by hand, computed when first asked for.
    if name == "BUILTIN_STEP_MODULES":
        return list(builtin_step_modules())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_steps() -> None:
    """Import every built-in step module and plugin once."""
    global _loaded
    if _loaded:
        return
    for module in builtin_step_modules():
        importlib.import_module(module)
    for ep in entry_points(group="assay.steps"):
        importlib.import_module(ep.value)
    _loaded = True
