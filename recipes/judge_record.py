"""What a cheap judge's verdicts are worth: its measured agreement with the fine-tuned
encoder, and a caution beside its verdicts where that agreement is low or unmeasured.

The record is `recipes/data/judge_agreement.json`, written by `bench/judges.py --ship`:
for each judge, task kind (binary or multiclass) and train size, the share of the arms the
fine-tuned encoder separated from zero on which the judge gave the same verdict. A verdict
of the fine-tuned encoder itself needs no record.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

CHEAP = ("fast", "probe")
TRUSTED = 0.8  # below this measured agreement a verdict carries a caution


@cache
def _records() -> list[dict[str, Any]]:
    path = resources.files("assay.recipes") / "data" / "judge_agreement.json"
    if not path.is_file():
        return []
    return json.loads(path.read_text())["records"]


def task_kind(n_classes: int) -> str:
    return "binary" if n_classes <= 2 else "multiclass"


def agreement(model: str, n_classes: int, train_rows: float) -> dict[str, Any] | None:
    """The study's record nearest this judge's setting (same task kind, nearest size on a
    log scale), or None where none was measured."""
    import math

    kind = task_kind(n_classes)
    mine = [r for r in _records() if r["judge"] == model and r["task"] == kind]
    if not mine:
        return None
    return min(mine, key=lambda r: abs(math.log(r["train_rows"] / max(train_rows, 1))))


def measured(record: dict[str, Any]) -> str:
    """One line of a record: how often the judge gave the encoder's verdict, and where."""
    n = record["reference_significant_arms"]
    where = f"at {record['train_rows']:,} train rows on {record['task']} tasks"
    if not n:
        return f"the fine-tuned encoder separated none of the study's arms {where}: unmeasured"
    same = round(record["decision_agreement"] * n)
    return (
        f"same verdict as the fine-tuned encoder on {same} of the {n} arms it separated "
        f"({record['decision_agreement']:.0%}, {record['opposite_rate']:.0%} opposite) {where}"
    )


def caution(model: str, n_classes: int, train_rows: float) -> str | None:
    """A caution for a cheap judge's better/worse calls, with the command that confirms them
    with the fine-tuned encoder; None for the encoder or a well-measured judge."""
    if model not in CHEAP:
        return None
    record = agreement(model, n_classes, train_rows)
    confirm = "assay ablate RECIPE --confirm"
    if record is None:
        return (
            f"judge {model}: its agreement with the fine-tuned encoder has not been measured "
            f"for {task_kind(n_classes)} tasks; confirm the arms that matter with `{confirm}`"
        )
    if record["decision_agreement"] is not None and record["decision_agreement"] >= TRUSTED:
        return None
    return f"judge {model}: {measured(record)}; confirm the arms that matter with `{confirm}`"
