"""Recipe schema: YAML validated against the step registry, with errors that point at the key.

A recipe:

    name: quickstart
    seed: 13
    input: {source: vader-movies, labels: [negative, positive]}
    steps:
      - clean: {min_chars: 3}
      - split: {dev: 0.1, test: 0.1}
    output: {formats: [parquet]}

Steps are a list of one-key mappings `{step_name: {params}}` (or a bare name for defaults).
Every problem becomes one `RecipeError` line naming the YAML path and, for typos, the key
that was probably meant.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from assay import registry
from assay.context import DEFAULT_SEED
from assay.curate.io import ReadOptions
from assay.errors import RecipeError, shorten
from assay.recipes.ablation_spec import AblationSpec
from assay.recipes.catalog import load_steps
from assay.recipes.tracking import TrackingSpec
from assay.step import StepConfig


class StepSpec(BaseModel):
    """One step of a recipe: a registered name and its validated Config."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    config: StepConfig

    def build(self):
        return registry.get(self.name)(self.config)

    def to_yaml(self) -> dict[str, Any]:
        return {self.name: self.config.model_dump(mode="json", exclude_defaults=True)}


class OutputSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    formats: list[Literal["parquet", "csv", "tsv", "jsonl", "hf"]] = Field(
        default_factory=list, description="extra copies of the corpus beside corpus.parquet"
    )
    report: bool = Field(True, description="render report.html")
    hf_all_columns: bool = Field(
        False, description="the hf copy keeps every corpus column, not only id, text and label"
    )


class RaySettings(BaseModel):
    """Where and how the Ray engine runs (`engine: {ray: {...}}`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str | None = Field(
        None, description="Ray cluster address (ray://host:10001 or auto); a local one if unset"
    )
    num_cpus: int | None = Field(
        None, ge=1, description="CPUs of the local cluster started when no address is given"
    )
    gpus_per_actor: float | None = Field(
        None,
        ge=0,
        description="GPUs per actor for steps that can use one (where the cluster has GPUs)",
    )
    batch_size: int | None = Field(
        None, ge=1, description="rows per batch handed to a step's row-local hook"
    )
    actors: int | None = Field(
        None, ge=1, description="actors per pool for steps that load a model (default: the CPUs)"
    )


class EngineSettings(BaseModel):
    """`engine: {ray: {...}}`: the Ray engine with settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ray: RaySettings = Field(default_factory=RaySettings)


class Recipe(BaseModel):
    """A declarative pipeline: input, steps, output, seed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("run", description="name of the run")
    description: str | None = None
    seed: int = Field(
        DEFAULT_SEED, ge=0, description="the one seed every step's randomness derives from"
    )
    input: ReadOptions
    steps: list[StepSpec] = Field(default_factory=list)
    output: OutputSpec = Field(default_factory=OutputSpec)
    engine: Literal["local", "ray"] | EngineSettings = Field(
        "local", description="where row-parallel work runs: local, ray, or {ray: {address: ...}}"
    )
    cache: bool = Field(
        True, description="reuse cached step outputs keyed by input, config and version"
    )
    protect_eval: bool = Field(
        True, description="fail if augmentation, reweighting or relabelling touches dev/test rows"
    )
    ablation: AblationSpec | None = Field(None, description="variants to compare (`assay ablate`)")
    tracking: TrackingSpec | None = Field(
        None, description="experiment trackers that receive the run and its ablation (MLflow)"
    )

    @property
    def engine_name(self) -> str:
        """ "local" or "ray"."""
        return self.engine if isinstance(self.engine, str) else "ray"

    @property
    def engine_options(self) -> dict[str, Any]:
        """The run context's options for the engine (`{"ray": settings}`)."""
        if isinstance(self.engine, EngineSettings):
            return {"ray": self.engine.ray.model_dump(exclude_none=True)}
        return {}

    @field_validator("steps", mode="before")
    @classmethod
    def _parse_steps(cls, value: Any) -> list[StepSpec]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise ValueError("steps must be a list of {step_name: {params}} mappings")
        return [parse_step(item, f"steps[{i}]") for i, item in enumerate(value)]


