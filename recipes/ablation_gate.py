"""When a step's evidence gate refuses its destructive action, the arm that asked for it
measures little or nothing: say so in the arm's row and the warnings, not only in a log."""

from __future__ import annotations

from typing import Any

from assay.recipes.ablation_summary import warn_once
from assay.step import StepReport


def gate_refusals(reports: list[StepReport]) -> list[tuple[str, str]]:
    """(step, action) of every step whose evidence gate refused its destructive action."""
    return [
        (r.step, str(r.summary.get("action")))
        for r in reports
        if (r.summary.get("gate") or {}).get("decision") == "refused"
    ]


def note_refusals(
    report: dict[str, Any],
    refused: dict[tuple[str, str, str], set[tuple[int | None, int]]],
    n_draws: int,
) -> None:
    """Say in the table, not only in a log line, that an arm's change did not happen."""
    for (arm, step, action), draws in sorted(refused.items()):
        note = (
            f"{step}'s gate refused to {action} in {len(draws)} of {n_draws} cells "
            "(a weak out-of-fold model, or no gain on held-out rows); the rows were kept"
        )
        warn_once(report["warnings"], f"{arm}: {note}, so the arm measures little or nothing")
        for row in report["arms"]:
            if row["arm"] == arm:
                row["gate"] = note
                # Short in the verdict, so a table cell stays readable; `gate` has it all.
                mark = f"(gate refused in {len(draws)} of {n_draws} cells; rows kept)"
                row["verdict"] = f"{row.get('verdict') or ''} {mark}".strip()
