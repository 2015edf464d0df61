"""One error hierarchy: every failure a user can cause or fix is an `AssayError`.

Messages say what was expected, what was found, and the fix. The CLI prints them as one line
(no traceback); library users catch the class that concerns them.
"""

from __future__ import annotations

import re
from typing import Any

# An error is one line a person reads: values echoed in it are cut to this many characters,
# and a whole message to MAX_MESSAGE (a YAML alias bomb must not make a megabyte line).
MAX_VALUE = 80
MAX_MESSAGE = 2000


def shorten(value: Any, limit: int = MAX_VALUE) -> str:
    """`repr(value)`, cut to `limit` characters with a note of how much was left out."""
    try:
        text = repr(value)
    except RecursionError:
        text = f"<deeply nested {type(value).__name__}>"
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit:,} more characters)"


_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` without URL credentials (user:password@) and without the given secrets."""
    text = _URL_CREDENTIALS.sub("***@", text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def redact_data(value: Any) -> Any:
    """`value` (JSON-like data: a manifest, a report) with `redact` applied to every string."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_data(v) for v in value]
    return value


# The exit codes of the `assay` command, one rule: 2 when what was given is wrong (the command
# line, the recipe, the input data: fix it and run again), 1 when the work could not be done
# with what was given (a step failed, a model or package is missing, an output cannot be
# written, a service is unreachable). Click's own usage errors exit 2 as well.
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class AssayError(Exception):
    """Base of every error assay raises on purpose."""

    exit_code = EXIT_FAILED

    def __str__(self) -> str:
        text = super().__str__()
        if len(text) > MAX_MESSAGE:
            text = f"{text[:MAX_MESSAGE]}... ({len(text) - MAX_MESSAGE:,} more characters)"
        return text


class SchemaError(AssayError):
    """A corpus does not satisfy the corpus schema."""

    exit_code = EXIT_BAD_INPUT


class InputError(AssayError):
    """Input data cannot be read as asked: missing column, bad encoding, empty file..."""

    exit_code = EXIT_BAD_INPUT


class RecipeError(AssayError):
    """A recipe is malformed: bad YAML, unknown step or key, wrong value."""

    exit_code = EXIT_BAD_INPUT


class StepError(AssayError):
    """A step failed or broke the step contract (accounting, protected splits)."""


class ResourceError(AssayError):
    """A model, dataset, binary or optional package is missing or cannot be loaded."""


class MissingDependencyError(ResourceError):
    """An optional Python package is not installed; the message names the extra."""


class OutputError(AssayError, OSError):
    """An output cannot be written (read-only folder, a file in the way, disk full).

    Also an `OSError`, so code that handles failed writes as OS errors keeps doing so.
    """


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