def parse_step(item: Any, where: str) -> StepSpec:
    """Turn `{name: params}` or `name` into a StepSpec; errors name the YAML path."""
    load_steps()
    if isinstance(item, StepSpec):
        return item
    if isinstance(item, str):
        name, params = item, {}
    elif isinstance(item, dict) and len(item) == 1:
        name, params = next(iter(item.items()))
        params = params or {}
    else:
        raise RecipeError(
            f"{where}: a step is one mapping {{step_name: {{params}}}}, got {shorten(item)}"
        )
    if not isinstance(name, str) or name not in registry.names():
        hint = registry.suggest(name, registry.names()) if isinstance(name, str) else ""
        raise RecipeError(f"{where}: unknown step {shorten(name)}{hint}")
    if not isinstance(params, dict):
        raise RecipeError(f"{where}.{name}: parameters must be a mapping, got {shorten(params)}")
    config_cls = registry.get(name).Config
    try:
        return StepSpec(name=name, config=config_cls(**params))
    except ValidationError as exc:
        # A per-method config is validated by the variant the params name: describe the
        # error against that variant, and say which methods a misplaced key belongs to.
        variant = config_cls.variant_for(params)
        raise RecipeError(_describe(exc, f"{where}.{name}", variant, config_cls)) from None


def _describe(
    exc: ValidationError,
    where: str,
    model: type[BaseModel],
    union: type[StepConfig] | None = None,
) -> str:
    errors = exc.errors()
    # A misspelt key also makes the key it meant "missing": name the misspelling.
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = [str(p) for p in err["loc"]]
    path = ".".join([where, *loc]) if where else ".".join(loc)
    if err["type"] == "extra_forbidden":
        key = loc[-1]
        owners = union.owners_of(key) if union is not None and len(loc) == 1 else []
        if owners:
            current = getattr(model, "model_fields", {}).get(union.variant_key)
            which = f" {union.variant_key}: {current.default}" if current is not None else ""
            return (
                f"{path}: unknown key {shorten(key)} for{which}; it is a key of "
                f"{union.variant_key}: {', '.join(owners)}"
            )
        fields = _fields_at(model, err["loc"][:-1])
        hint = registry.suggest(key, fields)
        more = f" (known keys: {', '.join(sorted(fields))})" if not hint and fields else ""
        return f"{path}: unknown key {shorten(key)}{hint}{more}"
    if err["type"] == "missing":
        return f"{path}: required key is missing"
    value = err.get("input")
    shown = f" (got {shorten(value)})" if not isinstance(value, dict) else ""
    hint = ""
    if err["type"] == "literal_error" and isinstance(value, str):
        choices = re.findall(r"'([^']*)'", str((err.get("ctx") or {}).get("expected", "")))
        hint = registry.suggest(value, choices)
    return f"{path}: {err['msg']}{shown}{hint}"


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the (nested) model at `loc`, for 'did you mean' hints."""
    current: Any = model
    for part in loc:
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        current = field.annotation
    return list(getattr(current, "model_fields", {}))


def load_recipe(source: str | os.PathLike[str] | dict[str, Any]) -> Recipe:
    """Read and validate a recipe from a YAML file (or an already parsed mapping)."""
    if isinstance(source, dict):
        data, where = source, "recipe"
    else:
        path = Path(source)
        if not path.exists():
            raise RecipeError(f"recipe {str(path)!r} does not exist")
        try:
            data = _safe_load(path.read_text(encoding="utf-8"), path)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise RecipeError(f"{path}: broken YAML{at}: {problem}") from None
        except UnicodeDecodeError:
            raise RecipeError(f"{path}: a recipe must be UTF-8 text") from None
        where = str(path)
        if isinstance(data, dict) and isinstance(data.get("input"), dict):
            data = _resolve_relative_source(data, path.parent)
    if not isinstance(data, dict):
        raise RecipeError(f"{where}: a recipe is a YAML mapping with at least an `input` key")
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        message = _describe(exc, "", Recipe)
    except RecipeError as exc:  # raised while parsing steps
        message = str(exc)
    except RecursionError:
        raise RecipeError(f"{where}: values are nested too deeply to be a recipe") from None
    try:
        line = None if isinstance(source, dict) else _line_of(Path(source), message.split(":")[0])
    except RecursionError:
        line = None
    raise RecipeError(f"{where}{f':{line}' if line else ''}: {message}")


# A recipe is small: a YAML file that expands (through aliases) to more values than this is
# an alias bomb, and one nested deeper than this is not a recipe.
MAX_NODES = 100_000
MAX_DEPTH = 100


def _safe_load(text: str, path: Path) -> Any:
    """`yaml.safe_load` that refuses alias bombs and deep nesting with one clear line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise RecipeError(f"{path}: values are nested too deeply to be a recipe") from None
    if node is None:
        return None
    size: dict[int, int] = {}
    # Iterative post-order walk: shared (aliased) nodes are counted once per use.
    stack: list[tuple[yaml.Node, int, bool]] = [(node, 0, False)]
    while stack:
        current, depth, done = stack.pop()
        if depth > MAX_DEPTH:
            raise RecipeError(
                f"{path}: values are nested more than {MAX_DEPTH} levels deep; a recipe is not"
            )
        children = _children(current)
        if done:
            size[id(current)] = 1 + sum(size.get(id(c), 1) for c in children)
            if size[id(current)] > MAX_NODES:
                raise RecipeError(
                    f"{path}: the YAML expands to more than {MAX_NODES:,} values through "
                    "aliases (&anchor/*alias); write the recipe out plainly"
                )
            continue
        if id(current) in size:
            continue
        stack.append((current, depth, True))
        stack.extend((c, depth + 1, False) for c in children if id(c) not in size)
    return yaml.safe_load(text)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _line_of(path: Path, yaml_path: str) -> int | None:
    """The line where a dotted YAML path (`steps[0].clean.min_chrs`) is written, if found."""
    parts: list[str | int] = []
    for piece in re.findall(r"[^.\[\]]+|\[\d+\]", yaml_path):
        parts.append(
            int(piece[1:-1]) if piece.startswith("[") else int(piece) if piece.isdigit() else piece
        )
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return None
    line = None
    for part in parts:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == part), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _resolve_relative_source(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """A relative input path in a recipe is relative to the recipe file, if it exists there."""
    source = data["input"].get("source")
    if isinstance(source, str) and not os.path.isabs(source):
        candidate = base / source
        if candidate.exists() and not Path(source).exists():
            data = {**data, "input": {**data["input"], "source": str(candidate)}}
    return data


def dump_recipe(recipe: Recipe) -> dict[str, Any]:
    """The resolved recipe as plain data (for the manifest)."""
    data = recipe.model_dump(mode="json", exclude={"steps"})
    data["steps"] = [{s.name: s.config.model_dump(mode="json")} for s in recipe.steps]
    return data


def json_schema() -> dict[str, Any]:
    """JSON Schema of recipes, with one entry per registered step, for editor completion."""
    load_steps()
    schema = Recipe.model_json_schema()
    step_variants = []
    for name in registry.names():
        cls = registry.get(name)
        cfg = cls.Config.model_json_schema()
        step_variants.append(
            {
                "type": "object",
                "description": registry.summary(cls),
                "properties": {name: {"anyOf": [cfg, {"type": "null"}]}},
                "required": [name],
                "additionalProperties": False,
            }
        )
        step_variants.append({"const": name})
    schema.setdefault("properties", {})["steps"] = {
        "type": "array",
        "description": "steps run in order; each is {step_name: {params}}",
        "items": {"anyOf": step_variants},
    }
    schema["$defs"].pop("StepSpec", None)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "assay recipe"
    return schema


def with_engine(recipe: Recipe, engine: str | None = None, address: str | None = None) -> Recipe:
    """The recipe with its engine overridden (`assay run --engine ray --ray-address ...`);
    an address implies the Ray engine and keeps the recipe's other Ray settings."""
    if engine is None and address is None:
        return recipe
    name = engine or ("ray" if address else recipe.engine_name)
    if name == "local":
        if address is not None:
            raise RecipeError("--ray-address needs the Ray engine; drop --engine local")
        return recipe.model_copy(update={"engine": "local"})
    settings = recipe.engine.ray if isinstance(recipe.engine, EngineSettings) else RaySettings()
    if address is not None:
        settings = settings.model_copy(update={"address": address})
    return recipe.model_copy(update={"engine": EngineSettings(ray=settings)})
