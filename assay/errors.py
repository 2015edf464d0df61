"""One error hierarchy: every failure a user can cause or fix is an `AssayError`.

Messages say what was expected, what was found, and the fix. The CLI prints them as one line
(no traceback); library users catch the class that concerns them.
"""

from __future__ import annotations


class AssayError(Exception):
    """Base of every error assay raises on purpose."""

    exit_code = 1


class SchemaError(AssayError):
    """A corpus does not satisfy the corpus schema."""


class InputError(AssayError):
    """Input data cannot be read as asked: missing column, bad encoding, empty file..."""


class RecipeError(AssayError):
    """A recipe is malformed: bad YAML, unknown step or key, wrong value."""

    exit_code = 2


class StepError(AssayError):
    """A step failed or broke the step contract (accounting, protected splits)."""


class ResourceError(AssayError):
    """A model, dataset, binary or optional package is missing or cannot be loaded."""


class MissingDependencyError(ResourceError):
    """An optional Python package is not installed; the message names the extra."""


class RemoteError(AssayError):
    """A remote service (Label Studio, a hub) is unreachable or refused the request."""


def require(module: str, extra: str, purpose: str | None = None):
    """Import `module` or raise one error naming the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        what = f" for {purpose}" if purpose else ""
        raise MissingDependencyError(
            f"{module!r} is needed{what} but is not installed: pip install 'assay[{extra}]'"
        ) from exc
