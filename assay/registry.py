"""The step registry: names -> step classes, with the metadata `assay steps` shows."""

from __future__ import annotations

import difflib
import inspect
from typing import Any, TypeVar

from assay.errors import RecipeError
from assay.step import Step, StepConfig

S = TypeVar("S", bound=type[Step])
_STEPS: dict[str, type[Step]] = {}


def register(name: str):
    """Class decorator: register a step under a snake_case name."""

    def deco(cls: S) -> S:
        if not name.isidentifier() or name.lower() != name:
            raise ValueError(f"step names are snake_case identifiers, got {name!r}")
        if name in _STEPS and _STEPS[name] is not cls:
            raise ValueError(f"step {name!r} is registered twice ({_STEPS[name]} and {cls})")
        if not issubclass(cls.Config, StepConfig):
            raise TypeError(f"{cls.__name__}.Config must subclass StepConfig")
        cls.name = name
        _STEPS[name] = cls
        return cls

    return deco


def names() -> list[str]:
    return sorted(_STEPS)


def get(name: str) -> type[Step]:
    try:
        return _STEPS[name]
    except KeyError:
        raise RecipeError(f"unknown step {name!r}{suggest(name, _STEPS)}") from None


def suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def summary(cls: type[Step]) -> str:
    doc = inspect.getdoc(cls) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def describe(name: str) -> dict[str, Any]:
    from assay.cache import code_hash

    cls = get(name)
    return {
        "name": name,
        "kind": cls.kind,
        "code": code_hash(cls),
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "summary": summary(cls),
        "doc": inspect.getdoc(cls) or "",
        "config_schema": cls.Config.model_json_schema(),
    }
