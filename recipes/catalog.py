"""Where the built-in steps live. Importing a module registers its steps.

Third-party packages add steps through the `assay.steps` entry-point group (each entry
point names a module to import).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

BUILTIN_STEP_MODULES = [
    "assay.curate.clean",
    "assay.curate.split",
    "assay.curate.dedup",
    "assay.curate.label_noise",
    "assay.curate.balance",
    "assay.augment.eda",
    "assay.augment.shuffle",
    "assay.augment.noise",
    "assay.augment.domain_vocab",
    "assay.augment.term_mining",
    "assay.augment.back_translation",
    "assay.augment.generate",
    "assay.augment.translate_train",
    "assay.curate.labelstudio.steps",
    "assay.audits.leakage",
    "assay.audits.quality",
    "assay.audits.model_audit",
]

_loaded = False


def load_steps() -> None:
    """Import every built-in step module and plugin once."""
    global _loaded
    if _loaded:
        return
    for module in BUILTIN_STEP_MODULES:
        importlib.import_module(module)
    for ep in entry_points(group="assay.steps"):
        importlib.import_module(ep.value)
    _loaded = True
