"""assay: curate, augment and audit labelled text corpora, and measure every data change.

The kernel: corpus schema, step contract, registry, run context, run directory, cache,
resources and errors. It imports nothing heavy (no torch, transformers, ray or Label
Studio SDK) and changes no global state.
"""

from __future__ import annotations

__version__ = "0.1.0"

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

# Names imported on first use, so that `import assay` (and `import assay.train.stacked`
# on a machine that has torch but not polars) loads no data-frame library. The Python
# entry points live above the kernel (they read files, run recipes); the kernel imports
# no folder, and these five are the only names it hands out from above.
_ENTRY_POINTS = {
    "from_frame": "assay.curate.frames",
    "read": "assay.curate.frames",
    "run": "assay.recipes.api",
    "ablate": "assay.recipes.api",
    "load": "assay.recipes.api",
}
_KERNEL = {
    "RunContext": "assay.context",
    "from_records": "assay.corpus",
    "validate": "assay.corpus",
    "register": "assay.registry",
    **{
        name: "assay.step"
        for name in (
            "Audit", "Augmenter", "AugmenterConfig", "Changes", "Edit", "Filter", "Findings",
            "Keep", "Step", "StepConfig", "StepReport", "StepResult", "Sync", "Transform",
        )
    },
}  # fmt: skip


def __getattr__(name: str):
    module = _ENTRY_POINTS.get(name) or _KERNEL.get(name)
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
    "load",
    "read",
    "register",
    "run",
    "validate",
]
