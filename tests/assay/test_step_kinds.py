"""Every registered step keeps the step contract (docs/architecture.md, "Steps").

- Its kind is its base class (Edit, Filter, Transform, Augmenter, Audit, Sync): it
  implements that kind's hook and no other kind's, and the `kind` it reports is the base's.
  One exception: an Edit whose changes come from a service (the Label Studio pulls) reports
  `sync` and is never cached.
- It overrides neither `apply` nor a private method of `Step` or of its kind, so the base
  turns its answer into `Changes` and the books apply them: an Audit or a Sync cannot drop,
  add or rewrite a row, whatever folder it lives in.
- The folder says the floor, not the kind: audits/ holds audits and `leakage` (an Edit that
  drops train rows leaking into dev/test), and the one audit outside audits/ is
  `domain_terms` (augment/term_mining.py: it mines the terms `domain_vocab` uses).
"""

from __future__ import annotations

import polars as pl
import pytest

from assay import from_records, registry
from assay.context import RunContext
from assay.recipes.catalog import load_steps
from assay.recipes.runner import run_steps
from assay.step import Audit, Augmenter, Edit, Filter, Step, Sync, Transform

HOOKS = {Edit: "edit", Filter: "keep", Transform: "rewrite", Augmenter: "generate",
         Audit: "score", Sync: "send"}  # fmt: skip
KERNEL_CLASSES = (Step, *HOOKS)
# What a step may not override: the kernel's private methods and the entry point that
# runs the hook and the books.
SEALED = {
    name
    for klass in KERNEL_CLASSES
    for name in vars(klass)
    if name.startswith("_") and not name.startswith("__")
} | {"apply"}
# An Edit that takes its changes from a service reports the kind `sync`.
EDIT_FROM_A_SERVICE = "sync"
# The steps whose folder does not say their kind, as docs/architecture.md names them.
EDIT_IN_AUDITS = {"leakage"}
AUDIT_OUTSIDE_AUDITS = {"domain_terms"}


def registered() -> dict[str, type[Step]]:
    """The package's steps; steps other tests register for themselves are not its own."""
    load_steps()
    steps = {name: registry.get(name) for name in registry.names()}
    return {name: cls for name, cls in steps.items() if cls.__module__.startswith("assay.")}


def kind_base(cls: type[Step]) -> type[Step]:
    bases = [base for base in HOOKS if issubclass(cls, base)]
    assert len(bases) == 1, f"{cls.__name__} derives from {bases}: one kind per step"
    return bases[0]


def folder(cls: type[Step]) -> str:
    return cls.__module__.split(".")[1]


def test_the_private_methods_of_step_are_known():
    # If the kernel renames its internals, SEALED follows; this guards the walk itself.
    assert {"_run", "_changes", "_local_changes", "apply"} <= SEALED


def test_no_registered_step_overrides_apply_or_a_private_method_of_step():
    offenders = [
        f"{name}: {klass.__module__}.{klass.__qualname__}.{attr}"
        for name, cls in registered().items()
        for klass in cls.__mro__
        if klass not in KERNEL_CLASSES and klass is not object
        for attr in SEALED & set(vars(klass))
    ]
    assert offenders == [], "steps must answer through their hook only"


def test_every_registered_step_implements_the_hook_of_its_kind_and_no_other():
    wrong = []
    for name, cls in registered().items():
        base = kind_base(cls)
        hook = HOOKS[base]
        if getattr(cls, hook) is getattr(base, hook):
            wrong.append(f"{name}: a {base.__name__} that does not implement {hook}")
        for other, other_hook in HOOKS.items():
            if other is not base and not hasattr(base, other_hook) and hasattr(cls, other_hook):
                wrong.append(f"{name}: a {base.__name__} with {other.__name__}'s hook {other_hook}")
    assert wrong == []


def test_every_registered_step_reports_the_kind_of_its_base():
    wrong = {}
    for name, cls in registered().items():
        base = kind_base(cls)
        from_a_service = base is Edit and cls.kind == EDIT_FROM_A_SERVICE and not cls.cacheable
        if cls.kind != base.kind and not from_a_service:
            wrong[name] = (cls.kind, base.__name__)
    assert wrong == {}
    reporting_sync = {
        n for n, c in registered().items() if c.kind == "sync" and kind_base(c) is Edit
    }
    assert reporting_sync == {"labelstudio_pull", "labelstudio_review_pull"}


def test_the_folder_says_the_floor_and_the_documented_exceptions_are_the_only_ones():
    steps = registered()
    assert {n for n, c in steps.items() if folder(c) == "audits" and kind_base(c) is not Audit} == (
        EDIT_IN_AUDITS
    )
    assert all(kind_base(steps[n]) is Edit for n in EDIT_IN_AUDITS)
    assert {n for n, c in steps.items() if kind_base(c) is Audit and folder(c) != "audits"} == (
        AUDIT_OUTSIDE_AUDITS
    )
    assert {folder(c) for c in steps.values() if kind_base(c) is Augmenter} == {"augment"}


def planted_corpus() -> pl.DataFrame:
    pos = [f"a wonderful great film about the sea number {i}" for i in range(12)]
    neg = [f"an awful boring film about the town number {i}" for i in range(12)]
    return from_records(
        [*pos, *neg, "x", "a wonderful great film about the sea number 0"],
        ["pos"] * 12 + ["neg"] * 12 + ["pos", "neg"],
        ids=[f"p{i}" for i in range(12)] + [f"n{i}" for i in range(12)] + ["short", "twin"],
        split=(["train"] * 8 + ["test"] * 4) * 2 + ["train", "train"],
    )


@pytest.mark.parametrize("name", ["quality", "domain_terms"])
def test_an_audit_keeps_every_row_and_field_even_outside_audits(name):
    corpus = planted_corpus()
    step = registry.get(name)(min_count=2) if name == "domain_terms" else registry.get(name)()
    out = run_steps(corpus, [step], RunContext(seed=7))
    core = ["id", "text", "label", "split", "weight", "lang", "origin", "parent_id", "group"]
    assert out.corpus.select(core).sort("id").equals(corpus.select(core).sort("id"))
    assert out.dropped is None or out.dropped.height == 0
    assert out.lineage is None or out.lineage.height == 0
    extra = set(out.corpus.columns) - set(corpus.columns)
    assert all(c.startswith(f"{name}__") for c in extra), extra
