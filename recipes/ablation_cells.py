"""An ablation's cells, one per (arm, train size, seed): the seeds of their pipelines and
train draws, the train rows a model sees, the terms it adds to its tokenizer, and the store
of finished cells that a rerun skips."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from assay import atomic
from assay.step import StepReport
from assay.train.evaluate import TrainOutcome

CELL_VERSION = "1"


@dataclasses.dataclass
class Cell:
    """A trained (arm, seed) cell: its summary and its predictions on the eval rows."""

    arm: str
    seed: int
    key: str
    outcome: dict[str, Any]  # TrainOutcome.summary() plus pipeline seconds
    predictions: pl.DataFrame  # id, split, pred
    cached: bool = False
    size: int | None = None  # the train-row cap of this cell (None: the whole train split)


@dataclasses.dataclass
class PendingCell:
    """A cell whose corpus is built and whose model is still to train."""

    arm: str
    seed: int
    size: int | None
    key: str
    frame: pl.DataFrame
    options: dict[str, Any]
    trainer: dict[str, Any]
    pipeline_seconds: float


class CellStore:
    """Finished (arm, seed) cells on disk: predictions parquet + summary json per key."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def get(self, key: str) -> tuple[dict[str, Any], pl.DataFrame] | None:
        meta, preds = self.root / f"{key}.json", self.root / f"{key}.parquet"
        if not (meta.exists() and preds.exists()):
            return None
        import json

        try:
            return json.loads(meta.read_text()), pl.read_parquet(preds)
        except (OSError, ValueError, pl.exceptions.PolarsError):
            return None

    def put(self, key: str, summary: dict[str, Any], predictions: pl.DataFrame) -> None:
        atomic.write_parquet(self.root / f"{key}.parquet", predictions)
        atomic.write_json(self.root / f"{key}.json", summary)  # last: marks the cell done


def pipeline_seed(recipe_seed: int, seed: int) -> int:
    """The step seed of training seed `seed`: distinct streams, stable across runs."""
    return int(np.random.SeedSequence([recipe_seed, seed]).generate_state(1)[0] >> 1)


# -- running --------------------------------------------------------------------------------


def train_draw_seed(recipe_seed: int, seed: int, resample_train: str) -> int:
    """The seed of the train subsample: its own per training seed, or the recipe's."""
    return recipe_seed if resample_train == "once" else pipeline_seed(recipe_seed, seed)


def domain_terms(reports: list[StepReport]) -> list[str]:
    """Terms a step chose for the tokenizer (`<step>__terms` in its report summary): an
    encoder arm adds them as whole tokens."""
    terms: list[str] = []
    for report in reports:
        for term in report.summary.get(f"{report.step}__terms") or []:
            if term not in terms:
                terms.append(term)
    return terms


def train_only(frame: pl.DataFrame, eval_ids: pl.Series) -> tuple[pl.DataFrame, int]:
    """The arm's train rows (its own dev/test are ignored), minus any baseline eval row."""
    train = frame.filter(pl.col("split") == "train")
    leak = train.filter(pl.col("id").is_in(eval_ids.implode()))
    if leak.height:
        train = train.filter(~pl.col("id").is_in(eval_ids.implode()))
    return train, leak.height


def cell_summary(outcome: TrainOutcome, pipeline_seconds: float) -> dict[str, Any]:
    """The training outcome's summary with the seconds the arm's pipeline took."""
    summary = outcome.summary()
    summary["pipeline_seconds"] = round(pipeline_seconds, 3)
    summary["seconds_total"] = round(pipeline_seconds + outcome.seconds, 3)
    return summary
