"""The "Examples:" block at the end of each command's `--help`, written once here."""

from __future__ import annotations


def examples(*commands: str) -> str:
    """An epilog listing example invocations, one per line, kept as written (click's `\\b`
    stops it from rewrapping them into one paragraph)."""
    title = "Example:" if len(commands) == 1 else "Examples:"
    return "\b\n" + "\n".join([title, *(f"  {c}" for c in commands)])
