"""assay: curate, augment and audit labelled text corpora, and measure every data change.

The kernel: corpus schema, step contract, registry, run context, run directory, cache,
resources and errors. It imports nothing heavy (no torch, transformers, ray or Label
Studio SDK) and changes no global state.
"""

from __future__ import annotations

__version__ = "0.1.0"

from assay.context import RunContext
from assay.corpus import from_records, validate
from assay.errors import (
    AssayError,
    InputError,
    MissingDependencyError,
    RecipeError,
    RemoteError,
    ResourceError,
    SchemaError,
    StepError,
)
from assay.registry import register
from assay.step import (
    Audit,
    Augmenter,
    AugmenterConfig,
    Changes,
    Edit,
    Filter,
    Findings,
    Keep,
    Step,
    StepConfig,
    StepReport,
    StepResult,
    Sync,
    Transform,
)

# The Python entry points live above the kernel (they read files, run recipes): they are
# imported on first use, so `import assay` stays light and the kernel imports no folder.
_ENTRY_POINTS = {
    "from_frame": "assay.curate.frames",
    "read": "assay.curate.frames",
    "run": "assay.recipes.api",
    "ablate": "assay.recipes.api",
}


def __getattr__(name: str):
    module = _ENTRY_POINTS.get(name)
    if module is None:
        raise AttributeError(f"module 'assay' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_ENTRY_POINTS})


__all__ = [
    "AssayError",
    "Audit",
    "Augmenter",
    "AugmenterConfig",
    "Changes",
    "Edit",
    "Filter",
    "Findings",
    "InputError",
    "Keep",
    "MissingDependencyError",
    "RecipeError",
    "RemoteError",
    "ResourceError",
    "RunContext",
    "SchemaError",
    "Step",
    "StepConfig",
    "StepError",
    "StepReport",
    "StepResult",
    "Sync",
    "Transform",
    "__version__",
    "ablate",
    "from_frame",
    "from_records",
    "read",
    "register",
    "run",
    "validate",
]
