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
    "from_records",
    "register",
    "validate",
]
