"""The click group class every `assay` command group uses."""

from __future__ import annotations

from typing import Any

import click

from assay.errors import AssayError


class AssayGroup(click.Group):
    """Turns assay errors into one clear line on stderr and the error's exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AssayError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            ctx.exit(exc.exit_code)
