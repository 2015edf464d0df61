"""The `ablation:` section of a recipe: a baseline pipeline, variants, seeds, model, budget.

    ablation:
      model: fast                 # or an encoder: minilm, a HF id or a path
      seeds: 3
      train_rows: 500             # optional: keep this many train rows (stratified), drawn
                                  # per seed; a list ([100, 500, 2000]) gives a learning curve
      resample_train: per_seed    # or once: one draw shared by every seed
      p_test: bootstrap           # or permutation (both test the headline metric)
      fast_regularisation: fixed  # or scale_c: C x baseline rows / arm rows (fast model)
      baseline_until: model_audit # optional: the arms stop after this recipe step
      baseline: []                # steps after the recipe's steps, shared by every arm
      variants:
        - name: eda
          add: [{eda: {n_per_row: 4}}]
          controls: [duplicate]   # a twin arm that duplicates the parents instead
        - name: no-clean
          remove: [clean]
        - name: strict-dedup
          set: {dedup: {threshold: 0.7}}
      budget: {steps: 300}        # or {epochs: 2}; the same for every arm

The recipe's own steps prepare the data once (they run with the recipe seed, so splits do
not move between seeds); the train subsample is drawn per seed (shared by every arm of
that seed), and `baseline` and variant steps run once per seed on it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
    model_validator,
)

from assay.recipes.tracking import TrackingSpec

BASELINE = "baseline"


def _parse_steps(value: Any, where: str) -> list[Any]:
    from assay.recipes.schema import parse_step

    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{where} must be a list of {{step_name: {{params}}}} mappings")
    return [parse_step(item, f"{where}[{i}]") for i, item in enumerate(value)]


def _dump_steps(steps: list[Any]) -> list[dict[str, Any]]:
    return [s.to_yaml() for s in steps]


class Budget(BaseModel):
    """Training budget shared by every arm: epochs, or a fixed number of optimiser steps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: float | None = Field(None, gt=0, description="passes over each arm's training rows")
    steps: int | None = Field(
        None, ge=1, description="optimiser steps for every arm, whatever its size"
    )

    @model_validator(mode="after")
    def _one(self) -> Budget:
        if self.epochs is not None and self.steps is not None:
            raise ValueError("set budget.epochs or budget.steps, not both")
        return self


class VariantSpec(BaseModel):
    """One arm: the baseline pipeline with steps added, removed or re-configured."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    name: str = Field(description="short name shown in the report")
    description: str | None = None
    add: list[Any] = Field(default_factory=list, description="steps appended to the pipeline")
    after: str | None = Field(
        None, description="insert the added steps after this step instead of at the end"
    )
    remove: list[str] = Field(default_factory=list, description="names of steps to leave out")
    set: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="{step_name: {param: value}} overrides"
    )
    controls: list[Literal["duplicate"]] = Field(
        default_factory=list,
        description="duplicate: a size-matched twin that repeats each generated row's parent",
    )

    @field_validator("add", mode="before")
    @classmethod
    def _add(cls, value: Any) -> list[Any]:
        return _parse_steps(value, "add")

    @field_serializer("add")
    def _dump_add(self, steps: list[Any]) -> list[dict[str, Any]]:
        return _dump_steps(steps)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a variant needs a non-empty name")
        if value == BASELINE:
            raise ValueError(f"{BASELINE!r} is the reference arm; give the variant another name")
        return value

    @field_validator("set")
    @classmethod
    def _set(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        from assay import registry
        from assay.recipes.catalog import load_steps

        load_steps()
        for step, params in value.items():
            if step not in registry.names():
                raise ValueError(
                    f"set: unknown step {step!r}{registry.suggest(step, registry.names())}"
                )
            fields = registry.get(step).Config.known_keys()
            for key in params:
                if key not in fields:
                    hint = registry.suggest(key, fields)
                    raise ValueError(f"set.{step}: unknown key {key!r}{hint}")
        return value

    @model_validator(mode="after")
    def _changes(self) -> VariantSpec:
        if not (self.add or self.remove or self.set):
            raise ValueError(f"variant {self.name!r} changes nothing: give it add, remove or set")
        if self.controls and not self.add:
            raise ValueError(
                f"variant {self.name!r}: a duplicate control needs added steps that add rows"
            )
        return self


class AblationSpec(BaseModel):
    """What `assay ablate` compares, on which model, over which seeds."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    model: str = Field(
        "fast",
        description="fast (TF-IDF + logistic regression), probe (MiniLM embeddings + logistic "
        "regression) or an encoder",
    )
    model_options: dict[str, Any] = Field(
        default_factory=dict,
        description="options of the fast model, the probe or the fine-tune loop",
    )
    seeds: int | list[int] = Field(3, description="number of seeds (0..k-1) or explicit seeds")
    metric: Literal["macro_f1", "accuracy"] = Field("macro_f1", description="headline metric")
    eval_split: Literal["test", "dev"] = Field("test", description="split the report is on")
    train_rows: int | list[int] | None = Field(
        None,
        description="keep this many train rows (stratified by label) before variants; a list "
        "runs every arm at each size (a learning curve)",
    )
    resample_train: Literal["per_seed", "once"] = Field(
        "per_seed",
        description="per_seed: each seed draws its own train rows, so the CI covers which rows "
        "were labelled; once: one draw (recipe seed) for every seed",
    )
    p_test: Literal["bootstrap", "permutation"] = Field(
        "bootstrap",
        description="bootstrap: from the CI's resamples over examples and seeds; permutation: "
        "swap the arms' predictions per example and seed (test-example noise only)",
    )
    fast_regularisation: Literal["fixed", "scale_c"] = Field(
        "fixed",
        description="fixed: the same C in every arm; scale_c: C x baseline rows / arm rows "
        "(by weight), so repeating rows does not weaken the regularisation of the fast "
        "model or the probe",
    )
    baseline_until: str | None = Field(
        None,
        description="the arms run the recipe's steps up to and including this one; the later "
        "steps (say the pipeline's balance and augmentation) are left to the variants to measure",
    )
    baseline: list[Any] = Field(
        default_factory=list, description="steps after the recipe's steps, in every arm"
    )
    variants: list[VariantSpec] = Field(min_length=1)
    budget: Budget = Field(default_factory=Budget)
    bootstrap: int = Field(1000, ge=100, description="bootstrap resamples for the CIs")
    permutations: int = Field(10_000, ge=100, description="permutations for the paired test")
    alpha: float = Field(0.05, gt=0, lt=1, description="significance level (CI is 1 - alpha)")
    vary_pipeline_seed: bool = Field(
        True, description="rerun random steps (augmentation) with each seed, not only training"
    )
    tracking: TrackingSpec | None = Field(
        None, description="experiment trackers that receive the finished ablation (mlflow)"
    )

    @field_validator("baseline", mode="before")
    @classmethod
    def _baseline(cls, value: Any) -> list[Any]:
        return _parse_steps(value, "baseline")

    @field_serializer("baseline")
    def _dump_baseline(self, steps: list[Any]) -> list[dict[str, Any]]:
        return _dump_steps(steps)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value: int | list[int]) -> int | list[int]:
        if isinstance(value, int) and value < 1:
            raise ValueError("seeds must be at least 1")
        if isinstance(value, list) and (not value or len(set(value)) != len(value)):
            raise ValueError(f"seeds must be distinct and non-empty, got {value}")
        return value

    @field_validator("train_rows")
    @classmethod
    def _train_rows(cls, value: int | list[int] | None) -> int | list[int] | None:
        sizes = [value] if isinstance(value, int) else value or []
        if any(n < 2 for n in sizes) or (isinstance(value, list) and not value):
            raise ValueError(
                f"train_rows must be at least 2 (or a list of such sizes), got {value}"
            )
        if len(set(sizes)) != len(sizes):
            raise ValueError(f"train_rows sizes must be distinct, got {value}")
        return value

    @model_validator(mode="after")
    def _unique(self) -> AblationSpec:
        names = [v.name for v in self.variants]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"variant names must be unique; repeated: {dup}")
        return self

    @property
    def train_sizes(self) -> list[int | None]:
        """The train-row caps to run, ascending ([None] when the train split is kept whole)."""
        if self.train_rows is None:
            return [None]
        return sorted([self.train_rows] if isinstance(self.train_rows, int) else self.train_rows)

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)
